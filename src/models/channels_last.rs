//! Convolution, batch norm and max-pool on channels-last tensors
//! (`(B, T, C)`, `(B, H, W, C)`), for the encoders' hot path.
//!
//! burn's CPU backend lowers a convolution to a small matrix product per
//! sample and 512-pixel tile, after a single-threaded layout change, and its
//! backward pass runs transposed convolutions of the same kind. Here a
//! convolution is one im2col (a row gather) and one large matrix product,
//! whose backward pass is two large matrix products and a scatter-add: the
//! work goes to the gemm kernels instead of index arithmetic.
//!
//! The layers keep burn's [`Conv1d`], [`Conv2d`] and [`BatchNorm`] modules as
//! the parameter holders, so initialisation, parameter shapes and saved
//! records are those of the channels-first layers and the results agree
//! with theirs up to float rounding (tested against burn's convolution).

use crate::models::flex_kernels;
use crate::models::row_blocks::{RowBlocks, ROWS_PER_REDUCTION};
use burn::nn::conv::{Conv1d, Conv2d};
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig1d, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::TensorData;

/// `(B, T, C_in)` -> `(B, T', C_out)`: a stride-1, undilated, ungrouped
/// [`Conv1d`], zero-padded as it is configured. Computed as a `K x 1`
/// [`conv2d`]-style convolution over `(B, T, 1, C_in)`.
pub fn conv1d(conv: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    let kernel = conv.weight.dims()[2];
    let (left, right) = match conv.padding {
        PaddingConfig1d::Valid => (0, 0),
        PaddingConfig1d::Explicit(left, right) => (left, right),
        PaddingConfig1d::Same => ((kernel - 1) / 2, kernel / 2),
    };
    let x = pad_time(x, left, right).unsqueeze_dim(2);
    let y = convolve(conv.weight.val().unsqueeze_dim(3), conv.bias.as_ref().map(|p| p.val()), x);
    y.squeeze_dim(2)
}

/// `(B, H, W, C_in)` -> `(B, H', W', C_out)`: a stride-1, unpadded,
/// undilated, ungrouped [`Conv2d`].
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    convolve(conv.weight.val(), conv.bias.as_ref().map(|p| p.val()), x)
}

/// The valid convolution of channels-last `x` with a channels-first
/// `(C_out, C_in, KH, KW)` weight: im2col, one matrix product, bias.
fn convolve(weight: Tensor<4>, bias: Option<Tensor<1>>, x: Tensor<4>) -> Tensor<4> {
    let bias = match bias {
        Some(bias) if flex_kernels::available(&x) => return flex_kernels::conv(x, weight, bias),
        bias => bias,
    };
    if !crate::device::is_host(&x.device()) {
        return convolve_on_gpu(weight, bias, x);
    }
    let [c_out, c_in, kh, kw] = weight.dims();
    let [b, h, w, _] = x.dims();
    // (C_out, C_in, KH, KW) -> (KH x KW x C_in, C_out), matching the patch order.
    let weight = weight.permute([2, 3, 1, 0]).reshape([kh * kw * c_in, c_out]);
    let y = patches(x, kh, kw).matmul(weight);
    let y = match bias {
        Some(bias) => y + bias.unsqueeze_dim(0),
        None => y,
    };
    y.reshape([b, h + 1 - kh, w + 1 - kw, c_out])
}

/// [`convolve`] on a GPU: burn's own convolution kernels on a
/// channels-first view (the im2col below would build its gather index on
/// the host per call, and its backward pass is a scatter-add), the bias
/// added per row block, since burn's gradient of it sums every output
/// position at once (see [`crate::models::row_blocks`]). Where the driver
/// cuts shader loops short, over batch chunks of at most
/// [`ROWS_PER_REDUCTION`] output positions, since the weight gradient sums
/// every output position of a call; elsewhere one call, as each chunk's
/// gradient costs a zero-filled copy of the whole input.
fn convolve_on_gpu(weight: Tensor<4>, bias: Option<Tensor<1>>, x: Tensor<4>) -> Tensor<4> {
    let [_, _, kh, kw] = weight.dims();
    let [b, h, w, _] = x.dims();
    let samples_per_call = if crate::device::loops_limited() { (ROWS_PER_REDUCTION / ((h + 1 - kh) * (w + 1 - kw))).max(1) } else { b };
    let options = burn::tensor::ops::ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    let conv = |x: Tensor<4>| burn::tensor::module::conv2d(x.permute([0, 3, 1, 2]), weight.clone(), None, options.clone()).permute([0, 2, 3, 1]);
    let y = if b <= samples_per_call { conv(x) } else { Tensor::cat(x.split(samples_per_call, 0).into_iter().map(conv).collect(), 0) };
    let Some(bias) = bias else { return y };
    let [b, h, w, c] = y.dims();
    RowBlocks::add_bias(y.reshape([b * h * w, c]), bias).reshape([b, h, w, c])
}

