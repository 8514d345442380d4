//! The forward pass of burn's [`TransformerEncoder`] (no masks), with
//! [`dropout`](super::dropout::dropout) in place of burn's and every linear
//! layer applied to all tokens of the batch as one matrix product. The
//! modules, their parameters and their initialisation stay burn's.

use super::dropout::dropout;
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

/// Scaled dot-product self-attention over all heads, dropout on the weights.
fn self_attention(mha: &MultiHeadAttention, x: Tensor<3>) -> Tensor<3> {
    let [b, t, d_model] = x.dims();
    let heads = |linear: &Linear| tokens(linear, x.clone()).reshape([b, t, mha.n_heads, mha.d_k]).swap_dims(1, 2);
    let (query, key, value) = (heads(&mha.query), heads(&mha.key), heads(&mha.value));
    let scores = query.matmul(key.transpose()).div_scalar((mha.d_k as f32).sqrt());
    let weights = dropout(&mha.dropout, softmax(scores, 3));
    let context = weights.matmul(value).swap_dims(1, 2).reshape([b, t, d_model]);
    tokens(&mha.output, context)
}

fn feed_forward(pwff: &PositionWiseFeedForward, x: Tensor<3>) -> Tensor<3> {
    let x = pwff.activation.forward(tokens(&pwff.linear_inner, x));
    tokens(&pwff.linear_outer, dropout(&pwff.dropout, x))
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
        let device = Device::flex();
        for norm_first in [false, true] {
            let encoder = TransformerEncoderConfig::new(16, 32, 2, 2).with_norm_first(norm_first).with_activation(ActivationConfig::Relu).init(&device);
            let x = Tensor::<3>::random([3, 7, 16], Distribution::Normal(0.0, 1.0), &device);
            let expected = encoder.forward(TransformerEncoderInput::new(x.clone())).into_data();
            encoder_forward(&encoder, x).into_data().assert_approx_eq::<f32>(&expected, burn::tensor::Tolerance::default());
        }
    }
}
