//! The DR plan: one TOML document naming everything a failover touches.
//!
//! Every field is documented in `docs/plan.md`. Parsing rejects unknown fields (a typo in a
//! plan must not silently disable a safety rule); [`Plan::validate`] then reports **every**
//! broken rule at once, each with a stable [`ProblemCode`] (the rules are in [`rules`]).

mod rules;
pub mod stack;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::DrError;
pub use crate::error::{PlanProblem, ProblemCode};
pub use rules::{KNOWN_REGIONS, LONGEST_RTO_MINUTES, MAX_STANDBY_INSTANCES, backup_window_conflicts};

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Identifies the plan in state, execution names, reports and metrics.
    pub name: String,
    pub environment: Environment,
    /// Business tier: 1 (RTO 4 h / RPO 1 h), 2 (8 h / 4 h) or 3 (24 h / 24 h).
    pub tier: u8,
    pub primary_region: String,
    pub dr_region: String,
    /// What reports, notices and checks call the regions, by region code (`[region_names]`, e.g.
    /// `"eu-west-3" = "Paris"`); a region without a name is called by its code. Keyed by code, so
    /// that the names follow the regions when [`Plan::facing`] swaps them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub region_names: BTreeMap<String, String>,
    pub targets: Targets,
    /// The estate's databases, each an RDS instance and its cross-region read replica
    /// (`[[databases]]`; a plan with one may write it `[database]`). One RPO gate decides for all,
    /// a planned move fences and proves its barrier on each before any promotion, and the data
    /// tier moves whole or not at all.
    #[serde(rename = "databases", alias = "database", default, deserialize_with = "one_or_many")]
    pub databases: Vec<Database>,
    /// The stopped EC2 instances a failover starts, in groups (`[standby_instances]`, or
    /// `[[standby_instances]]` for several), each judged by its own minimum. None: an estate whose
    /// compute is its Auto Scaling groups or its ECS services.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many",
        serialize_with = "one_or_many_out"
    )]
    pub standby_instances: Vec<InstanceSelector>,
    /// The DR region's Auto Scaling groups (`[auto_scaling]`, or `[[auto_scaling]]` for several),
    /// each raised to its failover size and judged by its own minimum. None: an estate whose
    /// compute is its standby instances or its ECS services.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many",
        serialize_with = "one_or_many_out"
    )]
    pub auto_scaling: Vec<AutoScaling>,
    pub dns: Dns,
    #[serde(default)]
    pub s3_replication: Vec<BucketPair>,
    pub reports: Reports,
    /// Automatic failover from health-check alarms. Absent: the plan is only failed over by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// The monthly restore test of the database's snapshots in the DR region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<RestoreTest>,
    /// How a planned move stops the writer in Paris before promoting. Absent: only unplanned
    /// failovers (incidents) are possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<Fence>,
    /// Where the functions that speak SQL run when the database is reachable only inside its VPC,
    /// and how those subnets reach the primary region. Absent: no VPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// The DR load balancer in front of the Auto Scaling group: the compute branch is ready only
    /// once its targets are healthy, and the readiness check reads its certificates. Absent: the
    /// group alone says ready (no load balancer to wait for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<Serving>,
    /// What else the DR region needs to serve, which only the plan can say: the KMS keys it
    /// decrypts with, and the customer's own probes (reachability, directory login, a smoke
    /// request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ReadinessNeeds>,
    /// A decision to go past a run's RPO gate takes two people: whoever started the run by hand
    /// may not approve it (`ApproverIsStarter`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub two_person_approval: bool,
    /// What the plan does not know itself takes part through the plan's own Lambdas, each run at
    /// a named point of every failover and failback (`[[custom_actions]]`): a Redis global
    /// datastore's failover, EFS replication, a cache flush.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_actions: Vec<CustomAction>,
    /// The DR region's ECS services (`[[ecs_services]]`): kept at their standby count while the
    /// primary serves, raised to their failover count by the compute branch, and back after a
    /// failback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecs_services: Vec<EcsService>,
    /// The landing zone's accounts the plan's sections live in, and the role the orchestrator
    /// assumes in each (`[accounts]`). A section not named here is in the orchestrator's own
    /// account (docs/landing-zone.md).
    #[serde(default, skip_serializing_if = "Accounts::is_empty")]
    pub accounts: Accounts,
    /// `true` in the plan as a failback sees it ([`Plan::facing`]): the regions, the database's
    /// roles and the application groups swapped. Never in a plan file.
    #[serde(skip)]
    pub reversed: bool,
}

/// Where the plan's sections live when they are not in the orchestrator's own account. Today the
/// DNS section: the hosted zone, the failover records, the routing health check, and so the
/// routing alarm and its metric, since a health check follows an alarm of its own account (a
/// landing zone keeps DNS in its shared-services account). The detection health checks, the
/// trigger's alarms and the plan's own Lambdas stay in the orchestrator's account; the workload
/// in its own account is designed (docs/landing-zone.md), not built.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<MemberAccount>,
}

impl Accounts {
    pub fn is_empty(&self) -> bool {
        self.dns.is_none()
    }

    /// Each section in another account: its name in the plan and where it is.
    pub fn sections(&self) -> Vec<(&'static str, &MemberAccount)> {
        self.dns.iter().map(|member| ("dns", member)).collect()
    }
}

