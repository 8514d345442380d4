//! The hot layers of the encoders as single operations of burn's CPU
//! backend (flex), each with a handwritten backward pass: channels-last
//! convolution, batch norm (+ ReLU) and max-pool.
//!
//! Composed from burn's tensor operations, one such layer is ten to twenty
//! operations, each allocating and streaming a whole activation, and the
//! convolution's backward pass scatter-adds one value at a time. Here a
//! layer is one pass of plain Rust over slices (gemm for the products; the
//! `cmkm-kernels` crate in `crates/cmkm-kernels`), registered here with
//! burn's autodiff through its backend-extension API, so models, optimisers
//! and records stay burn's.
//!
//! Only the flex backend (with or without autodiff) has these kernels;
//! [`available`] says whether a tensor can use them, and the layers in
//! [`crate::models::channels_last`] fall back to composed operations
//! elsewhere (CUDA).

// The slice-level kernels live in their own crate; the paths below keep
// `flex_kernels::conv` and the like working for the glue and the bench.
pub use cmkm_kernels::{attention, conv, direct, feed_forward, norm, point, pool, sparse, winograd};

use crate::models::dropout::Mask;
use attention::AttentionShape;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use conv::ConvShape;
use feed_forward::FeedForwardShape;
use pool::PoolShape;
use sparse::Pattern;
use std::sync::Arc;