/// im2col: `(B, H, W, C)` -> `(B x H' x W', KH x KW x C)`, one row per
/// output position holding its window in (row, column, channel) order.
/// A single row gather, whose gradient is a single scatter-add (shifted
/// slices would each cost a zero-filled copy of the input backwards).
fn patches(x: Tensor<4>, kh: usize, kw: usize) -> Tensor<2> {
    let [b, h, w, c] = x.dims();
    if kh == 1 && kw == 1 {
        return x.reshape([b * h * w, c]); // every position is its own window
    }
    let (h_out, w_out) = (h + 1 - kh, w + 1 - kw);
    let mut rows = Vec::with_capacity(b * h_out * w_out * kh * kw);
    for n in 0..b {
        for (y, x) in (0..h_out).flat_map(|y| (0..w_out).map(move |x| (y, x))) {
            for (i, j) in (0..kh).flat_map(|i| (0..kw).map(move |j| (i, j))) {
                rows.push(((n * h + y + i) * w + x + j) as i64);
            }
        }
    }
    let index = Tensor::<1, Int>::from_data(TensorData::new(rows, [b * h_out * w_out * kh * kw]), &x.device());
    x.reshape([b * h * w, c]).select(0, index).reshape([b * h_out * w_out, kh * kw * c])
}

/// Batch norm over the last axis: every other axis is the batch, as in
/// burn's channels-first [`BatchNorm`] (same training and inference modes,
/// same running statistics). The statistics are column reductions of the
/// `(N, C)` view, where burn's fused operation transposes the activation to
/// `(C, N)` and back, forwards and backwards.
pub fn batch_norm<const D: usize>(norm: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    normalize(norm, x, false)
}

/// [`batch_norm`] followed by a ReLU, fused into one operation where the
/// flex kernels run.
pub fn batch_norm_relu<const D: usize>(norm: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    normalize(norm, x, true)
}

fn normalize<const D: usize>(norm: &BatchNorm, x: Tensor<D>, relu: bool) -> Tensor<D> {
    let dims = x.dims();
    let channels = dims[D - 1];
    let x = x.reshape([dims.iter().product::<usize>() / channels, channels]);
    let training = x.device().is_autodiff() && norm.training.is_enabled();
    if training && flex_kernels::available(&x) {
        let moments = flex_kernels::moments(x.clone());
        update_running(norm, moments.clone().narrow(0, 0, 1), moments.clone().narrow(0, 1, 1), x.dims()[0]);
        return flex_kernels::batch_norm(x, moments, norm.gamma.val(), norm.beta.val(), norm.epsilon, relu).reshape(dims);
    }
    // Blocks of rows: on a GPU no reduction may cover them all (see
    // `row_blocks`); the arithmetic is the same.
    let blocks = RowBlocks::of(&x);
    let rows = x.dims()[0];
    let x = blocks.split(x);
    let (centered, variance) = if training {
        let mean = blocks.column_mean(x.clone());
        let centered = x - blocks.spread(mean.clone());
        let variance = blocks.column_mean(centered.clone().powi_scalar(2));
        let row = |t: Tensor<3>| t.detach().reshape([1, channels]);
        update_running(norm, row(mean), row(variance.clone()), rows);
        (centered, variance)
    } else {
        let device = x.device();
        let mean = blocks.spread(norm.running_mean.value().to_device(&device));
        (x - mean, blocks.column(norm.running_var.value().to_device(&device)))
    };
    let scale = blocks.column(norm.gamma.val()) / variance.add_scalar(norm.epsilon).sqrt();
    let y = centered * blocks.spread(scale) + blocks.spread(norm.beta.val());
    let y = if relu { burn::tensor::activation::relu(y) } else { y };
    blocks.join(y).reshape(dims)
}

