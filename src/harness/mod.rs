//! The harness: YAML suites, seeded run planning, a resumable run store
//! and the runner behind `cmkm plan`, `cmkm run` and `cmkm reproduce`.

pub mod archive;
pub mod estimate;
pub mod flop_estimate;
pub mod plan;
pub mod runner;
pub mod slurm;
pub mod steps;
pub mod store;
pub mod suite;
pub mod sweep;
pub mod workers;