thread_local! {
    static COMPOSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with these kernels switched off on this thread, so the layers
/// take their composed-operation path (the one other backends use): for
/// tests and benchmarks that compare the two.
pub fn composed<T>(f: impl FnOnce() -> T) -> T {
    let before = COMPOSED.with(|c| c.replace(true));
    let out = f();
    COMPOSED.with(|c| c.set(before));
    out
}

/// Whether `x` lives on the flex backend in f32, where these kernels run
/// (unless switched off by [`composed`], or for the whole process by
/// `CMKM_CPU_AS_GPU=1`, see [`crate::device::cpu_as_gpu`]).
pub fn available<const D: usize>(x: &Tensor<D>) -> bool {
    !COMPOSED.with(|c| c.get()) && !crate::device::cpu_as_gpu() && crate::device::is_host(&x.device()) && x.dtype() == DType::F32
}

#[backend_extension(Flex, Autodiff)]
pub trait FlexKernels: Backend {
    /// Valid stride-1 convolution, `(B, H, W, C_in)` -> `(B, H', W', C_out)`.
    fn cl_conv(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Batch mean and biased variance of each column of `(N, C)`, as
    /// `(2, C)`; a constant for autodiff (the batch norm's backward pass
    /// differentiates through it).
    fn cl_moments(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Training batch norm over the last axis of `(N, C)`, with the batch
    /// `moments` (`(2, C)`: mean, biased variance) given, ReLU optional.
    fn cl_batch_norm(
        x: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self>;
    /// Non-overlapping `kh x kw` max-pool of `(B, H, W, C)`.
    fn cl_max_pool(x: FloatTensor<Self>, kh: usize, kw: usize) -> FloatTensor<Self>;
    /// `dropout(relu(x W1 + b1)) W2 + b2` on `(N, d)`, the dropout mask
    /// given by its seed and keep probability (1 keeps everything).
    #[allow(clippy::too_many_arguments)]
    fn cl_feed_forward(
        x: FloatTensor<Self>,
        w1: FloatTensor<Self>,
        b1: FloatTensor<Self>,
        w2: FloatTensor<Self>,
        b2: FloatTensor<Self>,
        seed: u64,
        keep: f64,
    ) -> FloatTensor<Self>;
    /// Multi-head self-attention of `(batch x tokens, d)` rows up to its
    /// output projection, `(wq, bq, wk, bk, wv, bv)` the three projections
    /// and the dropout on the attention weights given by its seed and keep
    /// probability.
    #[allow(clippy::too_many_arguments)]
    fn cl_attention(
        x: FloatTensor<Self>,
        wq: FloatTensor<Self>,
        bq: FloatTensor<Self>,
        wk: FloatTensor<Self>,
        bk: FloatTensor<Self>,
        wv: FloatTensor<Self>,
        bv: FloatTensor<Self>,
        heads: usize,
        tokens: usize,
        seed: u64,
        keep: f64,
    ) -> FloatTensor<Self>;
    /// Batch mean and biased variance, `(2, C_out)`, of the 1 x 1
    /// convolution of `(N, C_in)` rows by a `(C_out, C_in, 1, 1)` weight
    /// and bias, from the input's moments; a constant for autodiff.
    fn cl_point_moments(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `relu(batch_norm(conv_1x1(x)))` on `(N, C_in)` rows, the batch
    /// `moments` given (see [`point`]).
    #[allow(clippy::too_many_arguments)]
    fn cl_point_norm_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

fn values(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("flex kernels take contiguous f32 tensors")
}

fn tensor(v: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape.to_vec()))
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().to_vec()
}

fn conv_shape(x: &FlexTensor, weight: &FlexTensor) -> ConvShape {
    let (x, w) = (dims(x), dims(weight));
    ConvShape { batch: x[0], height: x[1], width: x[2], c_in: x[3], c_out: w[0], kh: w[2], kw: w[3] }
}

fn pool_shape(x: &FlexTensor, kh: usize, kw: usize) -> PoolShape {
    let x = dims(x);
    PoolShape { batch: x[0], height: x[1], width: x[2], channels: x[3], kh, kw }
}

fn split_moments(moments: &FlexTensor) -> (Vec<f32>, Vec<f32>) {
    let m = slice(moments);
    let (mean, var) = m.split_at(m.len() / 2);
    (mean.to_vec(), var.to_vec())
}

fn conv_forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
    let s = conv_shape(x, weight);
    let y = conv::forward(slice(x), slice(weight), slice(bias), &s);
    tensor(y, &[s.batch, s.h_out(), s.w_out(), s.c_out])
}

fn moments_of(x: &FlexTensor) -> FlexTensor {
    let channels = dims(x)[1];
    let (mean, var) = norm::moments(slice(x), channels);
    tensor([mean, var].concat(), &[2, channels])
}

fn norm_forward(x: &FlexTensor, moments: &FlexTensor, gamma: &FlexTensor, beta: &FlexTensor, epsilon: f64, relu: bool) -> FlexTensor {
    let (mean, var) = split_moments(moments);
    tensor(norm::forward(slice(x), (&mean, &var), slice(gamma), slice(beta), epsilon, relu), &dims(x))
}

fn pool_forward(x: &FlexTensor, kh: usize, kw: usize) -> (FlexTensor, Vec<u16>) {
    let s = pool_shape(x, kh, kw);
    let (y, winner) = pool::forward(slice(x), &s);
    (tensor(y, &[s.batch, s.h_out(), s.w_out(), s.channels]), winner)
}

fn feed_forward_shape(x: &FlexTensor, w1: &FlexTensor) -> FeedForwardShape {
    let (x, w1) = (dims(x), dims(w1));
    FeedForwardShape { rows: x[0], d: x[1], hidden: w1[1] }
}

/// The hidden activation, the output of the feed-forward block, and the
/// hidden activation's pattern of non-zeros where its products use one.
fn feed_forward_forward(inputs: [&FlexTensor; 5], mask: Mask) -> (FlexTensor, FlexTensor, Option<Pattern>) {
    let [x, w1, b1, w2, b2] = inputs;
    let s = feed_forward_shape(x, w1);
    let (h, y, pattern) = feed_forward::forward(slice(x), slice(w1), slice(b1), slice(w2), slice(b2), &s, mask);
    (tensor(h, &[s.rows, s.hidden]), tensor(y, &[s.rows, s.d]), pattern)
}

fn attention_shape(x: &FlexTensor, heads: usize, tokens: usize) -> AttentionShape {
    let x = dims(x);
    AttentionShape { batch: x[0] / tokens.max(1), tokens, d_model: x[1], heads }
}

/// The joined projection matrix and biases of `(wq, bq, wk, bk, wv, bv)`.
fn joined_projections(p: &[FlexTensor; 6]) -> (Vec<f32>, Vec<f32>) {
    let d = dims(&p[1])[0];
    (attention::joined([0, 2, 4].map(|i| slice(&p[i])), d), attention::joined([1, 3, 5].map(|i| slice(&p[i])), d))
}

fn point_shape(x: &FlexTensor, weight: &FlexTensor) -> point::PointShape {
    let (x, w) = (dims(x), dims(weight));
    point::PointShape { rows: x[0], c_in: x[1], c_out: w[0] }
}

fn point_moments_of(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
    let s = point_shape(x, weight);
    let (mean, var) = point::moments(slice(x), slice(weight), slice(bias), &s);
    tensor([mean, var].concat(), &[2, s.c_out])
}

fn point_forward(t: [&FlexTensor; 6], epsilon: f64) -> FlexTensor {
    let [x, w, b, moments, gamma, beta] = t;
    let s = point_shape(x, w);
    let (mean, var) = split_moments(moments);
    tensor(point::forward(slice(x), slice(w), slice(b), (&mean, &var), slice(gamma), slice(beta), epsilon, &s), &[s.rows, s.c_out])
}

impl FlexKernels for Flex {
    fn cl_moments(x: FlexTensor) -> FlexTensor {
        moments_of(&values(&x))
    }

    fn cl_conv(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        conv_forward(&values(&x), &values(&weight), &values(&bias))
    }

    fn cl_batch_norm(x: FlexTensor, moments: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64, relu: bool) -> FlexTensor {
        norm_forward(&values(&x), &values(&moments), &values(&gamma), &values(&beta), epsilon, relu)
    }

    fn cl_max_pool(x: FlexTensor, kh: usize, kw: usize) -> FlexTensor {
        pool_forward(&values(&x), kh, kw).0
    }

    fn cl_feed_forward(x: FlexTensor, w1: FlexTensor, b1: FlexTensor, w2: FlexTensor, b2: FlexTensor, seed: u64, keep: f64) -> FlexTensor {
        let inputs = [x, w1, b1, w2, b2].map(|t| values(&t));
        feed_forward_forward(inputs.each_ref(), Mask::new(seed, keep)).1
    }

    #[allow(clippy::too_many_arguments)]
    fn cl_attention(
        x: FlexTensor,
        wq: FlexTensor,
        bq: FlexTensor,
        wk: FlexTensor,
        bk: FlexTensor,
        wv: FlexTensor,
        bv: FlexTensor,
        heads: usize,
        tokens: usize,
        seed: u64,
        keep: f64,
    ) -> FlexTensor {
        let (x, p) = (values(&x), [wq, bq, wk, bk, wv, bv].map(|t| values(&t)));
        let s = attention_shape(&x, heads, tokens);
        let (w, b) = joined_projections(&p);
        tensor(attention::forward(slice(&x), &w, &b, &s, Mask::new(seed, keep)).0, &[s.rows(), s.d_model])
    }
    fn cl_point_moments(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        point_moments_of(&values(&x), &values(&weight), &values(&bias))
    }

    #[allow(clippy::too_many_arguments)]
    fn cl_point_norm_relu(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        moments: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> FlexTensor {
        let t = [x, weight, bias, moments, gamma, beta].map(|t| values(&t));
        point_forward(t.each_ref(), epsilon)
    }
}

/// Hands `grad`, of `shape`, to the gradient of `node` where the graph
/// tracks one.
fn register(grads: &mut Gradients, node: Option<NodeId>, grad: Vec<f32>, shape: &[usize]) {
    if let Some(id) = node {
        grads.register::<Flex>(id, tensor(grad, shape));
    }
}

/// Backward of [`FlexKernels::cl_feed_forward`]; parents: input,
/// W1, b1, W2, b2.
#[derive(Debug)]
struct FeedForwardBackward;

#[derive(Debug, Clone)]
struct FeedForwardState {
    x: FlexTensor,
    hidden: FlexTensor,
    pattern: Option<Arc<Pattern>>,
    w1: FlexTensor,
    w2: FlexTensor,
    scale: f32,
}

impl Backward<Flex, 5> for FeedForwardBackward {
    type State = FeedForwardState;

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w1, node_b1, node_w2, node_b2] = ops.parents;
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let st = ops.state;
        let s = feed_forward_shape(&st.x, &st.w1);
        let (dx, dw1, db1, dw2, db2) = feed_forward::backward(
            slice(&st.x),
            (slice(&st.hidden), st.pattern.as_deref()),
            (slice(&st.w1), slice(&st.w2)),
            slice(&dy),
            &s,
            st.scale,
            node_x.is_some(),
        );
        if let Some(dx) = dx {
            register(grads, node_x.map(|n| n.id), dx, &[s.rows, s.d]);
        }
        register(grads, node_w1.map(|n| n.id), dw1, &[s.d, s.hidden]);
        register(grads, node_b1.map(|n| n.id), db1, &[s.hidden]);
        register(grads, node_w2.map(|n| n.id), dw2, &[s.hidden, s.d]);
        register(grads, node_b2.map(|n| n.id), db2, &[s.d]);
    }
}

/// Backward of [`FlexKernels::cl_attention`]; parents: input,
/// wq, bq, wk, bk, wv, bv.
#[derive(Debug)]
struct AttentionBackward;

#[derive(Debug)]
struct AttentionState {
    x: FlexTensor,
    w: Vec<f32>,
    saved: attention::Saved,
    shape: AttentionShape,
    mask: Mask,
}

impl Backward<Flex, 7> for AttentionBackward {
    type State = Arc<AttentionState>;

    fn backward(self, ops: Ops<Self::State, 7>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, wq, bq, wk, bk, wv, bv] = ops.parents;
        let dc = values(&grads.consume::<Flex>(&ops.node));
        let st = ops.state;
        let d = st.shape.d_model;
        let (dx, dw, db) = attention::backward(slice(&st.x), &st.w, slice(&dc), &st.saved, &st.shape, st.mask, node_x.is_some());
        if let Some(dx) = dx {
            register(grads, node_x.map(|n| n.id), dx, &[st.shape.rows(), d]);
        }
        for (node, grad) in [wq, wk, wv].into_iter().zip(attention::split(&dw, d)) {
            register(grads, node.map(|n| n.id), grad, &[d, d]);
        }
        for (node, grad) in [bq, bk, bv].into_iter().zip(attention::split(&db, d)) {
            register(grads, node.map(|n| n.id), grad, &[d]);
        }
    }
}

/// Backward of [`FlexKernels::cl_point_norm_relu`]; parents:
/// input, weight, bias, gamma, beta.
#[derive(Debug)]
struct PointBackward;

impl Backward<Flex, 5> for PointBackward {
    type State = ([FlexTensor; 6], f64);

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b, node_gamma, node_beta] = ops.parents;
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let ([x, w, b, moments, gamma, beta], epsilon) = ops.state;
        let s = point_shape(&x, &w);
        let (mean, var) = split_moments(&moments);
        let (dx, dw, db, d_gamma, d_beta) =
            point::backward(slice(&x), slice(&dy), slice(&w), slice(&b), (&mean, &var), slice(&gamma), slice(&beta), epsilon, &s, node_x.is_some());
        if let Some(dx) = dx {
            register(grads, node_x.map(|n| n.id), dx, &[s.rows, s.c_in]);
        }
        register(grads, node_w.map(|n| n.id), dw, &dims(&w));
        register(grads, node_b.map(|n| n.id), db, &[s.c_out]);
        register(grads, node_gamma.map(|n| n.id), d_gamma, &[s.c_out]);
        register(grads, node_beta.map(|n| n.id), d_beta, &[s.c_out]);
    }
}

