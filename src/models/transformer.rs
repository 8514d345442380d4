//! The forward pass of burn's [`TransformerEncoder`] (no masks), with
//! [`dropout`](super::dropout::dropout) in place of burn's and every linear
//! layer applied to all tokens of the batch as one matrix product. The
//! modules, their parameters and their initialisation stay burn's.

use super::dropout::{apply_mask, dropout, Mask};
use super::flex_kernels;
use burn::nn::activation::Activation;
use burn::nn::attention::MultiHeadAttention;
use burn::nn::transformer::{PositionWiseFeedForward, TransformerEncoder, TransformerEncoderLayer};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::softmax;

/// `(B, T, d_model)` -> `(B, T, d_model)`.
pub fn encoder_forward(encoder: &TransformerEncoder, x: Tensor<3>) -> Tensor<3> {
    encoder.layers.iter().fold(x, layer_forward)
}

/// One layer, post-norm or pre-norm as configured.
fn layer_forward(x: Tensor<3>, layer: &TransformerEncoderLayer) -> Tensor<3> {
    if layer.norm_first {
        let x = x.clone() + dropout(&layer.dropout, self_attention(&layer.mha, layer.norm_2.forward(x)));
        let x = x.clone() + dropout(&layer.dropout, feed_forward(&layer.pwff, layer.norm_1.forward(x)));
        return x;
    }
    let x = layer.norm_1.forward(x.clone() + dropout(&layer.dropout, self_attention(&layer.mha, x)));
    layer.norm_2.forward(x.clone() + dropout(&layer.dropout, feed_forward(&layer.pwff, x)))
}

/// Scaled dot-product self-attention over all heads, dropout on the
/// weights: one flex kernel up to the output projection where it runs.
fn self_attention(mha: &MultiHeadAttention, x: Tensor<3>) -> Tensor<3> {
    let [b, t, d_model] = x.dims();
    if let (Some(bq), Some(bk), Some(bv)) = (&mha.query.bias, &mha.key.bias, &mha.value.bias) {
        if flex_kernels::available(&x) && !mha.quiet_softmax {
            let mask = crate::models::dropout::draw_mask(&mha.dropout, &x.device());
            let projections = [(&mha.query, bq), (&mha.key, bk), (&mha.value, bv)].map(|(linear, bias)| (linear.weight.val(), bias.val()));
            let context = flex_kernels::attention(x.reshape([b * t, d_model]), projections, mha.n_heads, t, mask);
            return tokens(&mha.output, context.reshape([b, t, d_model]));
        }
    }
    let mask = crate::models::dropout::draw_mask(&mha.dropout, &x.device());
    composed_attention(mha, x, mask)
}

/// [`self_attention`] as burn's operations, `mask` the dropout on the
/// attention weights.
fn composed_attention(mha: &MultiHeadAttention, x: Tensor<3>, mask: Option<Mask>) -> Tensor<3> {
    let [b, t, d_model] = x.dims();
    let heads = |linear: &Linear| tokens(linear, x.clone()).reshape([b, t, mha.n_heads, mha.d_k]).swap_dims(1, 2);
    let (query, key, value) = (heads(&mha.query), heads(&mha.key), heads(&mha.value));
    let scores = query.matmul(key.transpose()).div_scalar((mha.d_k as f32).sqrt());
    let weights = softmax(scores, 3);
    let weights = match mask {
        Some(mask) => apply_mask(weights, mask),
        None => weights,
    };
    let context = weights.matmul(value).swap_dims(1, 2).reshape([b, t, d_model]);
    tokens(&mha.output, context)
}

/// ReLU feed-forward blocks (the paper's) run as one flex kernel where
/// they can; the others as composed operations.
fn feed_forward(pwff: &PositionWiseFeedForward, x: Tensor<3>) -> Tensor<3> {
    let (inner, outer) = (&pwff.linear_inner, &pwff.linear_outer);
    if let (Activation::Relu(_), Some(b1), Some(b2)) = (&pwff.activation, &inner.bias, &outer.bias) {
        if flex_kernels::available(&x) {
            let [b, t, d] = x.dims();
            let mask = crate::models::dropout::draw_mask(&pwff.dropout, &x.device());
            return flex_kernels::feed_forward(x.reshape([b * t, d]), inner.weight.val(), b1.val(), outer.weight.val(), b2.val(), mask).reshape([b, t, d]);
        }
    }
    let x = pwff.activation.forward(tokens(inner, x));
    tokens(outer, dropout(&pwff.dropout, x))
}

