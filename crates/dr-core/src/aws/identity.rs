//! Who is calling, as AWS verifies it: `sts:GetCallerIdentity` answers with the account, the ARN
//! and the unique id of the credentials that signed the request. No policy can deny it
//! (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html), and its
//! `UserId` is what IAM policies see as `aws:userid` (an IAM user's `AIDA...` id; a role session's
//! `AROA...:<session name>`): https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html.

use crate::error::DrError;

/// The signer of this process's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    /// `arn:aws:iam::<account>:user/<name>` or `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub arn: String,
    /// `aws:userid` in policies: what a decision record's key is bound to.
    pub user_id: String,
}

/// Asks STS who signs this client's requests.
pub async fn caller(sts: &aws_sdk_sts::Client) -> Result<CallerIdentity, DrError> {
    let answer =
        sts.get_caller_identity().send().await.map_err(|e| DrError::from_sdk("sts", "GetCallerIdentity", e))?;
    let field = |value: Option<&str>, name: &str| {
        value.filter(|v| !v.is_empty()).map(str::to_string).ok_or_else(|| DrError::AwsCallFailed {
            service: "sts",
            operation: "GetCallerIdentity",
            message: format!("the answer has no {name}"),
        })
    };
    Ok(CallerIdentity {
        account: field(answer.account(), "Account")?,
        arn: field(answer.arn(), "Arn")?,
        user_id: field(answer.user_id(), "UserId")?,
    })
}
