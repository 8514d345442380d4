//! Winograd F(2x2, 3x3) (Lavin and Gray, CVPR 2016) for the 3 x 3 valid
//! convolutions: every 4 x 4 input tile (`B^T d B`) and every kernel
//! (`G g G^T`) is transformed so that a 2 x 2 block of outputs costs 16
//! products per channel pair instead of 36, and the products come back as
//! outputs through `A^T m A`.
//!
//! The 16 products of a chunk's tiles are 1 x 1 convolutions, run by
//! [`direct`]'s register tiles; the transforms are additions (and halvings,
//! exact, of the kernel). The backward pass is the forward pass's exact
//! transpose: the output gradient's tiles go through `A g A^T`, are
//! multiplied by the transformed inputs (the weight gradient, taken back by
//! `G^T dU G`) and by the transposed kernels (the input gradient, spread
//! back onto the overlapping input tiles by `B dV B^T`). Tiles that hang
//! over an odd-sized output's edge read zeros and write nothing there.

use crate::conv::{self, ConvShape};
use crate::direct::{self, Rows};
use crate::written;
use rayon::prelude::*;
use std::array::from_fn;
use std::mem::MaybeUninit;
use std::ops::{Add, Neg, Sub};

/// Values of one transformed tile.
const TILE: usize = 16;
/// Channels per vector in the transforms.
const LANES: usize = 8;
/// Channels per group that the products run best on: the direct kernel's
/// panel width.
const PANEL: usize = 16;

/// Whether F(2x2, 3x3) runs for `s`: 3 x 3 kernels, on CPUs and output
/// channel counts where [`direct`]'s kernel runs the products, and input
/// channels in whole groups of 16. The products here are only `C_in` deep
/// (the direct kernel's are `9 x C_in`): on the co-occurrence encoder's
/// first 3 x 3 layer (20 input channels, the joints) a version that padded
/// the input gradient's products to 32 took 1.02-1.09 times the direct
/// kernel's time, on the second (32) this one takes 0.81-0.95.
pub fn available(s: &ConvShape) -> bool {
    s.kh == 3 && s.kw == 3 && s.height >= 3 && s.width >= 3 && s.c_in > 0 && s.c_in.is_multiple_of(PANEL) && direct::available(s)
}

/// Eight channels, added lane by lane (vectorised inside the transforms'
/// AVX functions).
#[derive(Clone, Copy)]
struct Lanes([f32; LANES]);

impl Add for Lanes {
    type Output = Self;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        let (a, b) = (self.0, o.0);
        Lanes([a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4], a[5] + b[5], a[6] + b[6], a[7] + b[7]])
    }
}
impl Sub for Lanes {
    type Output = Self;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        let (a, b) = (self.0, o.0);
        Lanes([a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3], a[4] - b[4], a[5] - b[5], a[6] - b[6], a[7] - b[7]])
    }
}
impl Neg for Lanes {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        let a = self.0;
        Lanes([-a[0], -a[1], -a[2], -a[3], -a[4], -a[5], -a[6], -a[7]])
    }
}

/// `M d M^T` for a 4 x 4 tile `d` (row-major) and a 4 x 4 `M`, which `f`
/// applies to one column. Written out index by index so that the tile
/// stays in registers.
#[inline(always)]
fn square(d: [Lanes; 16], f: impl Fn(Lanes, Lanes, Lanes, Lanes) -> [Lanes; 4]) -> [Lanes; 16] {
    let [c0, c1, c2, c3] = [f(d[0], d[4], d[8], d[12]), f(d[1], d[5], d[9], d[13]), f(d[2], d[6], d[10], d[14]), f(d[3], d[7], d[11], d[15])];
    let [r0, r1, r2, r3] = [f(c0[0], c1[0], c2[0], c3[0]), f(c0[1], c1[1], c2[1], c3[1]), f(c0[2], c1[2], c2[2], c3[2]), f(c0[3], c1[3], c2[3], c3[3])];
    [r0[0], r0[1], r0[2], r0[3], r1[0], r1[1], r1[2], r1[3], r2[0], r2[1], r2[2], r2[3], r3[0], r3[1], r3[2], r3[3]]
}

