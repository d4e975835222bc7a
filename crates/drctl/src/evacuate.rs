//! `drctl evacuate REGION`: every plan of an inventory whose primary is REGION failed over, Tier 1
//! first, a bounded number at a time (`dr_core::manual::evacuation`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use dr_core::DrError;
use dr_core::aws::AwsClients;
use dr_core::manual::evacuation::{EvacuationRequest, Inventory, evacuate};
use dr_core::notify;

use crate::output;

#[derive(Args)]
pub struct EvacuateArgs {
    /// The region evacuated: every plan of the inventory whose primary region it is.
    pub region: String,
    /// The inventory (TOML): `[[plans]]` with `plan` (its file), `bucket` (its plan store) and
    /// `state_machine` (its failover state machine's ARN).
    #[arg(long)]
    pub inventory: PathBuf,
    /// Who evacuates (recorded in each plan's state and report).
    #[arg(long)]
    pub by: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
    /// Each plan's dry run: what each would change, nothing changed, nothing taken.
    #[arg(long)]
    pub dry_run: bool,
    /// At most this many plans failing over at once (they share the DR region's API quotas).
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// How often the running failovers are read, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub poll_seconds: f64,
    /// Also write the report as Markdown to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Tell the on-call when it ends: the evacuation's notice (`evacuation-finished`, critical if
    /// a plan failed) published to this SNS topic, and put on the event bus `NOTICE_EVENT_BUS`
    /// names, if set (the deployment's `NotificationTopicArn` and bus, as its functions tell).
    #[arg(long, env = "DR_NOTIFY_TOPIC_ARN")]
    pub topic: Option<String>,
}

impl EvacuateArgs {
    /// Prints the evacuation report (JSON); exit 0 when every plan moved (or rehearsed), else 1.
    pub async fn run(self) -> Result<ExitCode, DrError> {
        let inventory = Inventory::load(&self.inventory)?;
        let request = EvacuationRequest {
            region: self.region,
            by: self.by,
            reason: self.reason,
            dry_run: self.dry_run,
            concurrency: self.concurrency,
            poll: Duration::try_from_secs_f64(self.poll_seconds).unwrap_or(Duration::from_secs(5)),
        };
        let told = |line: &str| eprintln!("{line}");
        let report = evacuate(&inventory, &request, &told).await?;
        if let Some(path) = &self.markdown {
            std::fs::write(path, report.markdown()).map_err(|e| DrError::InvalidInput {
                message: format!("the report not written to {}: {e}", path.display()),
            })?;
        }
        if let Some(topic) = &self.topic {
            // The topic's own region (arn:aws:sns:REGION:ACCOUNT:NAME): where it is published.
            let region = topic.split(':').nth(3).filter(|r| !r.is_empty()).ok_or_else(|| DrError::InvalidInput {
                message: format!("--topic {topic:?}: not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
            })?;
            let mut clients = AwsClients::for_regions(region, region).await;
            clients.notify_topic = Some(topic.clone());
            let notice = report.notice();
            notify::send(&clients, &notice).await;
            told(&format!("told {topic}: {}", notice.subject));
        }
        output::print_json(&report)?;
        Ok(output::ready_or_not(report.all_succeeded()))
    }
}
