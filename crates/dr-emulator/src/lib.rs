//! dr-emulator: the local stack's own code. Not part of the product: neither `drctl` nor any
//! Lambda links it. The tests and the demo use it (and its `dr-emulator` binary) to
//!
//! - build the plan's Paris/Ireland estate in the emulator ([`estate`]),
//! - do what AWS does and moto does not: Route 53 health checkers and alarm events
//!   ([`outage`]), S3 replication ([`replication`]),
//! - register the state machines and read back what executions were started with
//!   ([`executions`]),
//! - run the real Lambda binaries behind the Invoke API, with Lambda's timeouts ([`lambdas`]),
//! - ask the emulator what Route 53 answers and why, hold an alarm's evaluation ([`control`]),
//! - register a plan's deployment with the local IAM, which authorizes every call the functions
//!   make against their own template roles, and read what it decided ([`iam`]),
//! - set what the emulator's models answer: a service quota, a target group's health ([`models`]).
//!
//! The modelled AWS behaviour inside the emulator itself (alarm evaluation, Route 53 answers,
//! the local DNS server, atomic conditional writes) is Python, next to moto, in `moto/`.
//!
//! Everything here refuses to act on anything but a loopback endpoint ([`guard`]).

pub mod control;
pub mod estate;
pub mod executions;
pub mod guard;
pub mod iam;
pub mod lambdas;
pub mod models;
pub mod outage;
pub mod postgres;
pub mod replication;