/// `A^T m A` for a 4 x 4 tile `m` and the 2 x 4 `A^T`, which `f` applies
/// to one column.
#[inline(always)]
fn shrink(m: [Lanes; 16], f: impl Fn(Lanes, Lanes, Lanes, Lanes) -> [Lanes; 2]) -> [Lanes; 4] {
    let [c0, c1, c2, c3] = [f(m[0], m[4], m[8], m[12]), f(m[1], m[5], m[9], m[13]), f(m[2], m[6], m[10], m[14]), f(m[3], m[7], m[11], m[15])];
    let [r0, r1] = [f(c0[0], c1[0], c2[0], c3[0]), f(c0[1], c1[1], c2[1], c3[1])];
    [r0[0], r0[1], r1[0], r1[1]]
}

/// `A g A^T` for a 2 x 2 tile `g` and the 4 x 2 `A`, which `f` applies to
/// one column.
#[inline(always)]
fn grow(g: [Lanes; 4], f: impl Fn(Lanes, Lanes) -> [Lanes; 4]) -> [Lanes; 16] {
    let [c0, c1] = [f(g[0], g[2]), f(g[1], g[3])];
    let [r0, r1, r2, r3] = [f(c0[0], c1[0]), f(c0[1], c1[1]), f(c0[2], c1[2]), f(c0[3], c1[3])];
    [r0[0], r0[1], r0[2], r0[3], r1[0], r1[1], r1[2], r1[3], r2[0], r2[1], r2[2], r2[3], r3[0], r3[1], r3[2], r3[3]]
}

/// `M d M^T` for an `I x I` tile `d` (row-major), `f` applying `M` to a
/// column of `I` values: the kernels' transforms, once per call.
fn separable<const I: usize, const O: usize, const II: usize, const OO: usize>(d: [f32; II], f: impl Fn([f32; I]) -> [f32; O]) -> [f32; OO] {
    let columns: [[f32; O]; I] = from_fn(|b| f(from_fn(|a| d[a * I + b])));
    let rows: [[f32; O]; O] = from_fn(|o| f(from_fn(|b| columns[b][o])));
    from_fn(|k| rows[k / O][k % O])
}

/// One of the tile transforms, `II` values to `OO`.
trait Transform<const II: usize, const OO: usize> {
    fn apply(d: [Lanes; II]) -> [Lanes; OO];
}

/// `B^T d B`: an input tile into the product domain.
struct InputTile;
impl Transform<TILE, TILE> for InputTile {
    #[inline(always)]
    fn apply(d: [Lanes; TILE]) -> [Lanes; TILE] {
        square(d, |c0, c1, c2, c3| [c0 - c2, c1 + c2, c2 - c1, c1 - c3])
    }
}

/// `B v B^T`, the transpose of [`InputTile`]: a product-domain gradient
/// back onto the input tile.
struct InputTileGrad;
impl Transform<TILE, TILE> for InputTileGrad {
    #[inline(always)]
    fn apply(v: [Lanes; TILE]) -> [Lanes; TILE] {
        square(v, |c0, c1, c2, c3| [c0, c1 - c2 + c3, c2 + c1 - c0, -c3])
    }
}

/// `A^T m A`: the products into a 2 x 2 block of outputs.
struct OutputTile;
impl Transform<TILE, 4> for OutputTile {
    #[inline(always)]
    fn apply(m: [Lanes; TILE]) -> [Lanes; 4] {
        shrink(m, |c0, c1, c2, c3| [c0 + c1 + c2, c1 - c2 - c3])
    }
}

/// `A g A^T`, the transpose of [`OutputTile`]: an output block's gradient
/// into the product domain.
struct OutputTileGrad;
impl Transform<4, TILE> for OutputTileGrad {
    #[inline(always)]
    fn apply(g: [Lanes; 4]) -> [Lanes; TILE] {
        grow(g, |c0, c1| [c0, c0 + c1, c0 - c1, -c1])
    }
}