/// An account of the landing zone and the role the orchestrator assumes there (the member role
/// of `member-role.yaml`, deployed by a StackSet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemberAccount {
    /// The 12-digit account id.
    pub account: String,
    /// The member role's name (not its ARN: the account says where).
    pub role: String,
}

impl MemberAccount {
    pub fn role_arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account, self.role)
    }
}

/// The database's VPC, in the DR region: preflight, promote-replica, the fence and the RPO check
/// run in these subnets (the stack's `DatabaseSubnetIds` and `DatabaseSecurityGroupIds`), and
/// every AWS call they make leaves from there.
/// A published plan by name and the version a run took: what an execution's input carries instead
/// of the plan, which every step loads from the deployment's plan store
/// (the plan store's `load_version`). Nothing in an input can widen a run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRef {
    pub name: String,
    /// The SHA-256 of the plan's text as published ([`Plan::version`]), in hex.
    pub version: String,
}

/// The version of a plan's published text: its SHA-256, in hex.
pub fn text_version(text: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text).iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Plan {
    /// A plan not loaded yet: what a run's state holds until the plan store gives its plan.
    /// Invalid (no name): a step handed one refuses it.
    pub fn unloaded() -> Plan {
        Plan::default()
    }

    /// The text the plan store publishes: TOML, as written (never reversed).
    pub fn published_text(&self) -> Result<String, DrError> {
        let written = if self.reversed {
            Err(DrError::Internal {
                message: format!("plan {} is reversed: only a plan as written is published", self.name),
            })
        } else {
            Ok(self)
        }?;
        let text = toml::to_string(written).map_err(|e| DrError::serialisation(&format!("plan {}", self.name), e))?;
        // A plan with one database is published in the form it was written in before estates
        // (`[database]`), so that its text, and so its version, stay what they were.
        Ok(match self.databases.len() {
            1 => text.lines().map(|line| if line == "[[databases]]" { "[database]" } else { line }).fold(
                String::with_capacity(text.len()),
                |mut out, line| {
                    out.push_str(line);
                    out.push('\n');
                    out
                },
            ),
            _ => text,
        })
    }

    /// The plan's version: the SHA-256 of [`Plan::published_text`], in hex.
    pub fn version(&self) -> Result<String, DrError> {
        Ok(text_version(self.published_text()?.as_bytes()))
    }

    /// This plan, by name and version.
    pub fn reference(&self) -> Result<PlanRef, DrError> {
        Ok(PlanRef { name: self.name.clone(), version: self.version()? })
    }

    /// What texts call the region `code`: the plan's name for it (`[region_names]`), else the
    /// code itself.
    pub fn region_name<'a>(&'a self, code: &'a str) -> &'a str {
        self.region_names.get(code).map_or(code, String::as_str)
    }

    /// The name of `primary_region`: in the plan as a move sees it ([`Plan::facing`]), the region
    /// the move leaves (the DR region as written, in a failback).
    pub fn primary_name(&self) -> &str {
        self.region_name(&self.primary_region)
    }

    /// The name of `dr_region`: in the plan as a move sees it, the region the move goes to.
    pub fn dr_name(&self) -> &str {
        self.region_name(&self.dr_region)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub database_subnets: Vec<String>,
    pub database_security_groups: Vec<String>,
    /// How the subnets reach AWS APIs in the primary region.
    pub primary_region_egress: Egress,
}

/// The DR region's load balancer and the target group the Auto Scaling group serves through.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Serving {
    /// The Application (or Network) Load Balancer in the DR region, by name or ARN.
    pub load_balancer: String,
    /// Its target group the DR Auto Scaling group is attached to, by name or ARN.
    pub target_group: String,
    /// A listener certificate must stay valid for the RTO plus this many days.
    #[serde(default = "Serving::default_certificate_margin_days")]
    pub certificate_margin_days: u32,
}

impl Serving {
    fn default_certificate_margin_days() -> u32 {
        30
    }
}

/// The readiness check's plan-given needs of the DR region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReadinessNeeds {
    /// KMS keys (id, ARN or alias) the DR side decrypts with, in the DR region, beyond the ones
    /// the check finds itself (the replica's storage key, the standby EBS key).
    #[serde(default)]
    pub kms_keys: Vec<String>,
    /// The customer's own checks, each a Lambda named `dr-readiness-probe-*`.
    #[serde(default)]
    pub probes: Vec<ReadinessProbe>,
}

/// A Lambda that checks what only the customer knows (VPN or Transit Gateway reachability, a
/// directory login, a smoke request). Invoked with `{"plan", "probe", "region"}`; it answers
/// `{"ready": bool, "detail": "..."}`, and a function error is a failed probe.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReadinessProbe {
    /// How the readiness table names it.
    pub name: String,
    /// The function, by name or ARN; its name starts with `dr-readiness-probe-` (the stack may
    /// invoke only those).
    pub function: String,
    /// Where it runs: the plan's primary or DR region.
    pub region: String,
}

/// A Lambda of the plan's own that a run invokes at a named point, until it answers ready
/// (`runbook::actions`). It is told the run (kind, direction, dry run) and asked again with the
/// same idempotency key until it says it is done, so it must be idempotent: a lost answer or a
/// throttled call is asked again, never taken for a second action.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomAction {
    /// How records, reports and the action itself name it; unique in the plan.
    pub name: String,
    /// The function, by name or ARN; its name starts with `dr-custom-action-` (the stack may
    /// invoke only those). It runs in the region the run moves to (the DR region for a failover,
    /// the primary for a failback): deploy it in both.
    pub function: String,
    pub point: ActionPoint,
    /// How long the action may take, from its first invocation to its answer `ready`, across
    /// every ask (each one call of at most [`CUSTOM_ACTION_CALL_SECONDS`]): at most an eighth of
    /// the RTO, the share of the run each point may take.
    pub timeout_seconds: u32,
}

