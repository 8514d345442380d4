//! Models (docs/method.md sections 4-5): encoders per modality and the heads put on
//! top of them, sized at run time from YAML.

pub mod channels_last;
pub mod dropout;
pub mod encoders;
pub mod flex_kernels;
pub mod flops;
pub mod heads;
pub mod row_blocks;
pub mod transformer;

pub use encoders::{Encoder, EncoderConfig, InputShape};
pub use heads::{ClassifierHead, EvaluationHead, EvaluationMlp, FusionClassifier, ProjectionConfig, ProjectionHead};

/// Draws every lazily initialised parameter of `model` now, in the module's
/// order, from burn's process-wide generator (see
/// `training::branches` for why the order matters).
pub fn initialise_parameters<M: burn::module::Module>(model: &M) {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::prelude::Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
}
