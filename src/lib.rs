//! cmkm: a benchmark harness for self-supervised multimodal human activity
//! recognition (CMC-CMKM and its baselines).
//!
//! Data flows one way: declarations (YAML) -> [`data`] (load, preprocess,
//! augment, split) -> methods and protocols -> results -> reports.

pub mod cli;
pub mod config;
pub mod data;
pub mod fsutil;
pub mod losses;
pub mod models;
pub mod rng;