/// An ECS service of the DR region (Fargate or EC2 capacity alike) that the compute branch
/// scales: its desired count raised to `failover_count` (never lowering a higher one), ready when
/// that many tasks run and its deployment is steady; a failback's stand-down sets it back to
/// `standby_count`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EcsService {
    /// The cluster, by name, in `dr_region`.
    pub cluster: String,
    /// The service, by name; unique in the plan with its cluster.
    pub service: String,
    /// The desired count a failover sets.
    pub failover_count: u16,
    /// The desired count it keeps while the primary serves (often 0): what readiness expects and
    /// what the stand-down after a failback sets.
    #[serde(default)]
    pub standby_count: u16,
    /// How many running tasks it must have to serve when the compute budget runs out (fewer:
    /// `BelowMinimumCapacity`). At most `failover_count`.
    pub minimum_healthy: u16,
}

impl EcsService {
    /// How records, reports and the readiness table name it: `cluster/service`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.cluster, self.service)
    }
}

/// The most ECS services a plan may name: DescribeServices reads ten a call, and the compute
/// branch's one function updates every one that is short (one UpdateService each, in turn,
/// within ECS's request rate: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html).
pub const MAX_ECS_SERVICES: usize = 50;

/// Where in a run a custom action takes part.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    Serialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum ActionPoint {
    /// Once the run may go on (its gate passed or decided), before the fence and the promotion.
    BeforeDataTier,
    /// Once the database is promoted and writable, in the database's branch (a failure there is
    /// a failure of the data tier: a planned move rolls back).
    AfterDataTier,
    /// Once the standby compute serves, in the compute branch.
    AfterCompute,
    /// Once DNS answers the region the run moved to, before the report.
    AfterTraffic,
}

impl ActionPoint {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::fmt::Display for ActionPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The prefix every custom action's function name carries: the stack's role may invoke only
/// functions named so (template.yaml, `InvokeTheCustomActions`).
pub const CUSTOM_ACTION_PREFIX: &str = "dr-custom-action-";
/// The longest one invocation of a custom action may take: the custom-actions function's 60 s
/// less what the rest of its step needs. An action that needs longer answers `ready: false` and
/// is asked again.
pub const CUSTOM_ACTION_CALL_SECONDS: u32 = 40;
/// The most custom actions a plan may name: one ask invokes every action of a point at once,
/// within one function's time.
pub const MAX_CUSTOM_ACTIONS: usize = 20;

impl Plan {
    /// The plan's custom actions at `point`, in the plan's order.
    pub fn custom_actions_at(&self, point: ActionPoint) -> impl Iterator<Item = &CustomAction> {
        self.custom_actions.iter().filter(move |action| action.point == point)
    }
}

/// The prefix every readiness probe's function name carries: the stack's role may invoke only
/// functions named so (template.yaml, `InvokeReadinessProbes`).
pub const READINESS_PROBE_PREFIX: &str = "dr-readiness-probe-";

/// A Lambda function's name, whether a plan gives its name or its ARN
/// (`arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`), as a policy's
/// `function:<name>` resource needs it.
pub fn lambda_function_name(named: &str) -> &str {
    match named.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] => name,
        _ => named,
    }
}

/// How a VPC's subnets reach another region's AWS APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Egress {
    /// A NAT gateway (or a proxy): every service of the primary region is reachable.
    Nat,
    /// Only (cross-Region) interface endpoints: S3, KMS, Lambda, ECS, IAM and Route 53, and not
    /// RDS, CloudWatch, EC2 or Auto Scaling.
    EndpointsOnly,
}

/// How a planned move fences the writer in the primary region, and how long its barrier may take.
/// Every method named is applied, and undone in reverse when the barrier is not reached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fence {
    /// The primary region's Auto Scaling groups of the application (a name, or a list: the
    /// primary group of each `[[auto_scaling]]` group, in order): scaled to zero, each one's
    /// capacity kept in a tag on it so that the undo restores it, and given back by a failback.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many",
        serialize_with = "one_or_many_out"
    )]
    pub auto_scaling_group: Vec<String>,
    /// A Lambda (name or ARN, in `dr_region`) that switches the application to maintenance:
    /// invoked with `{"action": "fence" | "unfence", "plan", "run_id"}`; a function error means
    /// the fence did not hold. It must be idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<String>,
    /// Makes the primary database refuse writes (`default_transaction_read_only` on the database,
    /// other sessions ended), with `database.credentials_secret`.
    #[serde(default)]
    pub database_read_only: bool,
    /// A Lambda (name or ARN, in `dr_region`) that replaces the built-in barrier, for an
    /// application that proves its writes reached Ireland its own way: invoked on each attempt
    /// with the run's marker and both endpoints, it answers when Paris took the marker and whether
    /// Ireland has it (the runbook's `BarrierHookRequest`, `BarrierHookAnswer`). It must write
    /// its marker once per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barrier_function: Option<String>,
    /// How long the barrier (a marker written in Paris after the fence, read back on the Ireland
    /// replica) may take before the move stops and the fence is undone.
    #[serde(default = "Fence::default_barrier_timeout_seconds")]
    pub barrier_timeout_seconds: u32,
    /// How long one invocation of `lambda` or `barrier_function` may take before it counts as not
    /// answered (and the step is tried again): 1 s to [`MAX_HOOK_TIMEOUT_SECONDS`], which leaves
    /// the step's function time for the rest of its work.
    #[serde(default = "default_hook_timeout_seconds")]
    pub hook_timeout_seconds: u32,
    /// Fence on return: after a failover, when the primary region answers again (every trigger
    /// alarm back to OK), the alarm trigger's schedule fences it as a planned move would (its
    /// group to zero, its database read-only), so that no second writer takes writes the new
    /// primary never sees, and tells the on-call; a failback unfences. Absent: on for a
    /// production plan, off for a drill estate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_return: Option<bool>,
    /// After a planned move rolled back past its promotion (the source region serves, with no
    /// replica: no DR), the failure report starts reprotect at once (a new replica in the target
    /// region; the diverged instance retired). `false`: an operator starts it. Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprotect_after_roll_back: Option<bool>,
}

