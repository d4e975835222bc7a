//! dr-core: everything the Lambdas and `drctl` share, testable without Lambda.
//!
//! The modules are layers; each imports only from the ones listed before it
//! (`docs/architecture.md`):
//!
//! 1. [`error`], [`time`], [`plan`]: the error enum with stable names, one time type, the plan
//!    and its rules;
//! 2. [`aws`]: the SDK clients and call log, lookups, S3 objects, metric reads; [`notify`]:
//!    messages to the deployment's SNS topic;
//! 3. [`run`]: a run's own types (execution state, step records, step keys, the starter);
//! 4. [`store`]: the published plans and each plan's single-flight state;
//! 5. [`rpo`], [`readiness`]: replica lag and the RPO check; `plan check`;
//! 6. [`report`]: what both run reports share;
//! 7. [`runbook`], [`restore`], [`trigger`]: the failover steps (and the round trip's legs and
//!    report), the restore test, the alarm trigger;
//! 8. [`game_day`]: a drill, a dry run or a round trip started by hand (the trigger's
//!    single-flight and the round trip's first leg); [`reconcile`]: a hold whose run ended
//!    without ending it.
//!
//! The Lambda entry points (`functions/`) and the operator CLI (`crates/drctl`) sit on top; the
//! emulator (`crates/dr-emulator`) is not part of the product.

pub mod error;
pub mod plan;
pub mod time;

pub mod aws;
pub mod notify;

pub mod run;

pub mod store;

pub mod readiness;
pub mod rpo;

pub mod report;

pub mod restore;
pub mod runbook;
pub mod trigger;

pub mod game_day;
pub mod reconcile;
// Layer 12: a deployed stack examined against the real account (drctl doctor).
pub mod doctor;

pub use error::DrError;
pub use plan::Plan;
