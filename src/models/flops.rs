//! Floating-point operations of a forward pass, counted from the
//! configuration: 2 per multiply-add of the convolutions, the linear
//! layers and attention's two products. Batch norm, activations, pooling,
//! softmax and dropout are left out (a few per value, memory-bound). A
//! training step costs about three forward passes (forward, input gradient,
//! weight gradient).
//!
//! `cmkm bench` divides these counts by the measured times to say how close
//! a step runs to the machine's floating-point peak: the figure that tells
//! kernel work worth doing from work that cannot pay.

/// A convolution: `c_in x c_out` products per kernel element and output position.
pub fn conv(c_in: usize, c_out: usize, kernel_elements: usize, outputs: usize) -> u64 {
    2 * (c_in * c_out * kernel_elements * outputs) as u64
}

/// A linear layer on one token.
pub fn linear(inputs: usize, outputs: usize) -> u64 {
    2 * (inputs * outputs) as u64
}

/// One post-norm Transformer encoder layer on `tokens` tokens of width
/// `d`: the Q, K, V and output projections, the attention scores and the
/// weighted sum (both `tokens x tokens x d` over all heads), and the
/// two-layer feed-forward of width `ff`.
pub fn transformer_layer(tokens: usize, d: usize, ff: usize) -> u64 {
    let t = tokens as u64;
    t * (4 * linear(d, d) + linear(d, ff) + linear(ff, d)) + 2 * 2 * t * t * d as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_match_hand_computations() {
        // 64 -> 128 channels, kernel 3 over 50 steps: 64 x 128 x 3 x 50 multiply-adds.
        assert_eq!(super::conv(64, 128, 3, 50), 2 * 1_228_800);
        assert_eq!(super::linear(6400, 256), 3_276_800);
        // 50 tokens, d 128, ff 2048: projections 4 x 50 x 128 x 128 = 3 276 800,
        // feed-forward 2 x 50 x 128 x 2048 = 26 214 400, products 2 x 50 x 50 x 128 = 640 000
        // multiply-adds.
        assert_eq!(super::transformer_layer(50, 128, 2048), 2 * (3_276_800 + 26_214_400 + 640_000));
    }
}