/// The timeout of the functions that invoke the plan's hooks (`fence`, `restore-validate`: the
/// template's `Globals.Function.Timeout`; `tests/contract.rs` checks it).
pub const HOOK_CALLER_TIMEOUT_SECONDS: u32 = 60;
/// The longest a hook may take: its caller's timeout less what the rest of the step needs (the
/// group, the SQL fence, the record), so that a slow hook is answered, not cut by Lambda.
pub const MAX_HOOK_TIMEOUT_SECONDS: u32 = HOOK_CALLER_TIMEOUT_SECONDS - 15;

fn default_hook_timeout_seconds() -> u32 {
    30
}

/// A hook's timeout from the plan's seconds (bounded by the plan's rules).
pub fn hook_timeout(seconds: u32) -> Duration {
    Duration::from_secs(u64::from(seconds.clamp(1, MAX_HOOK_TIMEOUT_SECONDS)))
}

impl Plan {
    /// Whether the alarm trigger fences the primary region when it answers again after a
    /// failover (`fence.on_return`; by default, a production plan's with a `[fence]`).
    pub fn fences_on_return(&self) -> bool {
        self.fence.as_ref().is_some_and(|fence| {
            fence.on_return.unwrap_or(self.environment == Environment::Production) && self.trigger.is_some()
        })
    }

    /// The plan's `[fence]`, which a planned move needs: without it, `FenceFailed` (nothing can
    /// stop the writer in Paris).
    pub fn fence_for_planned_move(&self) -> Result<&Fence, DrError> {
        self.fence.as_ref().ok_or_else(|| DrError::FenceFailed {
            region: self.primary_region.clone(),
            reason: format!("plan {} has no [fence]: a planned move cannot stop the writer", self.name),
        })
    }
}

impl Plan {
    /// The plan as a move in `direction` sees it. `ToDr` (a failover): the plan as written.
    /// `ToPrimary` (a failback, Ireland -> Paris): `primary_region` is the DR region, the
    /// database's primary is the promoted Ireland instance and its replica the Paris one, the
    /// groups a failback raises are Paris's application groups (`fence.auto_scaling_group`, each
    /// given back at least its Ireland group's `failover`), and the fence scales Ireland's groups
    /// (`auto_scaling[].group`). The DNS record, the routing alarm, the fencing Lambda, the
    /// secret and the report bucket stay what they are: they live in one place, and
    /// [`Plan::serving_target`] tells which record value serves. Paris has no standby instances
    /// to start, and neither its buckets nor a restore test nor an automatic trigger are part of a
    /// failback. A failback is a planned move: without a `[fence]` naming Paris's group it is
    /// `FenceFailed`.
    pub fn facing(&self, direction: Direction) -> Result<Plan, DrError> {
        if direction == Direction::ToDr || self.reversed {
            return Ok(self.clone());
        }
        let fence = self.fence_for_planned_move()?;
        // With an Auto Scaling group in Ireland, a failback gives Paris's application group back
        // and fences Ireland's. Without one (compute on ECS or standby instances only), Paris's
        // compute is its own deployment's, and the fence is the database's and the hook's.
        let (auto_scaling, fence) = if self.auto_scaling.is_empty() {
            (Vec::new(), fence.clone())
        } else {
            if fence.auto_scaling_group.len() != self.auto_scaling.len() {
                return Err(DrError::FenceFailed {
                    region: self.primary_region.clone(),
                    reason: format!(
                        "plan {} names {} fence.auto_scaling_group for {} Auto Scaling group(s): a failback gives \
                         each {} application group back",
                        self.name,
                        fence.auto_scaling_group.len(),
                        self.auto_scaling.len(),
                        self.primary_name()
                    ),
                });
            }
            let none = Capacity { min: 0, desired: 0, max: 0 };
            let given_back = self
                .auto_scaling
                .iter()
                .zip(&fence.auto_scaling_group)
                .enumerate()
                .map(|(index, (dr_group, primary_group))| {
                    // Paris's groups serve alone (no standby instances there): the first gives what
                    // Ireland needed from it and the standby instances.
                    let standby_share: u16 = if index == 0 {
                        self.standby_instances.iter().map(|group| group.minimum_healthy).sum()
                    } else {
                        0
                    };
                    AutoScaling {
                        group: primary_group.clone(),
                        standby: none,
                        failover: dr_group.failover,
                        minimum_healthy: (dr_group.minimum_healthy + standby_share)
                            .min(dr_group.failover.desired)
                            .max(1),
                    }
                })
                .collect();
            let fenced = self.auto_scaling.iter().map(|dr_group| dr_group.group.clone()).collect();
            (given_back, Fence { auto_scaling_group: fenced, ..fence.clone() })
        };
        Ok(Plan {
            primary_region: self.dr_region.clone(),
            dr_region: self.primary_region.clone(),
            databases: self
                .databases
                .iter()
                .map(|db| Database {
                    primary_instance: db.replica_instance.clone(),
                    replica_instance: db.primary_instance.clone(),
                    ..db.clone()
                })
                .collect(),
            standby_instances: Vec::new(),
            auto_scaling,
            fence: Some(fence),
            s3_replication: Vec::new(),
            trigger: None,
            restore_test: None,
            // The load balancer and the probes are the DR region's as written: Paris serving
            // again is judged by its group and the DNS answer.
            serving: None,
            readiness: None,
            // The plan's ECS services are Ireland's: Paris's services serve as its own deployment
            // keeps them (a fence does not scale them), and the stand-down after the failback
            // sets Ireland's back to their standby count.
            ecs_services: Vec::new(),
            reversed: true,
            ..self.clone()
        })
    }

