//! The janitor: deletes expired restore-test instances, and nothing else.

use super::{EXPIRES_AT_TAG, delete_restore_test_instance, is_restore_test_instance};
use crate::aws::AwsClients;
use crate::error::DrError;
use crate::time::{self, Timestamp};
use serde::{Deserialize, Serialize};

/// What the janitor did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct JanitorRun {
    /// Restore-test instances past their expiry, deleted.
    pub deleted: Vec<String>,
    /// Restore-test instances not expired yet.
    pub kept: Vec<String>,
    /// Expired ones the delete failed for (named error), tried again next run.
    #[serde(default)]
    pub failed: Vec<String>,
}

impl JanitorRun {
    /// The run, or an error naming the expired instances it could not delete: a leftover needs a
    /// human (the janitor's Errors alarm).
    pub fn into_result(self) -> Result<JanitorRun, DrError> {
        tracing::info!(deleted = ?self.deleted, kept = ?self.kept, failed = ?self.failed, "janitor done");
        if self.failed.is_empty() {
            Ok(self)
        } else {
            Err(DrError::AwsCallFailed {
                service: "rds",
                operation: "DeleteDBInstance",
                message: format!("expired restore-test instances not deleted: {}", self.failed.join(", ")),
            })
        }
    }
}

/// Deletes the restore-test instances (prefix and tag) of the DR region whose expiry has passed,
/// and nothing else. An instance with the prefix and the tag but no readable expiry is kept and
/// reported: deleting by guess is worse than a leftover.
pub async fn janitor(clients: &AwsClients, now: Timestamp) -> Result<JanitorRun, DrError> {
    let mut run = JanitorRun::default();
    let mut pages = clients.dr.rds.describe_db_instances().into_paginator().send();
    let mut candidates = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| DrError::from_sdk("rds", "DescribeDBInstances", e))?;
        candidates.extend(page.db_instances().iter().filter(|db| is_restore_test_instance(db)).cloned());
    }
    for db in candidates {
        let id = db.db_instance_identifier().unwrap_or_default().to_string();
        let expires = db
            .tag_list()
            .iter()
            .find(|tag| tag.key() == Some(EXPIRES_AT_TAG))
            .and_then(|tag| tag.value())
            .and_then(|value| time::parse(value).ok());
        match expires {
            Some(at) if at <= now => match delete_restore_test_instance(clients, &db).await {
                Ok(()) => {
                    tracing::info!(resource = %id, expired_at = %time::rfc3339(at), "expired restore-test instance deleted");
                    run.deleted.push(id);
                }
                // One stuck instance must not keep the janitor from the others.
                Err(err) => {
                    tracing::error!(resource = %id, error = err.name(), "{err}");
                    run.failed.push(format!("{id}: {}", err.name()));
                }
            },
            Some(_) => run.kept.push(id),
            None => {
                tracing::warn!(resource = %id, "restore-test instance without a readable expiry: kept");
                run.kept.push(id);
            }
        }
    }
    Ok(run)
}