/// Applies `P` channel by channel, eight at a time: `dst[k][c]` from
/// every `src[j][c]`. The channels come in 16s ([`available`]); the
/// assertion checks what the loop needs, a multiple of eight.
#[inline(always)]
fn transform<P: Transform<II, OO>, const II: usize, const OO: usize>(src: [&[f32]; II], dst: [&mut [f32]; OO]) {
    let channels = src[0].len();
    assert!(channels.is_multiple_of(LANES) && src.iter().all(|s| s.len() == channels) && dst.iter().all(|d| d.len() == channels));
    let (src, dst) = (src.map(<[f32]>::as_ptr), dst.map(<[f32]>::as_mut_ptr));
    for c in (0..channels).step_by(LANES) {
        // SAFETY: `c + LANES <= channels`, the length of every piece
        // (asserted above); the pieces of `dst` are disjoint borrows.
        unsafe {
            let out = P::apply(from_fn(|j| Lanes(src[j].add(c).cast::<[f32; LANES]>().read_unaligned())));
            for k in 0..OO {
                dst[k].add(c).cast::<[f32; LANES]>().write_unaligned(out[k].0);
            }
        }
    }
}

/// `N` disjoint `len`-value pieces of `values` cut into `N` equal planes,
/// the one at `at` in each.
#[inline(always)]
fn pieces<const N: usize>(values: &mut [f32], at: usize, len: usize) -> [&mut [f32]; N] {
    let plane = values.len() / N;
    let mut it = values.chunks_exact_mut(plane);
    from_fn(|_| &mut it.next().expect("N planes")[at..at + len])
}

thread_local! {
    /// Each worker's product-domain planes, reused from chunk to chunk so
    /// that they are neither allocated nor zeroed again.
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 3]> = const { std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// Runs `f` with this thread's three scratch buffers, at least `lens`
/// long, holding stale values (every caller writes before it reads).
/// Not re-entrant: nothing inside a chunk runs in parallel.
fn with_scratch<R>(lens: [usize; 3], f: impl FnOnce([&mut [f32]; 3]) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut buffers = cell.borrow_mut();
        let [a, b, c] = &mut *buffers;
        for (buffer, &len) in [&mut *a, &mut *b, &mut *c].into_iter().zip(&lens) {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
        }
        f([&mut a[..lens[0]], &mut b[..lens[1]], &mut c[..lens[2]]])
    })
}

/// Where the tiles of one shape lie, and how work is cut into chunks.
#[derive(Debug, Clone, Copy)]
struct Tiles {
    s: ConvShape,
    rows: usize,
    columns: usize,
}

impl Tiles {
    fn new(s: &ConvShape) -> Self {
        Tiles { s: *s, rows: s.h_out().div_ceil(2), columns: s.w_out().div_ceil(2) }
    }

    fn per_sample(&self) -> usize {
        self.rows * self.columns
    }

    /// Samples per chunk: about 16 K values in one plane of the products'
    /// inputs, outputs and input gradients together (about 1 MB for all
    /// 16 planes), and at least two chunks. Fixed by the shape, never the
    /// threads.
    fn chunk(&self) -> usize {
        let tiles = 16_384 / (2 * self.s.c_in + self.s.c_out);
        (tiles / self.per_sample()).clamp(1, self.s.batch.div_ceil(2).max(1))
    }

    /// Offset of input value `(n, y, x, 0)`, if inside the image.
    #[inline(always)]
    fn input_at(&self, n: usize, y: usize, x: usize) -> Option<usize> {
        let s = &self.s;
        (y < s.height && x < s.width).then(|| ((n * s.height + y) * s.width + x) * s.c_in)
    }

    /// Offset of output value `(n, y, x, 0)`, if inside the output.
    #[inline(always)]
    fn output_at(&self, n: usize, y: usize, x: usize) -> Option<usize> {
        let s = &self.s;
        (y < s.h_out() && x < s.w_out()).then(|| ((n * s.h_out() + y) * s.w_out() + x) * s.c_out)
    }
}