    /// A database by its primary instance (a restore test's `run.restore_database`), or the
    /// plan's first when none is named.
    pub fn database_named(&self, primary_instance: Option<&str>) -> Result<&Database, DrError> {
        let found = match primary_instance {
            Some(name) => self.databases.iter().find(|db| db.primary_instance == name),
            None => self.databases.first(),
        };
        found.ok_or_else(|| DrError::InvalidInput {
            message: format!(
                "plan {} names no database {}",
                self.name,
                primary_instance.map_or("at all".to_string(), |name| format!("with primary instance {name}"))
            ),
        })
    }

    /// Where a standby group's field is, in problems: `standby_instances.FIELD` in a plan with one
    /// group (as it may be written), `standby_instances[i].FIELD` otherwise.
    pub fn standby_field(&self, index: usize, field: &str) -> String {
        if self.standby_instances.len() == 1 {
            format!("standby_instances.{field}")
        } else {
            format!("standby_instances[{index}].{field}")
        }
    }

    /// Whether the plan names any standby instance: a failback's plan ([`Plan::facing`]) has none
    /// to start.
    pub fn has_standby_instances(&self) -> bool {
        self.standby_instances.iter().any(InstanceSelector::selects_any)
    }

    /// Where a database's field is, in messages and problems: `database.FIELD` in a plan with one
    /// (as it may be written), `databases[i].FIELD` in an estate.
    pub fn database_field(&self, index: usize, field: &str) -> String {
        if self.databases.len() == 1 { format!("database.{field}") } else { format!("databases[{index}].{field}") }
    }

    /// Where a record sends traffic while this plan's `primary_region` serves: the PRIMARY
    /// record's value as written, Ireland's in a reversed plan.
    pub fn serving_target<'r>(&self, record: &'r DnsRecord) -> &'r RecordTarget {
        if self.reversed { &record.secondary } else { &record.primary }
    }

    /// Where a move of this plan sends a record's traffic.
    pub fn target_after_move<'r>(&self, record: &'r DnsRecord) -> &'r RecordTarget {
        if self.reversed { &record.primary } else { &record.secondary }
    }

    /// Where a record's field is, in problems: `dns.FIELD` in a plan with one record (as it may
    /// be written), `dns.records[i].FIELD` otherwise.
    pub fn dns_field(&self, index: usize, field: &str) -> String {
        if self.dns.records.len() == 1 { format!("dns.{field}") } else { format!("dns.records[{index}].{field}") }
    }

    /// (primary, DR) as the plan is written, whichever way [`Plan::facing`] turned it: the
    /// regions its clients are built for before they are faced ([`Plan::move_direction`]).
    pub fn written_regions(&self) -> (&str, &str) {
        if self.reversed { (&self.dr_region, &self.primary_region) } else { (&self.primary_region, &self.dr_region) }
    }

    /// The way a move of this plan sends traffic (the routing metric's value).
    pub fn move_direction(&self) -> Direction {
        if self.reversed { Direction::ToPrimary } else { Direction::ToDr }
    }
}

impl Fence {
    fn default_barrier_timeout_seconds() -> u32 {
        300
    }
    pub fn barrier_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.barrier_timeout_seconds))
    }
}

/// Where the restore test finds its snapshots, in `dr_region`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotSource {
    /// Automated snapshots of the Ireland replica.
    Automated,
    /// Snapshots of the Paris primary copied to Ireland (any type; they keep the primary's id).
    CrossRegionCopy,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreTest {
    pub snapshot_source: SnapshotSource,
    /// The newest snapshot must be at most this old, or nothing is restored.
    pub max_snapshot_age_hours: u32,
    /// Class and DB subnet group (in `dr_region`) of the temporary instance.
    pub instance_class: String,
    pub subnet_group: String,
    /// The restored instance must run this engine ...
    #[serde(default = "RestoreTest::default_engine")]
    pub engine: String,
    /// ... at a version starting with this, e.g. "15".
    pub engine_version: String,
    /// The janitor deletes a restore-test instance this long after it was created.
    #[serde(default = "RestoreTest::default_expiry_hours")]
    pub expiry_hours: u32,
    /// Optional hook: a Lambda function the validation invokes with the restored instance's
    /// endpoint (`SqlProbeRequest`); it answers `{ok, detail}`. `restore-sql-probe` is the
    /// shipped one (the endpoint accepts connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_probe_function: Option<String>,
    /// How long one invocation of `sql_probe_function` may take (1 s to
    /// [`MAX_HOOK_TIMEOUT_SECONDS`]).
    #[serde(default = "default_hook_timeout_seconds")]
    pub hook_timeout_seconds: u32,
}

