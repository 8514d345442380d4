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

/// The sum of the absolute values of all of `model`'s gradients: NaN or
/// infinite exactly when some gradient is (or when their magnitudes
/// overflow f32, which is as bad). `None` when the model has no gradient.
fn magnitude_tensor<M: Module>(model: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    let mut visitor = AbsSum { grads, total: None };
    model.visit(&mut visitor);
    visitor.total
}

/// A step's loss and its gradients' magnitude (see `magnitude_tensor`) in one read-back: on a GPU
/// each read-back waits for the device, and these two are the only ones
/// the training loop needs per step.
pub fn loss_and_gradient_magnitude<M: Module>(loss: Tensor<1>, model: &M, grads: &GradientsParams) -> (f64, Option<f64>) {
    let loss = loss.without_autodiff();
    match magnitude_tensor(model, grads) {
        None => (loss.into_scalar::<f32>() as f64, None),
        Some(g) => {
            let both = Tensor::cat(vec![loss.reshape([1]), g.reshape([1])], 0).into_data();
            let both = both.try_to_vec::<f32>().expect("f32 losses and gradients read back as f32");
            (both[0] as f64, Some(both[1] as f64))
        }
    }
}