/// Backward of [`FlexKernels::cl_conv`]; parents: input, weight, bias.
#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 3> for ConvBackward {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let (x, weight) = ops.state;
        let s = conv_shape(&x, &weight);
        let (dx, dw, db) = conv::backward(slice(&x), slice(&weight), slice(&dy), &s, node_x.is_some());
        if let Some(dx) = dx {
            register(grads, node_x.map(|n| n.id), dx, &dims(&x));
        }
        register(grads, node_w.map(|n| n.id), dw, &dims(&weight));
        register(grads, node_b.map(|n| n.id), db, &[s.c_out]);
    }
}

/// Backward of [`FlexKernels::cl_batch_norm`]; parents: input,
/// gamma, beta (the moments are functions of the input, handled here).
#[derive(Debug)]
struct NormBackward;

#[derive(Debug, Clone)]
struct NormState {
    x: FlexTensor,
    moments: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
    relu: bool,
}

impl Backward<Flex, 3> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let s = ops.state;
        let (mean, var) = split_moments(&s.moments);
        let (dx, d_gamma, d_beta) = norm::backward(slice(&s.x), slice(&dy), (&mean, &var), slice(&s.gamma), slice(&s.beta), s.epsilon, s.relu);
        register(grads, node_x.map(|n| n.id), dx, &dims(&s.x));
        register(grads, node_gamma.map(|n| n.id), d_gamma, &[mean.len()]);
        register(grads, node_beta.map(|n| n.id), d_beta, &[mean.len()]);
    }
}

