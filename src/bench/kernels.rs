//! `cmkm bench --only kernels`: the layers this crate computes itself
//! ([`crate::models::channels_last`], [`crate::models::dropout`], on the
//! flex backend through [`crate::models::flex_kernels`]) against burn's own
//! modules, forward and backward on the paper's largest shapes, so that a
//! regression in either shows as a ratio.

use super::Timing;
use crate::models::{channels_last, dropout, flex_kernels};
use burn::nn::activation::ActivationConfig;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::transformer::PositionWiseFeedForwardConfig;
use burn::nn::{BatchNormConfig, DropoutConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use std::collections::BTreeMap;
use std::time::Instant;

/// Median over `steps` of forward + backward of `f` (after one warm-up),
/// where `f` maps a fresh input to the loss it differentiates.
fn time_backward(steps: usize, input: &Tensor<4>, f: impl Fn(Tensor<4>) -> Tensor<1>) -> Timing {
    let samples = (0..=steps)
        .map(|_| {
            let x = input.clone().require_grad();
            let start = Instant::now();
            let grads = f(x.clone()).backward();
            let _ = x.grad(&grads).map(|g| g.into_data());
            1e3 * start.elapsed().as_secs_f64()
        })
        .skip(1)
        .collect();
    Timing::of(samples)
}

/// `kernel_<name>_ms` (ours) and `kernel_<name>_burn_ms` for convolution,
/// batch norm, max-pool (co-occurrence layer 1, batch 64), dropout (the
/// CNN-Transformer's feed-forward activation, batch 64) and the whole ReLU
/// feed-forward block (linear, ReLU, dropout, linear; 64 x 44 tokens).
pub fn time_kernels(steps: usize, device: &Device, timings: &mut BTreeMap<String, Timing>) {
    let normal = Distribution::Normal(0.0, 1.0);
    let nchw = Tensor::<4>::random([64, 20, 48, 32], normal, device);
    let nhwc = channels_last_copy(&nchw);
    let conv = Conv2dConfig::new([20, 32], [3, 3]).init(device);
    let mut put = |name: &str, ours: Timing, burn: Timing| {
        timings.insert(format!("kernel_{name}_ms"), ours);
        timings.insert(format!("kernel_{name}_burn_ms"), burn);
    };
    put("conv2d", time_backward(steps, &nhwc, |x| channels_last::conv2d(&conv, x).sum()), time_backward(steps, &nchw, |x| conv.forward(x).sum()));

    let act_nchw = Tensor::<4>::random([64, 32, 46, 30], normal, device);
    let act_nhwc = channels_last_copy(&act_nchw);
    let norm = BatchNormConfig::new(32).init(device);
    let square = |y: Tensor<4>| y.powi_scalar(2).sum();
    put(
        "batch_norm",
        time_backward(steps, &act_nhwc, |x| square(channels_last::batch_norm(&norm, x))),
        time_backward(steps, &act_nchw, |x| square(norm.forward(x))),
    );

    let pool = MaxPool2dConfig::new([2, 2]).init();
    put(
        "max_pool2d",
        time_backward(steps, &act_nhwc, |x| square(channels_last::max_pool2d(&pool, x))),
        time_backward(steps, &act_nchw, |x| square(pool.forward(x))),
    );

    let ff = Tensor::<4>::random([64, 44, 2048, 1], normal, device);
    let drop = DropoutConfig::new(0.1).init();
    put("dropout", time_backward(steps, &ff, |x| square(dropout::dropout(&drop, x))), time_backward(steps, &ff, |x| square(drop.forward(x))));

    let pwff = PositionWiseFeedForwardConfig::new(128, 2048).with_dropout(0.1).with_activation(ActivationConfig::Relu).init(device);
    let tokens = Tensor::<4>::random([64, 44, 128, 1], normal, device);
    let (inner, outer) = (&pwff.linear_inner, &pwff.linear_outer);
    let (b1, b2) = (inner.bias.as_ref().expect("burn's default has biases"), outer.bias.as_ref().expect("burn's default has biases"));
    let fused = |x: Tensor<4>| {
        let mask = crate::models::dropout::draw_mask(&pwff.dropout, &x.device());
        square(
            flex_kernels::feed_forward(x.reshape([64 * 44, 128]), inner.weight.val(), b1.val(), outer.weight.val(), b2.val(), mask).reshape([64, 44, 128, 1]),
        )
    };
    put(
        "feed_forward",
        time_backward(steps, &tokens, fused),
        time_backward(steps, &tokens, |x| square(pwff.forward(x.reshape([64, 44, 128])).reshape([64, 44, 128, 1]))),
    );
}

/// A contiguous `(B, H, W, C)` copy of `(B, C, H, W)`, as the encoders hold
/// their activations.
fn channels_last_copy(x: &Tensor<4>) -> Tensor<4> {
    Tensor::from_data(x.clone().permute([0, 2, 3, 1]).into_data(), &x.device())
}
