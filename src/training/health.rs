//! Numeric health of a training step: the gradients must stay finite (the
//! loss is checked by the loop itself).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// Sums `|g|` over every gradient of `model`'s float parameters.
struct AbsSum<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for AbsSum<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.abs().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// The sum of the absolute values of all of `model`'s gradients (one
/// reduction and one read-back per step): NaN or infinite exactly when some
/// gradient is (or when their magnitudes overflow f32, which is as bad).
/// `None` when the model has no gradient at all.
pub fn gradient_magnitude<M: Module>(model: &M, grads: &GradientsParams) -> Option<f64> {
    let mut visitor = AbsSum { grads, total: None };
    model.visit(&mut visitor);
    visitor.total.map(|t| t.into_scalar::<f32>() as f64)
}
