//! Models (SPEC sections 4-5): encoders per modality and the heads put on
//! top of them, sized at run time from YAML.

pub mod encoders;
pub mod heads;

pub use encoders::{Encoder, EncoderConfig, InputShape};
pub use heads::{ClassifierHead, EvaluationMlp, FusionClassifier, ProjectionConfig, ProjectionHead};