impl RestoreTest {
    fn default_engine() -> String {
        "postgres".to_string()
    }
    fn default_expiry_hours() -> u32 {
        6
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Environment {
    /// Real customer traffic: drills need explicit confirmation.
    #[default]
    Production,
    /// A rehearsal estate.
    Drill,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    pub rto_minutes: u32,
    pub rpo_minutes: u32,
}

impl Targets {
    pub fn rto(&self) -> Duration {
        Duration::from_secs(u64::from(self.rto_minutes) * 60)
    }
    pub fn rpo(&self) -> Duration {
        Duration::from_secs(u64::from(self.rpo_minutes) * 60)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// RDS instance identifier of the primary, in `primary_region`.
    pub primary_instance: String,
    /// RDS instance identifier of its cross-region read replica, in `dr_region`.
    pub replica_instance: String,
    /// A ReplicaLag datapoint older than this means "not replicating", never "lag 0".
    #[serde(default = "Database::default_lag_freshness_seconds")]
    pub lag_freshness_seconds: u32,
    /// Days of automated backups the promoted instance keeps (RDS allows 1 to 35). The promotion
    /// request carries it: without it, RDS keeps 1 day.
    pub backup_retention_days: u32,
    /// The promoted instance's daily backup window, UTC `hh24:mi-hh24:mi`, at least 30 minutes
    /// (RDS's rule), carried by the promotion request with the retention.
    pub backup_window: String,
    /// Secrets Manager secret (name or ARN, in `dr_region`) with the credentials the runbook uses
    /// to speak SQL to both instances: `{"username", "password"}` and optionally `"dbname"`
    /// (default `postgres`), as RDS's managed master-user secrets hold them. With it, the RPO
    /// check writes database heartbeats, a planned move proves its barrier, and an unplanned one
    /// measures its data loss from the newest heartbeat replayed in Ireland.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

/// The most failover records a plan may name: one change batch moves them all with record-upsert
/// (Route 53 takes up to 1,000 records a batch), and the status step asks DNS for each.
pub const MAX_DNS_RECORDS: usize = 20;

/// The most Auto Scaling groups a plan may name: the compute branch's one function describes and
/// raises each in turn.
pub const MAX_AUTO_SCALING_GROUPS: usize = 20;

/// The most groups of standby instances a plan may name (each at most
/// [`MAX_STANDBY_INSTANCES`]).
pub const MAX_STANDBY_GROUPS: usize = 10;

/// The most databases a plan may name: the data tier's steps read and promote them in turn inside
/// one function run each, and a failover's report and decision name every one.
pub const MAX_DATABASES: usize = 20;

/// One value (a table, a string: the single-valued form plans were first written in) or a list of
/// them, read with the same errors as any value: an untagged enum would hide a typo behind "did
/// not match any variant".
fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct OneOrMany<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for OneOrMany<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("one value or a list of them")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(|one| vec![one])
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            T::deserialize(serde::de::value::StrDeserializer::new(text)).map(|one| vec![one])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::<T>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }
    }
    deserializer.deserialize_any(OneOrMany(std::marker::PhantomData))
}

/// Writes one value as itself (the form a plan with one was first written in, so that its text
/// and version stay) and several as a list.
fn one_or_many_out<S: serde::Serializer, T: Serialize>(values: &[T], serializer: S) -> Result<S::Ok, S::Error> {
    match values {
        [one] => one.serialize(serializer),
        many => many.serialize(serializer),
    }
}

impl Database {
    /// How records, reports and messages name it: `primary -> replica`.
    pub fn label(&self) -> String {
        format!("{} -> {}", self.primary_instance, self.replica_instance)
    }

    fn default_lag_freshness_seconds() -> u32 {
        300
    }
    pub fn lag_freshness(&self) -> Duration {
        Duration::from_secs(u64::from(self.lag_freshness_seconds))
    }
}

/// The standby EC2 instances in the DR region: exactly one of `ids` or `tag`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<TagFilter>,
    /// With `tag`: how many standby instances the tag must select. A terminated or missing one is
    /// named by `plan check` and preflight instead of a failover that runs short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u16>,
    /// How many of them must run with checks ok for the application to serve (required: only
    /// the service's owner knows). A failover that reaches it but not every instance moves
    /// traffic and names the shortfall; below it, after the promotion, a planned move rolls back
    /// and an unplanned one asks a human.
    pub minimum_healthy: u16,
    /// ARN of the customer-managed KMS key of the instances' EBS volumes, if any: the start step's
    /// role may then create grants on it for EC2 (template.yaml's `StandbyEbsKmsKeyArn`), without
    /// which a start falls back to stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebs_kms_key: Option<String>,
}