/// The transformed kernels `G g G^T` of the channels-first weight, as
/// `(C_out, C_in, 16)`.
fn transformed_weights(weight: &[f32], s: &ConvShape) -> Vec<f32> {
    let g = |c: [f32; 3]| [c[0], 0.5 * (c[0] + c[1] + c[2]), 0.5 * (c[0] - c[1] + c[2]), c[2]];
    let mut u = vec![0.0; s.c_out * s.c_in * TILE];
    u.par_chunks_mut(s.c_in * TILE).zip(weight.par_chunks(s.c_in * 9)).for_each(|(u, kernels)| {
        for (u, kernel) in u.chunks_exact_mut(TILE).zip(kernels.chunks_exact(9)) {
            u.copy_from_slice(&separable::<3, 4, 9, TILE>(kernel.try_into().unwrap(), g));
        }
    });
    u
}

/// The channels-first weight gradient `G^T dU G` from the 16 `(C_in,
/// C_out)` product-domain gradients.
fn weight_from_transformed(du: &[f32], s: &ConvShape) -> Vec<f32> {
    let gt = |c: [f32; 4]| [c[0] + 0.5 * (c[1] + c[2]), 0.5 * (c[1] - c[2]), 0.5 * (c[1] + c[2]) + c[3]];
    let plane = s.c_in * s.c_out;
    let mut weight = vec![0.0; s.c_out * s.c_in * 9];
    weight.par_chunks_mut(s.c_in * 9).enumerate().for_each(|(co, kernels)| {
        for (ci, kernel) in kernels.chunks_exact_mut(9).enumerate() {
            let t: [f32; TILE] = from_fn(|k| du[k * plane + ci * s.c_out + co]);
            kernel.copy_from_slice(&separable::<4, 3, TILE, 9>(t, gt));
        }
    });
    weight
}

/// The kernels as the direct kernel's panels, plane by plane of the 16:
/// for the forward pass `C_in` deep and `C_out` wide, and for the input
/// gradient (transposed) `C_out` deep and `C_in` wide.
struct Kernels {
    forward: Vec<f32>,
    transposed: Vec<f32>,
}

impl Kernels {
    fn new(weight: &[f32], t: &Tiles, input_grad: bool) -> Self {
        let s = &t.s;
        let u = transformed_weights(weight, s);
        // Plane k of `u` seen as a matrix: (C_in, C_out) with strides
        // (16, 16 x C_in), or transposed.
        let planes = |depth: usize, width: usize, strides: (usize, usize)| -> Vec<f32> {
            (0..TILE).into_par_iter().map(|k| direct::matrix_panels(&u[k..], depth, width, strides)).collect::<Vec<_>>().concat()
        };
        let forward = planes(s.c_in, s.c_out, (TILE, s.c_in * TILE));
        let transposed = if input_grad { planes(s.c_out, s.c_in, (s.c_in * TILE, TILE)) } else { Vec::new() };
        Kernels { forward, transposed }
    }
}

/// `x (rows, depth) @ panels` into `out`, by the direct kernel, for each
/// of the 16 planes of `x`, `panels` and `out`.
fn products(x: &[f32], depth: usize, panels: &[f32], width: usize, out: &mut [f32]) {
    let (rows, bias) = (Rows::new(x.len() / TILE / depth, depth), vec![0.0; width]);
    let planes = x.chunks_exact(x.len() / TILE).zip(panels.chunks_exact(panels.len() / TILE));
    for ((x, panels), out) in planes.zip(out.chunks_exact_mut(out.len() / TILE)) {
        // SAFETY: the same memory seen as possibly uninitialised values,
        // which initialised ones are; the kernel only writes it.
        let out: &mut [MaybeUninit<f32>] = unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) };
        direct::rows_product(x, &rows, panels, &bias, out);
    }
}

/// Calls `f(tile, sample, first row, first column)` for each of a
/// chunk's `tiles`, in order.
#[inline(always)]
fn for_each_tile(t: &Tiles, tiles: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
    for r in 0..tiles {
        let (n, i) = (r / t.per_sample(), r % t.per_sample());
        f(r, n, 2 * (i / t.columns), 2 * (i % t.columns));
    }
}

/// The 16 product-domain planes `(tiles, C_in)` of a chunk's `images`
/// into `v`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
fn input_planes(images: &[f32], t: &Tiles, tiles: usize, v: &mut [f32]) {
    let c = t.s.c_in;
    let zeros = vec![0.0; c];
    for_each_tile(t, tiles, |r, n, y, x| {
        let mut src = [&zeros[..]; TILE];
        for (k, src) in src.iter_mut().enumerate() {
            if let Some(at) = t.input_at(n, y + k / 4, x + k % 4) {
                *src = &images[at..at + c];
            }
        }
        transform::<InputTile, TILE, TILE>(src, pieces(v, r * c, c));
    });
}

