//! What the customer's Terraform must change after a failover (`drctl plan terraform-inputs`).
//!
//! The Terraform that created the estate (the primary and its replica, the failover records)
//! describes it as the plan is written. After a failover, the estate differs: the DR region is
//! primary, its instance a standalone database, the old primary no replica (until reprotect), and
//! with `record-upsert` the PRIMARY record names the DR region's target. Applied as it is, that
//! Terraform would try to undo the failover. This reads the estate as it stands (the plan store's
//! state, RDS, Route 53) and says which inputs of such modules now differ, and to what.

use serde::Serialize;

use crate::aws::AwsClients;
use crate::aws::lookup::describe_db_instance;
use crate::error::DrError;
use crate::plan::{DnsStrategy, Plan};
use crate::store::PlanStore;

/// One input of the estate's own Terraform, as the plan writes it and as the estate stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TerraformInput {
    /// The input, named as the plan's field it mirrors.
    pub name: String,
    /// Its value as the plan is written (`None`: no value).
    pub written: Option<String>,
    pub now: Option<String>,
    /// Why it differs, or how it is known.
    pub why: String,
}

impl TerraformInput {
    pub fn differs(&self) -> bool {
        self.written != self.now
    }
}

/// The estate's inputs, each as written and as it stands.
pub async fn terraform_inputs(
    clients: &AwsClients,
    store: &PlanStore,
    plan: &Plan,
) -> Result<Vec<TerraformInput>, DrError> {
    let state = store.read_state(&plan.name).await?.state;
    let failed_over = state.dr_is_primary(plan);
    let (primary_region, dr_region) =
        if failed_over { (&plan.dr_region, &plan.primary_region) } else { (&plan.primary_region, &plan.dr_region) };
    let mut inputs = vec![
        TerraformInput {
            name: "primary_region".into(),
            written: Some(plan.primary_region.clone()),
            now: Some(primary_region.clone()),
            why: format!("the plan store: plan {} is {}", plan.name, state.status.name()),
        },
        TerraformInput {
            name: "dr_region".into(),
            written: Some(plan.dr_region.clone()),
            now: Some(dr_region.clone()),
            why: "the region the next move goes to".into(),
        },
    ];
    // Faced as the estate stands: `primary` the writer's region, `dr` the other.
    let faced = clients.facing(state.next_move(plan));
    for (index, db) in plan.databases.iter().enumerate() {
        let (writer, other) = if failed_over {
            (&db.replica_instance, &db.primary_instance)
        } else {
            (&db.primary_instance, &db.replica_instance)
        };
        let writer_db = describe_db_instance(&faced.primary.rds, writer).await?;
        // The region failed away from may not answer yet: its instance is then unknown, not an
        // error.
        let other_read = describe_db_instance(&faced.dr.rds, other).await;
        let source = |db: &Option<aws_sdk_rds::types::DbInstance>| {
            db.as_ref().and_then(|db| db.read_replica_source_db_instance_identifier()).map(str::to_string)
        };
        let other_db = other_read.as_ref().ok().cloned().flatten();
        let replica_now = match (&other_db, source(&other_db)) {
            (Some(_), Some(_)) => Some(other.clone()),
            _ => None,
        };
        let replica_why = match (&other_read, source(&other_db)) {
            (Err(err), _) => format!(
                "{other} in {} could not be read ({}): no replica to count on until it answers and reprotect runs",
                plan.region_name(dr_region),
                err.name()
            ),
            (Ok(db), _) if db.is_none() => {
                format!("no {other} in {}: reprotect makes one", plan.region_name(dr_region))
            }
            (Ok(_), Some(from)) => format!("{other} in {} replicates {from}", plan.region_name(dr_region)),
            (Ok(_), None) => format!(
                "{other} in {} is standalone, no replica: reprotect makes one (docs/operations.md, Reprotect after a failover)",
                plan.region_name(dr_region)
            ),
        };
        let writer_why = match (&writer_db, source(&writer_db)) {
            (Some(_), None) => {
                format!("{writer} in {} is standalone and takes the writes", plan.region_name(primary_region))
            }
            (Some(_), Some(from)) => format!("{writer} still replicates {from}: not promoted"),
            (None, _) => format!("no {writer} in {}", plan.region_name(primary_region)),
        };
        inputs.push(TerraformInput {
            name: plan.database_field(index, "primary_instance"),
            written: Some(db.primary_instance.clone()),
            now: Some(writer.clone()),
            why: writer_why,
        });
        inputs.push(TerraformInput {
            name: plan.database_field(index, "replica_instance"),
            written: Some(db.replica_instance.clone()),
            now: replica_now,
            why: replica_why,
        });
    }
    let upserted = match plan.dns.strategy {
        DnsStrategy::RecordUpsert => Some(crate::runbook::dns::primary_record_values(clients, plan).await?),
        DnsStrategy::RoutingHealthCheck => None,
    };
    for (index, record) in plan.dns.records.iter().enumerate() {
        let written_primary = record.primary.value.clone();
        let (record_now, record_why) = match upserted.as_ref().and_then(|values| values.get(index)) {
            Some(value) => {
                (value.clone(), format!("Route 53: the PRIMARY record of {} answers {value}", record.record))
            }
            // The records do not change: traffic moved by the routing health check, whose metric
            // the runbook publishes and Terraform does not manage.
            None => (
                written_primary.clone(),
                "routing-health-check: the records stay; the routing metric moved traffic".into(),
            ),
        };
        inputs.push(TerraformInput {
            name: plan.dns_field(index, "primary.value"),
            written: Some(written_primary),
            now: Some(record_now),
            why: record_why,
        });
    }
    Ok(inputs)
}

/// The inputs as HCL assignments, the ones that differ first, each with what it was and why.
pub fn render(plan: &Plan, inputs: &[TerraformInput]) -> String {
    let quoted = |value: &Option<String>| value.as_ref().map_or("null".to_string(), |v| format!("{v:?}"));
    let width = inputs.iter().map(|input| input.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    let differing: Vec<&TerraformInput> = inputs.iter().filter(|input| input.differs()).collect();
    if differing.is_empty() {
        out.push_str(&format!(
            "# plan {}: the estate stands as the plan is written; Terraform's inputs need no change\n",
            plan.name
        ));
    } else {
        out.push_str(&format!(
            "# plan {}: the inputs of the estate's Terraform that now differ from the plan as written\n\
             # (set them before the next apply, or it undoes the failover: docs/deploy.md)\n",
            plan.name
        ));
    }
    for input in &differing {
        out.push_str(&format!(
            "{:width$} = {}  # was {}: {}\n",
            input.name,
            quoted(&input.now),
            quoted(&input.written),
            input.why
        ));
    }
    for input in inputs.iter().filter(|input| !input.differs()) {
        out.push_str(&format!("# unchanged: {} = {} ({})\n", input.name, quoted(&input.now), input.why));
    }
    out
}