/// `relu(batch_norm(conv(x)))` for a 1 x 1 [`Conv2d`] with a bias: one
/// flex operation in training (see [`flex_kernels::point`]), else
/// [`conv2d`] then [`batch_norm_relu`].
pub fn point_norm_relu(conv: &Conv2d, norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let [b, h, w, c_in] = x.dims();
    let fused = conv.weight.dims()[2..] == [1, 1] && x.device().is_autodiff() && norm.training.is_enabled() && flex_kernels::available(&x);
    match &conv.bias {
        Some(bias) if fused => {
            let c_out = conv.weight.dims()[0];
            let rows = x.reshape([b * h * w, c_in]);
            let moments = flex_kernels::point_moments(rows.clone(), conv.weight.val(), bias.val());
            update_running(norm, moments.clone().narrow(0, 0, 1), moments.clone().narrow(0, 1, 1), b * h * w);
            flex_kernels::point_norm_relu(rows, conv.weight.val(), bias.val(), moments, norm.gamma.val(), norm.beta.val(), norm.epsilon)
                .reshape([b, h, w, c_out])
        }
        _ => batch_norm_relu(norm, conv2d(conv, x)),
    }
}

/// Moves the running statistics towards the batch's (`momentum` is the
/// weight of the new batch), as PyTorch does: the running variance follows
/// the unbiased batch variance, `variance x n / (n - 1)` over the `rows`
/// values per channel (burn's [`BatchNorm`] keeps the biased one; the
/// normalisation itself uses the biased one in both).
///
/// burn's running state keeps one pending value per thread (for
/// data-parallel training) and averages them when synced; a layer that runs
/// on whichever thread is free (side-by-side branches) would average
/// unrelated updates. Each update is folded in at once instead, so the
/// statistics follow the batches in order, whatever thread ran them.
fn update_running(norm: &BatchNorm, mean: Tensor<2>, variance: Tensor<2>, rows: usize) {
    let device = mean.device();
    let variance = if rows > 1 { variance.mul_scalar(rows as f64 / (rows - 1) as f64) } else { variance };
    let blend = |running: Tensor<1>, batch: Tensor<2>| {
        running.to_device(&device).mul_scalar(1.0 - norm.momentum).add(batch.squeeze_dim::<1>(0).mul_scalar(norm.momentum)).detach()
    };
    for (state, batch) in [(&norm.running_mean, mean), (&norm.running_var, variance)] {
        state.update(blend(state.value_sync(), batch));
        let _folded_in = state.value_sync();
    }
}

/// `(B, H, W, C)` -> `(B, H', W', C)`: burn's [`MaxPool2d`] on a
/// channels-first view. Its pooling kernel, with an index-based backward,
/// beats every composition of tensor operations tried here (window slices
/// with element-wise maxima, `max_dim`) even with the layout changes around
/// it: see `cmkm bench --only kernels`.
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let plain = pool.stride == pool.kernel_size && pool.dilation == [1, 1] && !pool.ceil_mode && matches!(pool.padding, PaddingConfig2d::Valid);
    if plain && flex_kernels::available(&x) {
        return flex_kernels::max_pool(x, pool.kernel_size[0], pool.kernel_size[1]);
    }
    pool.forward(x.permute([0, 3, 1, 2])).permute([0, 2, 3, 1])
}

