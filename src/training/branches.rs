//! Independent sub-networks (CMC's two encoders) run side by side, forward
//! and backward.
//!
//! burn's autodiff runs one backward pass on one thread, node after node,
//! and many of a layer's operations use one core. Two encoders that share no
//! parameters can be differentiated apart: each branch's output is
//! detached into a fresh leaf, the loss is differentiated down to those
//! leaves, and then each branch's graph is differentiated from its leaf's
//! gradient, the branches in parallel (burn locks each graph on its own).
//! The gradients are the same as one backward pass through everything.
//!
//! Determinism: a branch draws its dropout seeds from a stream of its own
//! ([`with_seed_stream`]), and the model's parameters are initialised before
//! any branch runs ([`initialise_parameters`]); nothing else in a forward
//! pass draws random numbers, so which thread runs first changes nothing.

use crate::models::dropout::{generator_seed, with_seed_stream};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Gradients;

/// One branch's output: on the branch's own autodiff graph, and the
/// detached leaf that the loss is computed from.
pub struct Branch {
    output: Tensor<2>,
    leaf: Tensor<2>,
}

impl Branch {
    /// The leaf to compute the loss from.
    pub fn leaf(&self) -> Tensor<2> {
        self.leaf.clone()
    }
}

/// Runs the two branches' forward passes side by side, each with a dropout
/// seed stream drawn from burn's generator on this thread (in order).
pub fn forward_pair(device: &Device, first: impl FnOnce() -> Tensor<2> + Send, second: impl FnOnce() -> Tensor<2> + Send) -> [Branch; 2] {
    let seeds = [generator_seed(device), generator_seed(device)];
    let (a, b) = crate::device::join(device, || with_seed_stream(seeds[0], first), || with_seed_stream(seeds[1], second));
    [a, b].map(|output| Branch { leaf: output.clone().detach().require_grad(), output })
}

/// Gradients of `loss` (computed from the branches' leaves) for every
/// parameter of `model`: the loss's own backward pass, then the branches'
/// backward passes side by side.
pub fn gradients<M: Module>(loss: Tensor<1>, branches: [Branch; 2], model: &M) -> GradientsParams {
    let device = loss.device();
    let mut loss_grads = loss.backward();
    let [a, b] = branches.map(|branch| {
        let seed = branch.leaf.grad_remove(&mut loss_grads);
        (branch.output, seed)
    });
    let backward = |(output, seed): (Tensor<2>, Option<Tensor<2>>)| seed.map(|g| (output * g).sum().backward());
    let (a, b) = crate::device::join(&device, || backward(a), || backward(b));
    let mut all: Vec<Gradients> = [Some(loss_grads), a, b].into_iter().flatten().collect();
    let mut params = GradientsParams::new();
    model.visit(&mut Collect { grads: &mut all, params: &mut params });
    params
}

/// Moves each parameter's gradient, from whichever pass computed it, into
/// [`GradientsParams`].
struct Collect<'a> {
    grads: &'a mut [Gradients],
    params: &'a mut GradientsParams,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !param.is_require_grad() {
            return;
        }
        let value = param.val();
        if let Some(grad) = self.grads.iter_mut().find_map(|g| value.grad_remove(g)) {
            self.params.register(param.id, grad);
        }
    }
}

/// Initialises every parameter of `model` now, in the module's order.
/// burn initialises a parameter when it is first used, drawing from its
/// process-wide generator; in branches running side by side that order
/// would depend on the threads.
pub use crate::models::initialise_parameters;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::losses::cmc_loss;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Distribution, Tolerance};

    #[derive(Module, Debug)]
    struct Pair {
        a: Linear,
        b: Linear,
    }

    /// Side-by-side branches give one backward pass's gradients, for every
    /// parameter of both branches.
    #[test]
    fn branch_gradients_match_one_backward_pass() {
        let _rng = crate::training::exclusive();
        let device = Device::flex().autodiff();
        let pair = Pair { a: LinearConfig::new(12, 8).init(&device), b: LinearConfig::new(5, 8).init(&device) };
        initialise_parameters(&pair);
        let x1 = Tensor::<2>::random([6, 12], Distribution::Normal(0.0, 1.0), &device);
        let x2 = Tensor::<2>::random([6, 5], Distribution::Normal(0.0, 1.0), &device);
        let whole = cmc_loss(pair.a.forward(x1.clone()), pair.b.forward(x2.clone()), 0.1);
        let mut expected = GradientsParams::from_grads(whole.backward(), &pair);
        let branches = forward_pair(&device, || pair.a.forward(x1), || pair.b.forward(x2));
        let loss = cmc_loss(branches[0].leaf(), branches[1].leaf(), 0.1);
        let mut got = gradients(loss, branches, &pair);
        assert_eq!(got.len(), 4);
        for linear in [&pair.a, &pair.b] {
            let (w, b) = (linear.weight.id, linear.bias.as_ref().unwrap().id);
            let tolerance = Tolerance::<f32>::rel_abs(1e-5, 1e-7);
            got.remove::<2>(w).unwrap().into_data().assert_approx_eq(&expected.remove::<2>(w).unwrap().into_data(), tolerance);
            got.remove::<1>(b).unwrap().into_data().assert_approx_eq(&expected.remove::<1>(b).unwrap().into_data(), tolerance);
        }
    }
}
