//! What the triggers are given, once per Lambda container: the plan store, the state machines
//! they start, the plans they watch, a plan's AWS clients, and how long an invocation waits.

use std::sync::Arc;
use std::time::Duration;

use crate::aws::AwsClients;
use crate::plan::Plan;
use crate::run::Starter;
use crate::store::PlanStore;

/// Builds the AWS clients of a plan (a Lambda caches them; tests hand out the emulator's).
pub type ClientsForPlan = Arc<dyn Fn(&Plan) -> AwsClients + Send + Sync>;

/// Everything the triggers need, built once per Lambda container.
#[derive(Clone)]
pub struct TriggerContext {
    pub store: PlanStore,
    pub starter: Starter,
    /// The round-trip game day's machine (`statemachines/round-trip.asl.json`), where deployed.
    pub round_trip: Option<Starter>,
    /// The published plans the alarm trigger considers.
    pub plan_names: Vec<String>,
    /// The deployment's AWS account (`DEPLOYMENT_ACCOUNT_ID`): an alarm event must come from it.
    pub account_id: String,
    pub clients_for: ClientsForPlan,
    /// How often the alarm trigger looks at the metric again while the window runs.
    pub confirmation_poll: Duration,
    /// How long one invocation waits for the window's data ([`MAX_CONFIRMATION_WAIT`] in Lambda).
    pub confirmation_wait: Duration,
    /// The runbook's fence function (`FENCE_FUNCTION`), which the schedule invokes to fence the
    /// old primary region when it answers again after a failover
    /// ([`on_return`](super::on_return)). `None`: never.
    pub fence_function: Option<String>,
}

/// The longest an invocation waits for the confirmation window's data (the window, at most
/// 600 s, plus the minutes Route 53's datapoints take to land, up to 240 s more): then the
/// decision is `pending` and the schedule takes it over. With the probe and the plan-store and
/// Step Functions calls, the invocation stays well within its 900 s timeout.
pub const MAX_CONFIRMATION_WAIT: Duration = Duration::from_secs(660);