impl InstanceSelector {
    /// Whether it names any instance: a failback's plan ([`Plan::facing`]) has none to start.
    pub fn selects_any(&self) -> bool {
        self.ids.is_some() || self.tag.is_some()
    }

    /// How records, messages and errors name the group: by its tag, or its instance ids.
    pub fn label(&self) -> String {
        match (&self.tag, &self.ids) {
            (Some(tag), _) => format!("tag {}={}", tag.key, tag.value),
            (None, Some(ids)) => ids.join(", "),
            (None, None) => "none".to_string(),
        }
    }

    /// How many standby instances the plan expects.
    pub fn expected(&self) -> usize {
        match (&self.ids, self.count) {
            (Some(ids), _) => ids.len(),
            (None, Some(count)) => usize::from(count),
            (None, None) => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TagFilter {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AutoScaling {
    /// Auto Scaling group name in `dr_region`.
    pub group: String,
    /// The size it keeps while Paris serves (usually all zero).
    pub standby: Capacity,
    /// The size a failover raises it to (never lowering a higher current value).
    pub failover: Capacity,
    /// How many InService and Healthy instances (and healthy targets, with `[serving]`) the group
    /// must have for the application to serve (required: only the service's owner knows). At
    /// most `failover.desired`; the standby instances' and the group's minimums are not both 0.
    pub minimum_healthy: u16,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    pub min: u16,
    pub desired: u16,
    pub max: u16,
}

/// How traffic moves: the estate's failover records, all in one hosted zone, moved together by
/// one strategy (and, with the routing strategy, one routing health check that every PRIMARY
/// record carries: one metric moves them all at once).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "DnsText", into = "DnsText")]
pub struct Dns {
    /// How the runbook moves traffic (docs/plan.md compares them).
    pub strategy: DnsStrategy,
    /// Public hosted zone name, e.g. `platform.example.com.`.
    pub hosted_zone: String,
    /// The failover records, inside `hosted_zone` (`[[dns.records]]`; a plan with one may write
    /// its fields in `[dns]` itself).
    pub records: Vec<DnsRecord>,
    /// The routing health check every PRIMARY record carries (the `routing-health-check`
    /// strategy).
    pub routing: Option<Routing>,
}

/// One failover pair of records: PRIMARY (Paris) and SECONDARY (Ireland), under one name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRecord {
    /// The failover record, inside the zone.
    pub record: String,
    #[serde(default = "DnsRecord::default_record_type")]
    pub record_type: String,
    pub ttl_seconds: u32,
    /// The PRIMARY failover record: Paris.
    pub primary: RecordTarget,
    /// The SECONDARY failover record: Ireland. It carries no health check.
    pub secondary: RecordTarget,
}

impl DnsRecord {
    fn default_record_type() -> String {
        "CNAME".to_string()
    }
}

/// `[dns]` as written: one record's fields in the table itself (the form plans were first written
/// in, and the one a plan with one record is published in, so that its version stays), or
/// `[[dns.records]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct DnsText {
    #[serde(default)]
    strategy: DnsStrategy,
    hosted_zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    primary: Option<RecordTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secondary: Option<RecordTarget>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    records: Vec<DnsRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    routing: Option<Routing>,
}

impl TryFrom<DnsText> for Dns {
    type Error = String;

    fn try_from(text: DnsText) -> Result<Dns, String> {
        let single = (text.record, text.ttl_seconds, text.primary, text.secondary);
        let written_in_table = single.0.is_some() || single.1.is_some() || single.2.is_some() || single.3.is_some();
        let records = match (single, text.records.is_empty()) {
            ((None, None, None, None), _) => text.records,
            ((Some(record), Some(ttl_seconds), Some(primary), Some(secondary)), true) => vec![DnsRecord {
                record,
                record_type: text.record_type.unwrap_or_else(DnsRecord::default_record_type),
                ttl_seconds,
                primary,
                secondary,
            }],
            _ if written_in_table && !text.records.is_empty() => {
                return Err("[dns] names a record and [[dns.records]] too: write every record as [[dns.records]] \
                            (record, ttl_seconds, [dns.records.primary], [dns.records.secondary])"
                    .into());
            }
            _ => {
                return Err("[dns] names part of a record: give record, ttl_seconds, [dns.primary] and \
                            [dns.secondary], or write each record as [[dns.records]]"
                    .into());
            }
        };
        Ok(Dns { strategy: text.strategy, hosted_zone: text.hosted_zone, records, routing: text.routing })
    }
}

impl From<Dns> for DnsText {
    fn from(dns: Dns) -> DnsText {
        let mut text = DnsText {
            strategy: dns.strategy,
            hosted_zone: dns.hosted_zone,
            record: None,
            record_type: None,
            ttl_seconds: None,
            primary: None,
            secondary: None,
            records: Vec::new(),
            routing: dns.routing,
        };
        match <[DnsRecord; 1]>::try_from(dns.records) {
            Ok([one]) => {
                text.record = Some(one.record);
                text.record_type = Some(one.record_type);
                text.ttl_seconds = Some(one.ttl_seconds);
                text.primary = Some(one.primary);
                text.secondary = Some(one.secondary);
            }
            Err(records) => text.records = records,
        }
        text
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsStrategy {
    /// The PRIMARY record carries a routing health check that follows an alarm in the DR region
    /// over a metric only the runbook publishes: traffic moves when the runbook says so, and
    /// neither a sick Paris nor a recovering one moves it. No Route 53 API call on the failover
    /// path. The default.
    #[default]
    RoutingHealthCheck,
    /// UPSERT the PRIMARY record to Ireland's value: a Route 53 control-plane call (us-east-1).
    /// The records carry no health check. For simple setups.
    RecordUpsert,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordTarget {
    pub set_identifier: String,
    pub value: String,
}

/// The routing health check: a CLOUDWATCH_METRIC health check on the PRIMARY record that follows
/// `alarm` (in `dr_region`, `TreatMissingData = ignore`) over `namespace`/`metric` (dimension
/// `Plan`), which only the runbook publishes: 1 sends traffic to the DR region, 0 back to the
/// primary. The health check has `InsufficientDataHealthStatus = LastKnownStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// `Name` tag of the routing health check.
    pub health_check: String,
    pub alarm: String,
    pub namespace: String,
    pub metric: String,
}

/// Where a move sends traffic: a failover to the DR region, a failback to the primary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// The primary region serves (routing metric 0): a failback.
    ToPrimary,
    /// The DR region serves (routing metric 1): a failover.
    #[default]
    ToDr,
}

impl Direction {
    /// What a move this way is called.
    pub fn move_name(self) -> &'static str {
        match self {
            Direction::ToPrimary => "failback",
            Direction::ToDr => "failover",
        }
    }

    /// The value of the routing metric that sends traffic this way.
    pub fn metric_value(self) -> f64 {
        match self {
            Direction::ToPrimary => 0.0,
            Direction::ToDr => 1.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BucketPair {
    /// Replicated bucket in `primary_region`.
    pub source_bucket: String,
    /// Its replication target in `dr_region`.
    pub replica_bucket: String,
    /// Whether S3 Replication metrics are enabled on the rule.
    #[serde(default)]
    pub replication_metrics: bool,
    /// Id of the replication rule: the `RuleId` dimension of its replication metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_rule: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reports {
    /// Bucket in `dr_region` that receives run reports.
    pub bucket: String,
    #[serde(default = "Reports::default_prefix")]
    pub prefix: String,
}

impl Reports {
    fn default_prefix() -> String {
        "runs/".to_string()
    }
}

/// When an alarm may start a failover on its own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// `Name` tag of the detection health check: the Route 53 health check on the primary
    /// endpoint whose `HealthCheckStatus` the alarms watch. It is attached to no record, so that
    /// it never moves traffic by itself.
    pub detection_health_check: String,
    /// CloudWatch alarms (in us-east-1, on the detection health check's `HealthCheckStatus`)
    /// whose move to ALARM starts a failover, once confirmed.
    pub alarms: Vec<String>,
    /// After the alarm, the health check must stay unhealthy this long before anything starts.
    #[serde(default = "Trigger::default_confirmation_window")]
    pub confirmation_window_seconds: u32,
    /// Two automatic failovers of the plan are at least this far apart.
    #[serde(default = "Trigger::default_min_between_runs")]
    pub min_seconds_between_runs: u32,
    /// Optional independent probe of the primary endpoint, sent from the DR region: an answer
    /// below 500 means Paris still serves, and nothing starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_url: Option<String>,
    /// Prepare while confirming: as soon as the alarm arrives, start the standby instances and
    /// raise the DR group (cheap, reversible) while the trigger confirms the outage; promotion
    /// and routing wait for the confirmation. A flap undoes the preparation.
    #[serde(default)]
    pub prepare_while_confirming: bool,
}

impl Trigger {
    /// Route53 health checkers report every 10 or 30 s; the metric has one-minute datapoints.
    pub const MIN_CONFIRMATION_WINDOW_SECONDS: u32 = 60;
    /// The trigger waits out the window inside one Lambda invocation (at most 15 minutes).
    pub const MAX_CONFIRMATION_WINDOW_SECONDS: u32 = 600;

    fn default_confirmation_window() -> u32 {
        180
    }
    fn default_min_between_runs() -> u32 {
        3600
    }
    pub fn confirmation_window(&self) -> Duration {
        Duration::from_secs(u64::from(self.confirmation_window_seconds))
    }
    pub fn min_between_runs(&self) -> Duration {
        Duration::from_secs(u64::from(self.min_seconds_between_runs))
    }
}

impl Plan {
    /// Reads, parses and validates a plan file.
    pub fn load(path: &Path) -> Result<Plan, DrError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| DrError::PlanNotFound { path: origin.clone(), message: e.to_string() })?;
        let plan = Plan::parse(&text, &origin)?;
        plan.validate()?;
        Ok(plan)
    }

    /// Parses a plan document without validating it; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Plan, DrError> {
        toml::from_str(text).map_err(|e| DrError::PlanParse { path: origin.to_string(), message: e.to_string() })
    }

    /// Checks every rule and reports all broken ones together.
    pub fn validate(&self) -> Result<(), DrError> {
        if self.reversed {
            // Derived from a validated plan by `facing`; Paris has no standby instances, which a
            // written plan must name.
            return Ok(());
        }
        let problems = self.problems();
        if problems.is_empty() { Ok(()) } else { Err(DrError::InvalidPlan { plan: self.name.clone(), problems }) }
    }
}

/// A DNS name with exactly one trailing dot, lower-cased, as Route53 returns names.
pub fn fqdn(name: &str) -> String {
    format!("{}.", name.trim().trim_end_matches('.').to_ascii_lowercase())
}