/// Backward of [`FlexKernels::cl_max_pool`]; parent: input.
#[derive(Debug)]
struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    type State = (Arc<Vec<u16>>, PoolShape);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let (winner, s) = ops.state;
        if node_x.is_some() {
            register(grads, node_x.map(|n| n.id), pool::backward(slice(&dy), &winner, &s), &[s.batch, s.height, s.width, s.channels]);
        }
    }
}

impl<C: CheckpointStrategy> FlexKernels for Autodiff<Flex, C> {
    fn cl_moments(x: FloatTensor<Self>) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(moments_of(&values(x.primitive())))
    }

    fn cl_conv(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        let (xv, wv, bv) = (values(x.primitive()), values(weight.primitive()), values(bias.primitive()));
        let y = conv_forward(&xv, &wv, &bv);
        match ConvBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((xv, wv), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn cl_batch_norm(
        x: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        let (xv, mv, gv, bv) = (values(x.primitive()), values(moments.primitive()), values(gamma.primitive()), values(beta.primitive()));
        let y = norm_forward(&xv, &mv, &gv, &bv, epsilon, relu);
        match NormBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(NormState { x: xv, moments: mv, gamma: gv, beta: bv, epsilon, relu }, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn cl_max_pool(x: FloatTensor<Self>, kh: usize, kw: usize) -> FloatTensor<Self> {
        let xv = values(x.primitive());
        let (y, winner) = pool_forward(&xv, kh, kw);
        match PoolBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((Arc::new(winner), pool_shape(&xv, kh, kw)), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn cl_feed_forward(
        x: FloatTensor<Self>,
        w1: FloatTensor<Self>,
        b1: FloatTensor<Self>,
        w2: FloatTensor<Self>,
        b2: FloatTensor<Self>,
        seed: u64,
        keep: f64,
    ) -> FloatTensor<Self> {
        let inputs = [&x, &w1, &b1, &w2, &b2].map(|t| values(t.primitive()));
        let mask = Mask::new(seed, keep);
        let (hidden, y, pattern) = feed_forward_forward(inputs.each_ref(), mask);
        let [xv, w1v, _, w2v, _] = inputs;
        let pattern = pattern.map(Arc::new);
        match FeedForwardBackward.prepare::<C>([x.node(), w1.node(), b1.node(), w2.node(), b2.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(FeedForwardState { x: xv, hidden, pattern, w1: w1v, w2: w2v, scale: mask.scale }, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn cl_attention(
        x: FloatTensor<Self>,
        wq: FloatTensor<Self>,
        bq: FloatTensor<Self>,
        wk: FloatTensor<Self>,
        bk: FloatTensor<Self>,
        wv: FloatTensor<Self>,
        bv: FloatTensor<Self>,
        heads: usize,
        tokens: usize,
        seed: u64,
        keep: f64,
    ) -> FloatTensor<Self> {
        let projections = [wq, bq, wk, bk, wv, bv];
        let (xv, p) = (values(x.primitive()), projections.each_ref().map(|t| values(t.primitive())));
        let shape = attention_shape(&xv, heads, tokens);
        let (w, b) = joined_projections(&p);
        let mask = Mask::new(seed, keep);
        let (context, saved) = attention::forward(slice(&xv), &w, &b, &shape, mask);
        let y = tensor(context, &[shape.rows(), shape.d_model]);
        let [wq, bq, wk, bk, wv, bv] = projections.each_ref().map(|t| t.node());
        match AttentionBackward.prepare::<C>([x.node(), wq, bq, wk, bk, wv, bv]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(Arc::new(AttentionState { x: xv, w, saved, shape, mask }), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
    fn cl_point_moments(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(point_moments_of(&values(x.primitive()), &values(weight.primitive()), &values(bias.primitive())))
    }

    #[allow(clippy::too_many_arguments)]
    fn cl_point_norm_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        moments: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let t = [&x, &weight, &bias, &moments, &gamma, &beta].map(|t| values(t.primitive()));
        let y = point_forward(t.each_ref(), epsilon);
        match PointBackward.prepare::<C>([x.node(), weight.node(), bias.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((t, epsilon), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

/// [`FlexKernels::cl_conv`] on tensors; see [`available`].
pub fn conv(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FlexKernels>::cl_conv(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch()))
}

/// [`FlexKernels::cl_moments`] on tensors; see [`available`].
pub fn moments(x: Tensor<2>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as FlexKernels>::cl_moments(x.into_dispatch()))
}

/// [`FlexKernels::cl_batch_norm`] on tensors; see [`available`].
pub fn batch_norm(x: Tensor<2>, moments: Tensor<2>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64, relu: bool) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as FlexKernels>::cl_batch_norm(
        x.into_dispatch(),
        moments.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
        relu,
    ))
}

/// [`FlexKernels::cl_max_pool`] on tensors; see [`available`].
pub fn max_pool(x: Tensor<4>, kh: usize, kw: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FlexKernels>::cl_max_pool(x.into_dispatch(), kh, kw))
}

/// [`FlexKernels::cl_feed_forward`] on tensors, with `mask` the
/// dropout after the ReLU (`None`: no dropout); see [`available`].
pub fn feed_forward(x: Tensor<2>, w1: Tensor<2>, b1: Tensor<1>, w2: Tensor<2>, b2: Tensor<1>, mask: Option<Mask>) -> Tensor<2> {
    let mask = mask.unwrap_or(Mask::new(0, 1.0));
    let [x, w1, w2] = [x, w1, w2].map(|t| t.into_dispatch());
    Tensor::from_dispatch(<Dispatch as FlexKernels>::cl_feed_forward(x, w1, b1.into_dispatch(), w2, b2.into_dispatch(), mask.seed, mask.keep))
}

/// [`FlexKernels::cl_attention`] on tensors: `x` is `(batch x
/// tokens, d)`, `projections` the query, key and value layers' (weight,
/// bias) pairs, `mask` the dropout on the attention weights (`None`: no
/// dropout); see [`available`].
pub fn attention(x: Tensor<2>, projections: [(Tensor<2>, Tensor<1>); 3], heads: usize, tokens: usize, mask: Option<Mask>) -> Tensor<2> {
    let mask = mask.unwrap_or(Mask::new(0, 1.0));
    let [(wq, bq), (wk, bk), (wv, bv)] = projections;
    let (wq, wk, wv) = (wq.into_dispatch(), wk.into_dispatch(), wv.into_dispatch());
    let (bq, bk, bv) = (bq.into_dispatch(), bk.into_dispatch(), bv.into_dispatch());
    Tensor::from_dispatch(<Dispatch as FlexKernels>::cl_attention(x.into_dispatch(), wq, bq, wk, bk, wv, bv, heads, tokens, mask.seed, mask.keep))
}

/// [`FlexKernels::cl_point_moments`] on tensors; see [`available`].
pub fn point_moments(x: Tensor<2>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as FlexKernels>::cl_point_moments(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch()))
}

/// [`FlexKernels::cl_point_norm_relu`] on tensors; see [`available`].
pub fn point_norm_relu(x: Tensor<2>, weight: Tensor<4>, bias: Tensor<1>, moments: Tensor<2>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64) -> Tensor<2> {
    let (x, weight, bias, moments) = (x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch(), moments.into_dispatch());
    Tensor::from_dispatch(<Dispatch as FlexKernels>::cl_point_norm_relu(x, weight, bias, moments, gamma.into_dispatch(), beta.into_dispatch(), epsilon))
}
