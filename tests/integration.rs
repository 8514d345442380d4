//! Every integration test but the GPU ones (`tests/gpu.rs`, which needs
//! the `gpu` feature and selects its device for the whole process), as
//! modules of one test binary: one build and one link of burn instead of
//! eleven (docs/performance.md, "a fresh clone"). Tests that draw from
//! burn's process-wide generator hold `cmkm::training::exclusive()`, as
//! they share the process.

mod common;
mod data_loading;
mod fuzz_regressions;
mod harness;
mod hostile_inputs;
mod losses;
mod models;
mod protocols;
mod resample_scipy;
mod slurm;
mod synthetic;
mod training;
mod transforms;
