//! The integration suite: one test binary, every file under `tests/` one of its modules (the
//! benchmarks `bench_*.rs` are binaries of their own). One binary links the SDK once, and its
//! tests run side by side: most wait on the local stack and on real time, not on the CPU.
//!
//! The tests share one emulator. Each works on an estate of its own (`dr_tests::isolated_plan`),
//! even the faults it injects (`dr_tests::estate_suffix`), so they run side by side.
//! docs/testing.md says how to run one module or one test.

mod accounts;
mod cli;
mod contract;
mod custom_actions;
mod database;
mod databases;
mod doctor;
mod ecs;
mod estate;
mod evacuation;
mod failback;
mod failover;
mod groups;
mod half_way;
mod iam;
mod layers;
mod locks;
mod lost_answers;
mod microservices;
mod notifications;
mod operator;
mod posture;
mod posture_page;
mod reprotect;
mod restore;
mod round_trip;
mod routing;
mod rpo;
mod steps;
mod terraform;
mod trigger;
mod under_faults;
