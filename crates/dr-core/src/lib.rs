//! dr-core: everything the Lambdas and `drctl` share, testable without Lambda.
//!
//! The modules are layers; each imports only from layers of a lower number, and modules of one
//! layer never import each other. `tests/layers.rs` enforces this numbering on the source;
//! `docs/architecture.md` describes each layer.
//!
//! 0. [`error`]: the error enum with stable names;
//! 1. [`time`]: one time type;
//! 2. [`plan`]: the plan and its rules;
//! 3. [`aws`]: the SDK clients and call log, lookups, S3 objects, metric reads, SQL, hooks;
//! 4. [`notify`]: messages to the deployment's SNS topic; [`run`]: a run's own types (execution
//!    state, step records and keys, the runbook tables, budgets, the starter);
//! 5. [`store`]: the published plans and each plan's single-flight state;
//! 6. [`rpo`]: replica lag and the RPO check;
//! 7. [`readiness`]: `plan check`;
//! 8. [`report`]: what every run report shares;
//! 9. [`runbook`], [`restore`]: the failover and reprotect steps (and the round trip's legs and
//!    report), the restore test;
//! 10. [`trigger`]: the alarm trigger (it prepares the compute with the runbook's steps);
//! 11. [`game_day`], [`reconcile`], [`manual`]: a drill, a dry run or a round trip started by
//!     hand; a hold whose run ended without ending it; a move started by hand, a region evacuated;
//! 12. [`doctor`]: a deployed stack examined against the real account (drctl doctor); [`posture`]:
//!     the DR posture page from what the stack stores (drctl report posture).
//!
//! The Lambda entry points (`functions/`) and the operator CLI (`crates/drctl`) sit on top; the
//! emulator (`crates/dr-emulator`) is not part of the product.

// One group per layer, in the layers' order.
pub mod error;

pub mod time;

pub mod plan;

pub mod aws;

pub mod notify;
pub mod run;

pub mod store;

pub mod rpo;

pub mod readiness;

pub mod report;

pub mod restore;
pub mod runbook;

pub mod trigger;

pub mod game_day;
pub mod manual;
pub mod reconcile;

pub mod doctor;
pub mod posture;

pub use error::DrError;
pub use plan::Plan;
