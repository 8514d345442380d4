//! Models (docs/method.md sections 4-5): encoders per modality and the heads put on
//! top of them, sized at run time from YAML.

pub mod channels_last;
pub mod dropout;
pub mod encoders;
pub mod flex_kernels;
pub mod heads;
pub mod transformer;

pub use encoders::{Encoder, EncoderConfig, InputShape};
pub use heads::{ClassifierHead, EvaluationHead, EvaluationMlp, FusionClassifier, ProjectionConfig, ProjectionHead};
