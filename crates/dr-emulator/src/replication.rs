//! S3 replication, modelled: moto keeps replication rules but copies no object.

use dr_core::aws::{AwsClients, objects};
use dr_core::error::DrError;
use dr_core::plan::Plan;
use dr_core::rpo::check::heartbeat_key;

use crate::guard::require_emulator;

/// Does what S3 replication would: copies each pair's RPO heartbeat from the Paris bucket to the
/// Ireland bucket (moto keeps replication rules but copies nothing). Returns how many it copied.
pub async fn replicate_heartbeats(clients: &AwsClients, plan: &Plan) -> Result<usize, DrError> {
    require_emulator(clients)?;
    let key = heartbeat_key(&plan.name);
    let mut copied = 0;
    for pair in &plan.s3_replication {
        let Some(object) = objects::get(&clients.primary.s3, &pair.source_bucket, &key).await? else { continue };
        objects::put(&clients.dr.s3, &pair.replica_bucket, &key, object.body, "application/json").await?;
        copied += 1;
    }
    Ok(copied)
}