/// The 16 product-domain planes `(tiles, C_out)` of a chunk's output
/// gradient `dy` into `m`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
fn output_grad_planes(dy: &[f32], t: &Tiles, tiles: usize, m: &mut [f32]) {
    let c = t.s.c_out;
    let zeros = vec![0.0; c];
    for_each_tile(t, tiles, |r, n, y, x| {
        let mut src = [&zeros[..]; 4];
        for (k, src) in src.iter_mut().enumerate() {
            if let Some(at) = t.output_at(n, y + k / 2, x + k % 2) {
                *src = &dy[at..at + c];
            }
        }
        transform::<OutputTileGrad, 4, TILE>(src, pieces(m, r * c, c));
    });
}

/// A chunk's outputs from their product-domain planes `m`, plus `bias`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
fn outputs(m: &[f32], bias: &[f32], t: &Tiles, tiles: usize, scratch: &mut [f32], out: &mut [MaybeUninit<f32>]) {
    let c = t.s.c_out;
    for_each_tile(t, tiles, |r, n, y, x| {
        let mut src = [&m[..0]; TILE];
        for (k, src) in src.iter_mut().enumerate() {
            *src = &m[(k * tiles + r) * c..][..c];
        }
        transform::<OutputTile, TILE, 4>(src, pieces(scratch, 0, c));
        for (k, values) in scratch.chunks_exact(c).enumerate() {
            if let Some(at) = t.output_at(n, y + k / 2, x + k % 2) {
                for ((o, v), b) in out[at..at + c].iter_mut().zip(values).zip(bias) {
                    o.write(v + b);
                }
            }
        }
    });
}

/// The forward pass of one chunk of whole samples into `out`. (Cutting
/// chunks into blocks of tiles small enough for L2 was slower: more calls,
/// shallower weight gradient sums.)
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_unsafe))]
fn forward_chunk(images: &[f32], kernels: &Kernels, bias: &[f32], t: &Tiles, out: &mut [MaybeUninit<f32>]) {
    let s = &t.s;
    let tiles = images.len() / (s.height * s.width * s.c_in) * t.per_sample();
    with_scratch([TILE * tiles * s.c_in, TILE * tiles * s.c_out, 4 * s.c_out], |[v, m, scratch]| {
        // SAFETY: target features only: `available` (the caller's
        // precondition) found AVX2 and FMA.
        unsafe { input_planes(images, t, tiles, v) };
        products(v, s.c_in, &kernels.forward, s.c_out, m);
        // SAFETY: as above.
        unsafe { outputs(m, bias, t, tiles, scratch, out) };
    })
}

/// Forward pass, as [`super::conv::forward`] (which [`available`] allows).
pub fn forward(x: &[f32], weight: &[f32], bias: &[f32], s: &ConvShape) -> Vec<f32> {
    assert!(available(s) && x.len() == s.batch * s.height * s.width * s.c_in && bias.len() == s.c_out && weight.len() == s.c_out * s.c_in * 9);
    let t = Tiles::new(s);
    let kernels = Kernels::new(weight, &t, false);
    let (chunk, image, per_sample) = (t.chunk(), s.height * s.width * s.c_in, outputs_per_sample(s));
    // SAFETY: the tiles of a chunk cover each of its output positions, and
    // `outputs` writes every position a tile covers.
    unsafe {
        written(s.output_len(), chunk * per_sample, |c, out| {
            let samples = out.len() / per_sample;
            forward_chunk(&x[c * chunk * image..][..samples * image], &kernels, bias, &t, out)
        })
    }
}