fn pad_time(x: Tensor<3>, left: usize, right: usize) -> Tensor<3> {
    let [b, _, c] = x.dims();
    let zeros = |n: usize| (n > 0).then(|| Tensor::zeros([b, n, c], &x.device()));
    let (left, right) = (zeros(left), zeros(right));
    Tensor::cat(left.into_iter().chain([x]).chain(right).collect(), 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::{Conv1dConfig, Conv2dConfig};
    use burn::nn::pool::MaxPool2dConfig;
    use burn::nn::BatchNormConfig;
    use burn::tensor::Distribution;

    fn device() -> Device {
        Device::flex()
    }

    fn close<const D: usize>(a: Tensor<D>, b: Tensor<D>) {
        assert_eq!(a.dims(), b.dims());
        let (a, b) = (a.into_data().try_to_vec::<f32>().unwrap(), b.into_data().try_to_vec::<f32>().unwrap());
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0, f32::max);
        assert!(worst < 1e-4, "largest relative difference {worst}");
    }

    /// Runs `check` with the flex kernels, then with composed operations.
    fn both_paths(check: impl Fn()) {
        check();
        flex_kernels::composed(check);
    }

    /// The fused first layer gives the composed layers' output, running
    /// statistics and gradients (input, weight, bias, gamma, beta), with a
    /// channel mean far from zero and the ReLU cutting about half.
    #[test]
    fn point_layer_trains_as_conv_then_batch_norm_relu() {
        let _rng = crate::training::exclusive();
        let d = device().autodiff();
        let conv = Conv2dConfig::new([3, 16], [1, 1]).init(&d);
        let (fused_norm, composed_norm) = (BatchNormConfig::new(16).init(&d), BatchNormConfig::new(16).init(&d));
        let x = (Tensor::<4>::random([4, 9, 5, 3], Distribution::Normal(0.0, 1.0), &d) + 3.0).require_grad();
        let weights = Tensor::<4>::random([4, 9, 5, 16], Distribution::Normal(0.0, 1.0), &d);
        let fused = point_norm_relu(&conv, &fused_norm, x.clone());
        let composed = flex_kernels::composed(|| point_norm_relu(&conv, &composed_norm, x.clone()));
        close(fused.clone(), composed.clone());
        close(fused_norm.running_var.value(), composed_norm.running_var.value());
        close(fused_norm.running_mean.value(), composed_norm.running_mean.value());
        let (g_fused, g_composed) = ((fused * weights.clone()).sum().backward(), (composed * weights).sum().backward());
        close(x.grad(&g_fused).unwrap(), x.grad(&g_composed).unwrap());
        close(conv.weight.val().grad(&g_fused).unwrap(), conv.weight.val().grad(&g_composed).unwrap());
        let bias = conv.bias.as_ref().unwrap().val();
        close(bias.grad(&g_fused).unwrap(), bias.grad(&g_composed).unwrap());
        close(fused_norm.gamma.val().grad(&g_fused).unwrap(), composed_norm.gamma.val().grad(&g_composed).unwrap());
        close(fused_norm.beta.val().grad(&g_fused).unwrap(), composed_norm.beta.val().grad(&g_composed).unwrap());
    }

    #[test]
    fn conv2d_matches_burns_channels_first_convolution() {
        let _rng = crate::training::exclusive();
        both_paths(|| {
            let d = device();
            let conv = Conv2dConfig::new([5, 7], [3, 2]).init(&d);
            let x = Tensor::<4>::random([2, 5, 9, 6], Distribution::Normal(0.0, 1.0), &d);
            let expected = conv.forward(x.clone()).permute([0, 2, 3, 1]);
            close(conv2d(&conv, x.permute([0, 2, 3, 1])), expected);
        });
    }

    #[test]
    fn conv1d_with_padding_matches_burns_convolution() {
        let _rng = crate::training::exclusive();
        both_paths(|| {
            let d = device();
            let conv = Conv1dConfig::new(4, 6, 5).with_padding(PaddingConfig1d::Explicit(1, 1)).init(&d);
            let x = Tensor::<3>::random([3, 4, 11], Distribution::Normal(0.0, 1.0), &d);
            let expected = conv.forward(x.clone()).swap_dims(1, 2);
            close(conv1d(&conv, x.swap_dims(1, 2)), expected);
        });
    }

    #[test]
    fn max_pool_and_its_gradient_match_burns_in_floor_mode() {
        let _rng = crate::training::exclusive();
        both_paths(|| {
            let d = device().autodiff();
            let x = Tensor::<4>::random([2, 3, 7, 5], Distribution::Normal(0.0, 1.0), &d).require_grad();
            let pool = MaxPool2dConfig::new([2, 2]).init();
            let expected = pool.forward(x.clone());
            let g_theirs = expected.clone().powi_scalar(2).sum().backward();
            let ours = max_pool2d(&pool, x.clone().permute([0, 2, 3, 1]));
            close(ours.clone(), expected.permute([0, 2, 3, 1]));
            let g_ours = ours.powi_scalar(2).sum().backward();
            close(x.grad(&g_ours).unwrap(), x.grad(&g_theirs).unwrap());
        });
    }

    #[test]
    fn batch_norm_matches_burns_in_training_and_keeps_the_unbiased_running_variance() {
        let _rng = crate::training::exclusive();
        both_paths(|| {
            let d = device().autodiff();
            let (ours, theirs) = (BatchNormConfig::new(3).init(&d), BatchNormConfig::new(3).init(&d));
            let x = Tensor::<4>::random([4, 3, 5, 2], Distribution::Normal(2.0, 3.0), &d);
            let values = x.clone().into_data().try_to_vec::<f32>().unwrap();
            close(batch_norm(&ours, x.clone().permute([0, 2, 3, 1])), theirs.forward(x).permute([0, 2, 3, 1]));
            // burn's layer leaves its update pending for this thread until synced.
            close(ours.running_mean.value(), theirs.running_mean.value_sync());
            // By hand: per channel, the 4 x 5 x 2 = 40 values' variance with
            // n - 1 = 39 below, blended into the initial 1 with momentum 0.1.
            let running = ours.running_var.value().into_data().try_to_vec::<f32>().unwrap();
            for (c, &got) in running.iter().enumerate() {
                let v: Vec<f64> = (0..4).flat_map(|b| (0..10).map(move |k| (b * 3 + c) * 10 + k)).map(|i| values[i] as f64).collect();
                let mean = v.iter().sum::<f64>() / 40.0;
                let unbiased = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 39.0;
                let want = 0.9 * 1.0 + 0.1 * unbiased;
                assert!((got as f64 - want).abs() < 1e-4 * want, "channel {c}: {got} vs {want}");
            }
        });
    }

    /// Batches normalised one after the other on different threads (as
    /// side-by-side branches do) move the running statistics exactly as on
    /// one thread.
    #[test]
    fn running_statistics_follow_the_batches_whatever_thread_runs_them() {
        let _rng = crate::training::exclusive();
        for composed in [false, true] {
            let on_path = |f: &dyn Fn()| if composed { flex_kernels::composed(f) } else { f() };
            let d = device().autodiff();
            let (here, threads) = (BatchNormConfig::new(3).init(&d), BatchNormConfig::new(3).init(&d));
            for seed in 0..3 {
                let x = Tensor::<2>::random([8, 3], Distribution::Normal(seed as f64, 2.0), &d);
                on_path(&|| drop(batch_norm(&here, x.clone())));
                std::thread::scope(|s| s.spawn(|| on_path(&|| drop(batch_norm(&threads, x.clone())))).join().unwrap());
            }
            for (a, b) in [(&here.running_mean, &threads.running_mean), (&here.running_var, &threads.running_var)] {
                assert_eq!(a.value().into_data(), b.value().into_data(), "composed: {composed}");
            }
        }
    }

    #[test]
    fn batch_norm_with_and_without_relu_has_burns_gradients_and_inference() {
        let _rng = crate::training::exclusive();
        both_paths(|| {
            for relu in [false, true] {
                let d = device().autodiff();
                let (ours, theirs) = (BatchNormConfig::new(3).init(&d), BatchNormConfig::new(3).init(&d));
                let layer = |x| if relu { batch_norm_relu(&ours, x) } else { batch_norm(&ours, x) };
                let reference = |x| {
                    let y = theirs.forward(x);
                    if relu {
                        burn::tensor::activation::relu(y)
                    } else {
                        y
                    }
                };
                let x = Tensor::<4>::random([4, 3, 5, 2], Distribution::Normal(1.0, 2.0), &d).require_grad();
                let weights = Tensor::<4>::random([4, 3, 5, 2], Distribution::Normal(0.0, 1.0), &d);
                let g_theirs = (reference(x.clone()) * weights.clone()).sum().backward();
                let g_ours = (layer(x.clone().permute([0, 2, 3, 1])).permute([0, 3, 1, 2]) * weights).sum().backward();
                close(x.grad(&g_ours).unwrap(), x.grad(&g_theirs).unwrap());
                close(ours.gamma.val().grad(&g_ours).unwrap(), theirs.gamma.val().grad(&g_theirs).unwrap());
                close(ours.beta.val().grad(&g_ours).unwrap(), theirs.beta.val().grad(&g_theirs).unwrap());
                // Inference on the running statistics: ours keeps the
                // unbiased variance, so burn's layer gets ours to compare.
                let (ours, mut theirs) = (ours.valid(), theirs.valid());
                theirs.running_mean = ours.running_mean.clone();
                theirs.running_var = ours.running_var.clone();
                let x = x.inner();
                close(batch_norm(&ours, x.clone().permute([0, 2, 3, 1])), theirs.forward(x).permute([0, 2, 3, 1]));
            }
        });
    }

    #[test]
    fn gradients_match_burns_convolution() {
        let _rng = crate::training::exclusive();
        both_paths(|| {
            let d = device().autodiff();
            let conv = Conv2dConfig::new([3, 4], [3, 3]).init(&d);
            let x = Tensor::<4>::random([2, 3, 6, 5], Distribution::Normal(0.0, 1.0), &d).require_grad();
            let theirs = conv.forward(x.clone()).powi_scalar(2).sum().backward();
            let ours = conv2d(&conv, x.clone().permute([0, 2, 3, 1])).powi_scalar(2).sum().backward();
            close(conv.weight.val().grad(&ours).unwrap(), conv.weight.val().grad(&theirs).unwrap());
            let bias = conv.bias.as_ref().unwrap().val();
            close(bias.grad(&ours).unwrap(), bias.grad(&theirs).unwrap());
            close(x.grad(&ours).unwrap(), x.grad(&theirs).unwrap());
        });
    }
}