/// `linear` on every token: `(B, T, in)` as one `(B x T, in)` product.
fn tokens(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [b, t, d] = x.dims();
    let y = linear.forward(x.reshape([b * t, d]));
    let out = y.dims()[1];
    y.reshape([b, t, out])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::activation::ActivationConfig;
    use burn::nn::transformer::{TransformerEncoderConfig, TransformerEncoderInput};
    use burn::tensor::Distribution;

    #[test]
    fn matches_burns_encoder_at_inference() {
        let _rng = crate::training::exclusive();
        let device = Device::flex();
        for norm_first in [false, true] {
            let encoder = TransformerEncoderConfig::new(16, 32, 2, 2).with_norm_first(norm_first).with_activation(ActivationConfig::Relu).init(&device);
            let x = Tensor::<3>::random([3, 7, 16], Distribution::Normal(0.0, 1.0), &device);
            let expected = encoder.forward(TransformerEncoderInput::new(x.clone())).into_data();
            encoder_forward(&encoder, x).into_data().assert_approx_eq::<f32>(&expected, burn::tensor::Tolerance::default());
        }
    }

    /// With a dropout mask on the attention weights, the attention kernel
    /// gives the composed operations' outputs and gradients (input, every
    /// projection weight and bias), for head widths of 8 and of 10 (not a
    /// whole vector) and 7 tokens (the per-head matrices padded).
    #[test]
    fn attention_kernel_trains_as_the_composed_operations() {
        let _rng = crate::training::exclusive();
        let device = Device::flex().autodiff();
        for (d_model, heads) in [(16, 2), (30, 3)] {
            let encoder = TransformerEncoderConfig::new(d_model, 32, heads, 1).init(&device);
            let mha = &encoder.layers[0].mha;
            let x = Tensor::<3>::random([3, 7, d_model], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let mask = Mask::new(5, 0.7);
            let [b, t, d] = x.dims();
            let projections = [&mha.query, &mha.key, &mha.value].map(|l| (l.weight.val(), l.bias.as_ref().unwrap().val()));
            let fused = tokens(&mha.output, flex_kernels::attention(x.clone().reshape([b * t, d]), projections, heads, t, Some(mask)).reshape([b, t, d]));
            let composed = composed_attention(mha, x.clone(), Some(mask));
            let tolerance = burn::tensor::Tolerance::rel_abs(1e-4, 1e-4);
            fused.clone().into_data().assert_approx_eq::<f32>(&composed.clone().into_data(), tolerance);
            let weights = Tensor::<3>::random([b, t, d], Distribution::Normal(0.0, 1.0), &device);
            let (g_fused, g_composed) = ((fused * weights.clone()).sum().backward(), (composed * weights).sum().backward());
            x.grad(&g_fused).unwrap().into_data().assert_approx_eq::<f32>(&x.grad(&g_composed).unwrap().into_data(), tolerance);
            for l in [&mha.query, &mha.key, &mha.value] {
                l.weight.val().grad(&g_fused).unwrap().into_data().assert_approx_eq::<f32>(&l.weight.val().grad(&g_composed).unwrap().into_data(), tolerance);
                let bias = l.bias.as_ref().unwrap().val();
                bias.grad(&g_fused).unwrap().into_data().assert_approx_eq::<f32>(&bias.grad(&g_composed).unwrap().into_data(), tolerance);
            }
        }
    }

    /// With a dropout mask, the fused feed-forward kernel gives the
    /// composed operations' outputs and gradients. (The mask is explicit:
    /// burn's generator is shared with tests running alongside.)
    #[test]
    fn fused_feed_forward_trains_as_the_composed_operations() {
        let _rng = crate::training::exclusive();
        let device = Device::flex().autodiff();
        let encoder = TransformerEncoderConfig::new(16, 64, 2, 1).with_activation(ActivationConfig::Relu).init(&device);
        let pwff = &encoder.layers[0].pwff;
        let (inner, outer) = (&pwff.linear_inner, &pwff.linear_outer);
        let x = Tensor::<2>::random([21, 16], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let mask = Mask::new(7, 0.7);
        let fused = flex_kernels::feed_forward(
            x.clone(),
            inner.weight.val(),
            inner.bias.as_ref().unwrap().val(),
            outer.weight.val(),
            outer.bias.as_ref().unwrap().val(),
            Some(mask),
        );
        let composed = outer.forward(crate::models::dropout::apply_mask(burn::tensor::activation::relu(inner.forward(x.clone())), mask));
        let tolerance = burn::tensor::Tolerance::rel_abs(1e-4, 1e-4);
        fused.clone().into_data().assert_approx_eq::<f32>(&composed.clone().into_data(), tolerance);
        let (g_fused, g_composed) = ((fused.clone() * fused).sum().backward(), (composed.clone() * composed).sum().backward());
        x.grad(&g_fused).unwrap().into_data().assert_approx_eq::<f32>(&x.grad(&g_composed).unwrap().into_data(), tolerance);
        for w in [&inner.weight, &outer.weight] {
            w.val().grad(&g_fused).unwrap().into_data().assert_approx_eq::<f32>(&w.val().grad(&g_composed).unwrap().into_data(), tolerance);
        }
        let b1 = inner.bias.as_ref().unwrap().val();
        b1.grad(&g_fused).unwrap().into_data().assert_approx_eq::<f32>(&b1.grad(&g_composed).unwrap().into_data(), tolerance);
    }
}