/// One chunk's weight gradient in the product domain (16 `(C_in, C_out)`
/// planes) and bias gradient, and its input gradient added onto `dx`.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_unsafe))]
fn backward_chunk(images: &[f32], dy: &[f32], kernels: &Kernels, t: &Tiles, dx: Option<&mut [f32]>) -> (Vec<f32>, Vec<f32>) {
    let s = &t.s;
    let tiles = dy.len() / outputs_per_sample(s) * t.per_sample();
    let mut du = vec![0.0; TILE * s.c_in * s.c_out];
    let dv_len = if dx.is_some() { TILE * tiles * s.c_in } else { 0 };
    with_scratch([TILE * tiles * s.c_in, TILE * tiles * s.c_out, dv_len], |[v, m, dv]| {
        // SAFETY: target features only: `available` (the caller's
        // precondition) found AVX2 and FMA.
        unsafe { (input_planes(images, t, tiles, v), output_grad_planes(dy, t, tiles, m)) };
        let rows = Rows::new(tiles, s.c_in);
        for ((v, m), du) in v.chunks_exact(tiles * s.c_in).zip(m.chunks_exact(tiles * s.c_out)).zip(du.chunks_exact_mut(s.c_in * s.c_out)) {
            direct::rows_weight_grad_add(v, &rows, m, s.c_out, du);
        }
        if let Some(dx) = dx {
            products(m, s.c_out, &kernels.transposed, s.c_in, dv);
            // SAFETY: target features only, as above.
            unsafe { spread_input_grad(dv, t, tiles, dx) };
        }
    });
    (du, conv::bias_grad(dy, s.c_out))
}

/// Output values per sample.
fn outputs_per_sample(s: &ConvShape) -> usize {
    s.h_out() * s.w_out() * s.c_out
}

/// Adds a chunk's input gradient onto `dx` from its product-domain planes
/// `dv`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
fn spread_input_grad(dv: &[f32], t: &Tiles, tiles: usize, dx: &mut [f32]) {
    let c = t.s.c_in;
    let mut tile = vec![0.0; TILE * c];
    for_each_tile(t, tiles, |r, n, y, x| {
        let mut src = [&dv[..0]; TILE];
        for (k, src) in src.iter_mut().enumerate() {
            *src = &dv[(k * tiles + r) * c..][..c];
        }
        transform::<InputTileGrad, TILE, TILE>(src, pieces(&mut tile, 0, c));
        for (k, values) in tile.chunks_exact(c).enumerate() {
            if let Some(at) = t.input_at(n, y + k / 4, x + k % 4) {
                dx[at..at + c].iter_mut().zip(values).for_each(|(d, v)| *d += v);
            }
        }
    });
}

/// Gradients, as [`super::conv::backward`] (which [`available`] allows):
/// the input's (when `input_grad`), the weight's and the bias's.
pub fn backward(x: &[f32], weight: &[f32], dy: &[f32], s: &ConvShape, input_grad: bool) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    assert!(available(s) && x.len() == s.batch * s.height * s.width * s.c_in && dy.len() == s.output_len() && weight.len() == s.c_out * s.c_in * 9);
    let t = Tiles::new(s);
    let kernels = Kernels::new(weight, &t, input_grad);
    let (chunk, image) = (t.chunk(), s.height * s.width * s.c_in);
    let mut dx = input_grad.then(|| vec![0.0f32; s.batch * image]);
    let images = x.par_chunks(chunk * image).zip(dy.par_chunks(chunk * outputs_per_sample(s)));
    let partial: Vec<(Vec<f32>, Vec<f32>)> = match dx.as_mut() {
        Some(dx) => images.zip(dx.par_chunks_mut(chunk * image)).map(|((x, dy), dx)| backward_chunk(x, dy, &kernels, &t, Some(dx))).collect(),
        None => images.map(|(x, dy)| backward_chunk(x, dy, &kernels, &t, None)).collect(),
    };
    // Chunks summed in order, each value on its own: the same sums on any
    // number of threads.
    let mut du = vec![0.0f32; TILE * s.c_in * s.c_out];
    du.par_chunks_mut(4096).enumerate().for_each(|(i, out)| {
        for (p, _) in &partial {
            out.iter_mut().zip(&p[i * 4096..]).for_each(|(a, b)| *a += b);
        }
    });
    let mut db = vec![0.0f32; s.c_out];
    for (_, p) in &partial {
        db.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    (dx, weight_from_transformed(&du, s), db)
}
