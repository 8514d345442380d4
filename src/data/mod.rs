//! Data: file formats, dataset declarations and layouts, the synthetic
//! generator, transforms and augmentations, splits, inspection and the
//! nearest-neighbour baseline. Everything that turns files on disk into
//! preprocessed, augmented, split training arrays.

pub mod baseline;
pub mod clip;
pub mod dataset;
pub mod declaration;
pub mod fingerprint;
pub mod formats;
pub mod inspect;
pub mod layouts;
pub mod modality;
pub mod recordings;
pub mod resample;
pub mod sample;
pub mod splits;
pub mod standardize;
pub mod synth;
pub mod transforms;

pub use dataset::{Dataset, SampleMeta};
pub use declaration::DatasetDecl;
