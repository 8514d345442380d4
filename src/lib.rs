//! cmkm: a benchmark harness for self-supervised multimodal human activity
//! recognition (CMC-CMKM and its baselines).
//!
//! Data flows one way: declarations (YAML) -> [`data`] (load, preprocess,
//! augment, split) -> methods and protocols -> results -> reports.

// `!(x > 0.0)` rejects NaN parameters as well, on purpose.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod device;
pub mod faults;
pub mod fsutil;
pub mod harness;
pub mod losses;
pub mod methods;
pub mod metrics;
pub mod models;
pub mod protocols;
pub mod report;
pub mod rng;
pub mod training;
