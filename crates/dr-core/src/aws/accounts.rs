//! The credentials of a plan's section in another account of the landing zone ([`Accounts`]):
//! the member role, assumed through STS with the orchestrator's own credentials.
//!
//! - **Per attempt, never held across a wait.** The clients of a plan with accounts are built for
//!   one invocation (one attempt of one step) and assume when they first call, then keep the
//!   credentials only as long as those clients live. The Lambda's role assuming the member role is
//!   role chaining, which AWS caps at one hour and never extends
//!   (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_terms-and-concepts.html#iam-term-role-chaining):
//!   the next attempt, after a Wait state or a retry, assumes again.
//! - **The regional STS endpoint** of the deployment's region (the SDK's default for a client
//!   with a region): the global endpoint is served from us-east-1, which may be the very region a
//!   failover is leaving
//!   (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_region-endpoints.html).
//! - **The session name is the run**, so CloudTrail in the member account shows which run made
//!   each call; the call log records the role beside each call ([`super::ApiCall::principal`]).
//! - **A refusal is `AccessDenied` naming the account and the role**, never retried: a missing
//!   trust does not heal by itself (another error no retry mends, STS disabled in the region, is
//!   `AwsCallFailed`; a throttle or no answer stays transient) ([`AssumeRoleRefused`], found by [`crate::DrError::from_sdk`]).

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::identity::IdentityCache;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};

use crate::error::{AssumeRoleRefused, DrError, sdk_error_code};
use crate::plan::MemberAccount;

/// How long an assumed session lasts: a step's Lambda timeout at most, the shortest STS allows.
pub const SESSION_DURATION: Duration = Duration::from_secs(900);

/// A role session name STS accepts: at most 64 of `[\w+=,.@-]`; anything else becomes `-`.
pub fn session_name(wanted: &str) -> String {
    let cleaned: String =
        wanted.chars().map(|c| if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) { c } else { '-' }).collect();
    // Keep the end: a run id's end is its time, what tells two runs of a plan apart.
    let start = cleaned.len().saturating_sub(64);
    let kept = &cleaned[start..];
    if kept.len() < 2 { "dr-orchestrator".to_string() } else { kept.to_string() }
}

/// The member role's credentials, assumed on first use with `own`'s credentials through the STS
/// endpoint of `own`'s region.
#[derive(Debug, Clone)]
struct AssumedMemberRole {
    sts: aws_sdk_sts::Client,
    member: MemberAccount,
    session: String,
}

impl AssumedMemberRole {
    async fn assume(&self) -> Result<Credentials, CredentialsError> {
        let role_arn = self.member.role_arn();
        let answer = self
            .sts
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name(&self.session)
            .duration_seconds(SESSION_DURATION.as_secs() as i32)
            .send()
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) => {
                let denied = sdk_error_code(&err).is_some_and(|code| code == "AccessDenied");
                let err = DrError::from_sdk("sts", "AssumeRole", err);
                // Throttled or unanswered: the call's own retry, then the step's, try again. Anything
                // else is named at once (`DrError::from_sdk` finds it inside the SDK's error).
                if err.is_retryable() {
                    return Err(CredentialsError::provider_error(err));
                }
                return Err(CredentialsError::provider_error(AssumeRoleRefused {
                    account: self.member.account.clone(),
                    role_arn,
                    message: err.to_string(),
                    denied,
                }));
            }
        };
        let Some(credentials) = answer.credentials() else {
            return Err(CredentialsError::unhandled(format!("AssumeRole {role_arn} answered without credentials")));
        };
        let expiry = std::time::SystemTime::try_from(*credentials.expiration()).ok();
        Ok(Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_string()),
            expiry,
            "dr-orchestrator-member-role",
        ))
    }
}

impl ProvideCredentials for AssumedMemberRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.assume())
    }
}

/// `own` with the member role's credentials in place of the orchestrator's: every client built
/// from it assumes the role on its first call (once for all of them: they share an identity cache
/// of their own, dropped with them, so that no credentials outlive these clients) and calls as
/// the role. The `AssumeRole` is not in the call log: it changes nothing in the estate (the member
/// account's CloudTrail has it, under the session name).
pub fn member_config(own: &SdkConfig, member: &MemberAccount, session: &str) -> SdkConfig {
    let provider = AssumedMemberRole {
        sts: aws_sdk_sts::Client::new(own),
        member: member.clone(),
        session: session_name(session),
    };
    own.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .identity_cache(IdentityCache::lazy().build())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_what_sts_accepts_and_keep_the_run_ids_end() {
        assert_eq!(
            session_name("paris-ireland-prod-manual-20261208T001500Z"),
            "paris-ireland-prod-manual-20261208T001500Z"
        );
        assert_eq!(session_name("a b/c"), "a-b-c");
        let long = format!("{}-20261208T001500Z", "x".repeat(60));
        assert_eq!(session_name(&long).len(), 64);
        assert!(session_name(&long).ends_with("-20261208T001500Z"));
        assert_eq!(session_name(""), "dr-orchestrator");
    }
}
