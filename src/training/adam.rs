//! Adam, as burn's `Adam` computes it, in one pass per parameter on the
//! CPU backend ([`cmkm_kernels::adam`]).
//!
//! burn's `Adam` takes eleven tensor operations per parameter, each a pass
//! into a new tensor on one thread: 15 ms of the 272 ms CMC step on the
//! 2-core Xeon VM. [`Adam`] keeps burn's state type (`AdamState`) and its
//! arithmetic value for value, so the trained parameters are bit-identical
//! to burn's and run ids stay; on other backends (a GPU) and for tensors
//! that are not f32 it hands the step to burn's `Adam`.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, Dispatch, Flex};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use cmkm_kernels::adam::{update, AdamStep};

/// burn's defaults, which the training loop keeps but for epsilon.
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;

/// Adam with betas 0.9 and 0.999, as [`burn::optim::Adam`] with that
/// epsilon; [`Adam::init`] wraps it, with optional gradient clipping, as
/// `AdamConfig::init` does.
#[derive(Clone)]
pub struct Adam {
    epsilon: f32,
    /// burn's own, for the steps that do not run on the CPU backend.
    composed: burn::optim::Adam,
}

impl Adam {
    pub fn new(epsilon: f32) -> Self {
        Adam { epsilon, composed: AdamConfig::new().with_beta_1(BETA_1).with_beta_2(BETA_2).with_epsilon(epsilon).build() }
    }

    /// The whole-module optimizer, clipping each gradient first if `clipping` is set.
    pub fn init(self, clipping: Option<GradientClippingConfig>) -> ModuleOptimizer {
        let optimizer = ModuleOptimizer::from(self);
        match clipping {
            Some(config) => optimizer.with_grad_clipping(config.init()),
            None => optimizer,
        }
    }
}

impl Optimizer for Adam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(&self, lr: LearningRate, tensor: Tensor<D>, grad: Tensor<D>, state: Option<AdamState<D>>) -> (Tensor<D>, Option<AdamState<D>>) {
        if !crate::models::flex_kernels::available(&tensor) || !crate::models::flex_kernels::available(&grad) {
            return self.composed.step(lr, tensor, grad, state);
        }
        let time = state.as_ref().map_or(1, |s| s.momentum.time + 1);
        let s = AdamStep::new(BETA_1, BETA_2, self.epsilon, time, lr);
        let (moment_1, moment_2) = match state {
            Some(state) => (state.momentum.moment_1, state.momentum.moment_2),
            // Unread at the first step: the gradient, as a placeholder.
            None => (grad.clone(), grad.clone()),
        };
        // Without autodiff (a no-op for what burn's `ModuleOptimizer` hands over).
        let [tensor, grad, moment_1, moment_2] = [tensor, grad, moment_1, moment_2].map(|t| t.inner().into_dispatch());
        let (tensor, moment_1, moment_2) = <Dispatch as FlexAdam>::adam_update(tensor, grad, moment_1, moment_2, s, time == 1);
        let [tensor, moment_1, moment_2] = [tensor, moment_1, moment_2].map(Tensor::<D>::from_dispatch);
        (tensor, Some(AdamState::new(AdaptiveMomentumState::new(time, moment_1, moment_2))))
    }

    fn to_device<const D: usize>(mut state: AdamState<D>, device: &Device) -> AdamState<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[backend_extension(Flex)]
pub trait FlexAdam: Backend {
    /// One Adam update ([`cmkm_kernels::adam::update`]): the new
    /// parameter and moments, each of the parameter's shape.
    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
        first: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl FlexAdam for Flex {
    fn adam_update(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: AdamStep,
        first: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let [mut param, mut moment_1, mut moment_2] = [param, moment_1, moment_2].map(writable);
        let grad = grad.to_contiguous();
        let grad = grad.as_slice::<f32>().expect("a contiguous f32 gradient");
        update(param.storage_mut(), grad, moment_1.storage_mut(), moment_2.storage_mut(), &step, first);
        (param, moment_1, moment_2)
    }
}

/// `t` as a tensor whose whole storage is its values in order (a copy
/// where it is a view), to be rewritten in place; burn copies it on write
/// where its storage is shared.
fn writable(t: FlexTensor) -> FlexTensor {
    let whole = t.as_slice::<f32>().is_some_and(|v| v.len() == t.storage::<f32>().len());
    if whole {
        return t;
    }
    let shape = t.layout().shape().to_vec();
    let values = t.to_contiguous().as_slice::<f32>().expect("a contiguous f32 tensor").to_vec();
    FlexTensor::from_data(TensorData::new(values, shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::optim::GradientsParams;

    /// A parameter and a gradient per step, stepped by burn's Adam and by
    /// ours: every value the same, bit for bit, at every step.
    #[test]
    fn steps_are_burns_bit_for_bit() {
        let _guard = crate::training::exclusive();
        let device = Device::flex().autodiff();
        let values = |k: f32, n: usize| (0..n).map(|i| ((i as f32 * k).sin() * 2.0).powi(3) * 0.1).collect::<Vec<f32>>();
        let start = Tensor::<2>::from_data(TensorData::new(values(0.37, 64 * 300), vec![64, 300]), &device);
        for clipping in [None, Some(GradientClippingConfig::Norm(0.5))] {
            let mut ours = Adam::new(1e-8).init(clipping.clone());
            let mut burns = AdamConfig::new().with_epsilon(1e-8).with_grad_clipping(clipping).init();
            let (mut a, mut b) = (Param::from_tensor(start.clone()), Param::from_tensor(start.clone()));
            for step in 0..4 {
                let g = Tensor::<2>::from_data(TensorData::new(values(1.3 + step as f32, 64 * 300), vec![64, 300]), &Device::flex());
                let grads = |p: &Param<Tensor<2>>| {
                    let mut grads = GradientsParams::new();
                    grads.register(p.id, g.clone());
                    grads
                };
                let lr = 1e-3 / (step + 1) as f64;
                (a, b) = (ours.step(lr, a.clone(), grads(&a)), burns.step(lr, b.clone(), grads(&b)));
                let bits = |p: &Param<Tensor<2>>| p.val().into_data().try_to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
                assert_eq!(bits(&a), bits(&b), "step {step}");
            }
            assert_ne!(a.val().into_data(), start.clone().into_data(), "the parameter moved");
        }
    }
}
