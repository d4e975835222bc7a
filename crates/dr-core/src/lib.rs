//! dr-core: everything the Lambdas and `drctl` share, testable without Lambda.
//!
//! - [`plan`]: the DR plan document and its validation;
//! - [`aws`]: the per-region SDK clients, built once;
//! - [`readiness`]: `plan check`, the read-only standby-state checks;
//! - [`rpo`]: replica lag, the one implementation of the RPO reading;
//! - [`runbook`]: the failover steps and the report;
//! - [`restore`]: the monthly restore test and its janitor;
//! - [`trigger`]: the alarm trigger (confirmation, single-flight) and game days;
//! - [`error`]: the error enum with stable names;
//! - [`estate`] (feature `emulator`): builds the emulated Paris/Ireland estate from a plan.

pub mod aws;
pub mod error;
#[cfg(feature = "emulator")]
pub mod estate;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod plan;
pub mod readiness;
pub mod restore;
pub mod rpo;
pub mod runbook;
pub mod trigger;

pub use error::DrError;
pub use plan::Plan;
