//! Direct convolution for x86-64 CPUs with AVX2 and FMA: the forward pass
//! and the weight gradient read every window straight from the image and
//! keep a 6 x 16 tile of results in registers.
//!
//! The im2col + gemm route copies each patch twice (the im2col block, then
//! gemm's packing of it) and runs the co-occurrence layers' narrow products
//! (16 to 64 output channels, one sample per call) at 55-70 GFLOP/s per
//! core. Here the only copy is the weight, once per call, into panels of 16
//! output channels.
//!
//! The input gradient is the same product turned around: a tile of six
//! output positions x 16 patch elements, summed over the output channels,
//! is added straight onto the windows it came from (im2col + gemm wrote
//! the whole patch gradient out and read it back to add it, which took
//! longer than the forward pass).
//!
//! On CPUs with AVX-512 bigger tiles of 16-lane registers run (module
//! `wide`), every value computed as on the AVX2 path, bit for bit;
//! [`crate::isa`] picks.
//!
//! [`available`] says when this runs: on such a CPU, for outputs with a
//! multiple of 16 channels; [`input_grad_available`] adds that a kernel
//! row's run of `KW x C_in` values fills most of its 16-lane groups.
//! [`super::conv`] uses im2col + gemm otherwise.

use crate::conv::ConvShape;
use crate::{chunks_of, written};
use std::mem::MaybeUninit;

/// Output positions (forward) or patch elements (weight gradient) per tile.
const ROWS: usize = 6;
/// Output channels per tile and per weight panel: two AVX registers.
const LANES: usize = 16;

/// Whether [`forward`] and [`weight_grad`] run for `s` on this CPU.
pub fn available(s: &ConvShape) -> bool {
    s.c_out > 0 && s.c_out.is_multiple_of(LANES) && cpu_supported()
}

/// Whether the kernels here run: they all need AVX2 and FMA ([`crate::isa`]).
pub fn cpu_supported() -> bool {
    crate::isa::avx2_fma()
}

/// Whether [`input_grad`] runs for `s`: as [`available`], and each
/// kernel row's run of `KW x C_in` patch elements holds at least 16, cut
/// into groups of 16 that leave at most a quarter of the lanes idle.
pub fn input_grad_available(s: &ConvShape) -> bool {
    let run = s.kw * s.c_in;
    available(s) && run >= LANES && run * 4 >= run.next_multiple_of(LANES) * 3
}

/// 16 patch elements that lie next to each other in the image: a piece
/// of one kernel row's run of `KW x C_in` values. Where the run is not a
/// multiple of 16 its last group ends with the run and overlaps the one
/// before; its first `idle` lanes, already covered there, get zero
/// weights (and so add exact zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ElementGroup {
    /// Its first patch element, in the weight matrix's order.
    first: usize,
    /// Where it starts, from the window's first value.
    offset: usize,
    /// Leading lanes with zero weights (the overlap with the group before).
    idle: usize,
}

/// The input gradient's weights: per [`ElementGroup`], a row-major
/// `(C_out, 16)` panel of the transposed weight matrix.
pub struct InputGradPanels {
    groups: Vec<ElementGroup>,
    panels: Vec<f32>,
}

impl InputGradPanels {
    /// From the `(KH x KW x C_in, C_out)` weight matrix of `s`, which
    /// [`input_grad_available`] accepts.
    pub fn new(m: &[f32], s: &ConvShape) -> Self {
        let run = s.kw * s.c_in;
        assert!(run >= LANES, "kernel rows of {run} values are narrower than a group");
        let groups: Vec<ElementGroup> = (0..s.kh)
            .flat_map(|i| {
                (0..run).step_by(LANES).map(move |j| {
                    let start = j.min(run - LANES);
                    ElementGroup { first: i * run + start, offset: i * s.width * s.c_in + start, idle: j - start }
                })
            })
            .collect();
        let mut panels = vec![0.0; groups.len() * s.c_out * LANES];
        for (group, panel) in groups.iter().zip(panels.chunks_exact_mut(s.c_out * LANES)) {
            for (k, row) in panel.chunks_exact_mut(LANES).enumerate() {
                (group.idle..LANES).for_each(|lane| row[lane] = m[(group.first + lane) * s.c_out + k]);
            }
        }
        InputGradPanels { groups, panels }
    }
}

/// Where windows and their elements lie within one channels-last sample.
pub struct Windows {
    /// Per output position (row-major): the offset of its window's first value.
    starts: Vec<usize>,
    /// Per patch element, in the weight matrix's (row, column, channel)
    /// order: its offset from the window's first value.
    offsets: Vec<usize>,
    image: usize,
}

impl Windows {
    pub fn new(s: &ConvShape) -> Self {
        let starts = (0..s.h_out()).flat_map(|y| (0..s.w_out()).map(move |x| (y * s.width + x) * s.c_in)).collect();
        let offsets = (0..s.kh).flat_map(|i| (0..s.kw).flat_map(move |j| (0..s.c_in).map(move |c| (i * s.width + j) * s.c_in + c))).collect();
        Windows { starts, offsets, image: s.height * s.width * s.c_in }
    }

    /// The window starts of `samples` consecutive samples.
    fn all(&self, samples: usize) -> Vec<usize> {
        (0..samples).flat_map(|n| self.starts.iter().map(move |s| n * self.image + s)).collect()
    }

    /// Every window element lies inside its sample: the bound that makes
    /// the kernels' unchecked reads safe.
    fn check(&self) {
        let last = self.starts.last().copied().unwrap_or(0) + self.offsets.last().copied().unwrap_or(0);
        assert!(self.starts.is_empty() || self.offsets.is_empty() || last < self.image, "window outside the image");
    }
}

/// A `(depth, C_out)` matrix, value `(k, co)` at `k * rows + co * columns`
/// of `m`, as the panels [`forward`] multiplies by: 16 output channels
/// each, a row-major `(depth, 16)` block.
pub fn matrix_panels(m: &[f32], depth: usize, c_out: usize, (rows, columns): (usize, usize)) -> Vec<f32> {
    let mut out = vec![0.0; depth * c_out];
    for (p, panel) in out.chunks_exact_mut(depth * LANES).enumerate() {
        for (k, row) in panel.chunks_exact_mut(LANES).enumerate() {
            row.iter_mut().enumerate().for_each(|(lane, v)| *v = m[k * rows + (p * LANES + lane) * columns]);
        }
    }
    out
}

/// The whole `(B, H', W', C_out)` output of `x` (channels last), samples
/// in parallel chunks fixed by the shape ([`chunks_of`]).
pub fn forward_all(x: &[f32], panels: &[f32], bias: &[f32], s: &ConvShape) -> Vec<f32> {
    let windows = Windows::new(s);
    let per_sample = windows.starts.len() * s.c_out;
    let chunk = chunks_of(s.batch, windows.starts.len() * windows.offsets.len());
    // SAFETY: `forward` writes every value of its chunk.
    unsafe {
        written(s.output_len(), chunk * per_sample, |c, out| {
            let images = &x[c * chunk * windows.image..][..out.len() / per_sample * windows.image];
            forward(images, &windows, panels, bias, s, out);
        })
    }
}

/// `x (rows, depth) @ m + bias` for a `(depth, C_out)` matrix `m` given
/// with its (row, column) strides: a 1 x 1 convolution, rows in chunks of
/// 64. Used by the feed-forward block where its products are narrow.
pub fn product(x: &[f32], depth: usize, m: (&[f32], usize, usize), c_out: usize, bias: &[f32]) -> Vec<f32> {
    let s = pointwise(x.len() / depth.max(1), depth, c_out);
    forward_all(x, &matrix_panels(m.0, depth, c_out, (m.1, m.2)), bias, &s)
}

/// Rows per block of [`product_blocked`]: their inputs stay in L1 while
/// every panel passes over them, and their outputs in L2 for `finish`.
const PRODUCT_BLOCK: usize = 24;

/// [`product`] for wide outputs (the feed-forward's hidden layer), in
/// blocks of 24 rows, each given to `finish(first row, block)` while still
/// in cache: the feed-forward's ReLU and dropout pass rides along instead
/// of reading the whole hidden activation back from memory. Panel-outer
/// over a whole chunk, as [`product`] runs, stores each row's 64-byte
/// pieces 8 KB apart: for 2816 x 128 @ 128 x 2048 on the AMD VM it took
/// 10-13 ms, gemm 10-14 ms, blocked 9-10 ms.
pub fn product_blocked(x: &[f32], depth: usize, m: (&[f32], usize, usize), c_out: usize, bias: &[f32], finish: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let rows = x.len() / depth.max(1);
    let panels = matrix_panels(m.0, depth, c_out, (m.1, m.2));
    let chunk = chunks_of(rows, depth).next_multiple_of(PRODUCT_BLOCK);
    // SAFETY: `forward` writes every value of each block.
    unsafe {
        written(rows * c_out, chunk * c_out, |c, out| {
            for (b, block) in out.chunks_mut(PRODUCT_BLOCK * c_out).enumerate() {
                let (first, n) = (c * chunk + b * PRODUCT_BLOCK, block.len() / c_out);
                let s = pointwise(n, depth, c_out);
                forward(&x[first * depth..(first + n) * depth], &Windows::new(&s), &panels, bias, &s, block);
                // SAFETY: `forward` has just written every value of `block`.
                finish(first, &mut *(block as *mut [MaybeUninit<f32>] as *mut [f32]));
            }
        })
    }
}

/// The windows of `rows` consecutive rows of `depth` values, each its own
/// 1 x 1 window: for products of plain row-major matrices, built once and
/// used for many (the Winograd products: 16 per chunk of tiles).
pub struct Rows {
    starts: Vec<usize>,
    offsets: Vec<usize>,
}

impl Rows {
    pub fn new(rows: usize, depth: usize) -> Self {
        Rows { starts: (0..rows).map(|r| r * depth).collect(), offsets: (0..depth).collect() }
    }

    /// Whether `x` holds exactly these rows: the bound that makes the
    /// kernels' unchecked reads safe.
    fn fits(&self, x: &[f32]) -> bool {
        x.len() == self.starts.len() * self.offsets.len()
    }
}

/// `x @ panels + bias` into `out` for the rows `x` (as [`Rows`]), the
/// panels as [`matrix_panels`] lays them out, `C_out = bias.len()`.
pub fn rows_product(x: &[f32], rows: &Rows, panels: &[f32], bias: &[f32], out: &mut [MaybeUninit<f32>]) {
    let c_out = bias.len();
    assert!(available(&pointwise(rows.starts.len(), rows.offsets.len(), c_out)) && rows.fits(x));
    assert!(panels.len() == rows.offsets.len() * c_out && out.len() == rows.starts.len() * c_out);
    // SAFETY: the CPU has AVX2 and FMA (`available`), and AVX-512 where
    // `isa` says so; the rows lie inside `x` and the outputs inside `out`
    // (the lengths above).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        match crate::isa::avx512() {
            true => wide::forward(x, &rows.starts, &rows.offsets, panels, bias, c_out, out.as_mut_ptr().cast()),
            false => avx::forward(x, &rows.starts, &rows.offsets, panels, bias, c_out, out.as_mut_ptr().cast()),
        }
    }
}

/// `dw += x^T dy` for the rows `x` (as [`Rows`]) and their `(rows, C_out)`
/// gradient `dy`, `dw` a row-major `(depth, C_out)` matrix: each value's
/// running sum in row order.
pub fn rows_weight_grad_add(x: &[f32], rows: &Rows, dy: &[f32], c_out: usize, dw: &mut [f32]) {
    assert!(available(&pointwise(rows.starts.len(), rows.offsets.len(), c_out)) && rows.fits(x));
    assert!(dy.len() == rows.starts.len() * c_out && dw.len() == rows.offsets.len() * c_out);
    // SAFETY: as in `rows_product`; `dw` holds every (element, channel) pair.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        match crate::isa::avx512() {
            true => wide::weight_grad(x, &rows.starts, &rows.offsets, dy, c_out, dw),
            false => avx::weight_grad(x, &rows.starts, &rows.offsets, dy, c_out, dw),
        }
    }
}

/// The shape of `x (rows, depth) @ (depth, c_out)` as a 1 x 1 convolution.
pub fn pointwise(rows: usize, depth: usize, c_out: usize) -> ConvShape {
    ConvShape { batch: rows, height: 1, width: 1, c_in: depth, c_out, kh: 1, kw: 1 }
}

/// `(samples, H', W', C_out)` outputs of whole `images` into `out`: each
/// value starts from its bias and adds the window's products in patch order.
/// Writes every value of `out`, which may start uninitialised.
pub fn forward(images: &[f32], windows: &Windows, panels: &[f32], bias: &[f32], s: &ConvShape, out: &mut [MaybeUninit<f32>]) {
    windows.check();
    let samples = images.len() / windows.image;
    assert!(available(s) && bias.len() == s.c_out && panels.len() == windows.offsets.len() * s.c_out);
    assert!(images.len() == samples * windows.image && out.len() == samples * windows.starts.len() * s.c_out);
    // SAFETY: the CPU has AVX2 and FMA (`available`), and AVX-512 where
    // `isa` says so; every read lies inside its sample (`check`) and every
    // write inside `out` (the lengths above).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        let starts = windows.all(samples);
        match crate::isa::avx512() {
            true => wide::forward(images, &starts, &windows.offsets, panels, bias, s.c_out, out.as_mut_ptr().cast()),
            false => avx::forward(images, &starts, &windows.offsets, panels, bias, s.c_out, out.as_mut_ptr().cast()),
        }
    }
}

/// The weight gradient as the `(KH x KW x C_in, C_out)` matrix: for each
/// element, the sum over every output position of `images` (in order) of
/// its window value times the output gradient `dy`.
pub fn weight_grad(images: &[f32], windows: &Windows, dy: &[f32], s: &ConvShape) -> Vec<f32> {
    windows.check();
    let samples = images.len() / windows.image;
    assert!(available(s) && images.len() == samples * windows.image && dy.len() == samples * windows.starts.len() * s.c_out);
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut dw = vec![0.0; windows.offsets.len() * s.c_out];
    // SAFETY: as in `forward`; `dw` holds every (element, channel) pair.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        let starts = windows.all(samples);
        match crate::isa::avx512() {
            true => wide::weight_grad(images, &starts, &windows.offsets, dy, s.c_out, &mut dw),
            false => avx::weight_grad(images, &starts, &windows.offsets, dy, s.c_out, &mut dw),
        }
    }
    dw
}

/// Adds to `dx` (whole samples, channels last) the input gradient of
/// their outputs' gradient `dy`: every window receives its position's
/// gradient times the weight. Six positions at a time, group by group,
/// each tile summed over the output channels in order, then added.
pub fn input_grad(dy: &[f32], windows: &Windows, weights: &InputGradPanels, s: &ConvShape, dx: &mut [f32]) {
    windows.check();
    let samples = dx.len() / windows.image;
    assert!(input_grad_available(s) && dx.len() == samples * windows.image && dy.len() == samples * windows.starts.len() * s.c_out);
    assert!(
        weights.panels.len() == weights.groups.len() * s.c_out * LANES
            && weights.groups.iter().all(|g| g.offset + LANES <= windows.offsets.last().map_or(0, |o| o + 1))
    );
    // SAFETY: as in `forward`; each group lies inside the window (checked
    // just above), so every lane written lies inside its sample of `dx`.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        let starts = windows.all(samples);
        match crate::isa::avx512() {
            true => wide::input_grad(dy, &starts, &weights.groups, &weights.panels, s.c_out, dx.as_mut_ptr()),
            false => avx::input_grad(dy, &starts, &weights.groups, &weights.panels, s.c_out, dx.as_mut_ptr()),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{ElementGroup, LANES, ROWS};
    use std::arch::x86_64::*;

    type Tile = [[__m256; 2]; ROWS];

    /// `acc[t] += a[t] * (w0, w1)` for the six broadcast values `a`.
    #[inline(always)]
    unsafe fn step(acc: &mut Tile, a: [*const f32; ROWS], w0: __m256, w1: __m256) {
        for t in 0..ROWS {
            let v = _mm256_broadcast_ss(&*a[t]);
            acc[t][0] = _mm256_fmadd_ps(v, w0, acc[t][0]);
            acc[t][1] = _mm256_fmadd_ps(v, w1, acc[t][1]);
        }
    }

    /// Stores the first `rows` rows of `acc`, row `t` at `dst + t * stride`.
    #[inline(always)]
    unsafe fn store(acc: &Tile, rows: usize, dst: *mut f32, stride: usize) {
        for (t, row) in acc.iter().enumerate().take(rows) {
            _mm256_storeu_ps(dst.add(t * stride), row[0]);
            _mm256_storeu_ps(dst.add(t * stride + 8), row[1]);
        }
    }

    /// Panel by panel (so one stays in cache), six output positions at a
    /// time, `starts` giving every window of every sample; a short last
    /// group repeats its last position and stores only the real ones.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn forward(images: &[f32], starts: &[usize], offsets: &[usize], panels: &[f32], bias: &[f32], c_out: usize, out: *mut f32) {
        let depth = offsets.len();
        for p in 0..c_out / LANES {
            let panel = panels.as_ptr().add(p * depth * LANES);
            let b = (_mm256_loadu_ps(bias.as_ptr().add(p * LANES)), _mm256_loadu_ps(bias.as_ptr().add(p * LANES + 8)));
            for (g, group) in starts.chunks(ROWS).enumerate() {
                let rows: [*const f32; ROWS] = std::array::from_fn(|t| images.as_ptr().add(group[t.min(group.len() - 1)]));
                let mut acc: Tile = [[b.0, b.1]; ROWS];
                for (k, &o) in offsets.iter().enumerate() {
                    let (w0, w1) = (_mm256_loadu_ps(panel.add(k * LANES)), _mm256_loadu_ps(panel.add(k * LANES + 8)));
                    step(&mut acc, rows.map(|r| r.add(o)), w0, w1);
                }
                store(&acc, group.len(), out.add(g * ROWS * c_out + p * LANES), c_out);
            }
        }
    }

    /// Adds row `t` of `acc` onto `dx + starts[t] + offset`, for each of
    /// the `starts`.
    #[inline(always)]
    unsafe fn add_rows(acc: &Tile, starts: &[usize], offset: usize, dx: *mut f32) {
        for (row, &start) in acc.iter().zip(starts) {
            let at = dx.add(start + offset);
            _mm256_storeu_ps(at, _mm256_add_ps(_mm256_loadu_ps(at), row[0]));
            _mm256_storeu_ps(at.add(8), _mm256_add_ps(_mm256_loadu_ps(at.add(8)), row[1]));
        }
    }

    /// Six output positions at a time (`starts`: every window of every
    /// sample, `dy` their gradients in the same order), group by group:
    /// the tile's sum over the output channels is added onto the windows.
    /// Position-outer, so the six gradient rows and the windows they feed
    /// stay in L1 across the groups (group-outer was up to 30% slower on
    /// the temporal layer). A short last group of positions repeats its
    /// last one and adds only the real ones.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn input_grad(dy: &[f32], starts: &[usize], groups: &[ElementGroup], panels: &[f32], c_out: usize, dx: *mut f32) {
        for (q, positions) in starts.chunks(ROWS).enumerate() {
            let rows: [*const f32; ROWS] = std::array::from_fn(|t| dy.as_ptr().add((q * ROWS + t.min(positions.len() - 1)) * c_out));
            for (p, group) in groups.iter().enumerate() {
                let panel = panels.as_ptr().add(p * c_out * LANES);
                let mut acc: Tile = [[_mm256_setzero_ps(); 2]; ROWS];
                for k in 0..c_out {
                    let (w0, w1) = (_mm256_loadu_ps(panel.add(k * LANES)), _mm256_loadu_ps(panel.add(k * LANES + 8)));
                    step(&mut acc, rows.map(|r| r.add(k)), w0, w1);
                }
                add_rows(&acc, positions, group.offset, dx);
            }
        }
    }

    /// Output positions per block of the weight gradient: their windows
    /// and gradients (about 16 KB on the co-occurrence layers) stay in L1
    /// while every tile passes over them; unblocked, each tile streamed the
    /// whole sample from L2 and waited on it.
    pub const BLOCK: usize = 64;

    /// Loads the first `rows` rows of a tile stored as [`store`] writes it.
    #[inline(always)]
    unsafe fn load(src: *const f32, rows: usize, stride: usize) -> Tile {
        std::array::from_fn(|t| match t < rows {
            true => [_mm256_loadu_ps(src.add(t * stride)), _mm256_loadu_ps(src.add(t * stride + 8))],
            false => [_mm256_setzero_ps(); 2],
        })
    }

    /// Block by block of output positions (`starts`: every window of
    /// every sample), each tile (six patch elements x one panel) loaded
    /// from `dw` (where the sums start), adding the block's products
    /// position by position and stored back: every value is one running
    /// sum in position order. A short last group of elements repeats its
    /// last one and stores only the real ones.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weight_grad(images: &[f32], starts: &[usize], offsets: &[usize], dy: &[f32], c_out: usize, dw: &mut [f32]) {
        for (b, block) in starts.chunks(BLOCK).enumerate() {
            let grads = dy.as_ptr().add(b * BLOCK * c_out);
            for (g, group) in offsets.chunks(ROWS).enumerate() {
                let offsets: [usize; ROWS] = std::array::from_fn(|t| group[t.min(group.len() - 1)]);
                for p in 0..c_out / LANES {
                    let dst = dw.as_mut_ptr().add(g * ROWS * c_out + p * LANES);
                    let mut acc = load(dst, group.len(), c_out);
                    for (q, &start) in block.iter().enumerate() {
                        let at = grads.add(q * c_out + p * LANES);
                        let window = images.as_ptr().add(start);
                        step(&mut acc, offsets.map(|o| window.add(o)), _mm256_loadu_ps(at), _mm256_loadu_ps(at.add(8)));
                    }
                    store(&acc, group.len(), dst, c_out);
                }
            }
        }
    }
}

/// The AVX-512 paths: the same values with 16-lane registers, in bigger
/// tiles (AVX-512 has 32 registers to AVX2's 16). Each output is computed
/// with the very operations of [`avx`], in the same order (vectorised
/// across output channels, never across a sum), so both paths give the
/// same bits. The forward pass and the weight gradient take 8 rows by 32
/// channels per tile (12 by 16 for a last lone panel; each value its own
/// sum, so the grouping changes none), the input gradient 6 positions (its
/// tiles' additions onto overlapping windows follow the tile order) by two
/// element groups, added group by group as the six-by-one tiles add them.
/// On the 2-core Xeon VM these tiles took 0.55-0.83 of the one-panel
/// tiles' time on the CMC step's convolutions and products
/// (docs/performance.md).
#[cfg(target_arch = "x86_64")]
mod wide {
    use super::{ElementGroup, LANES, ROWS};
    use std::arch::x86_64::*;

    /// Rows per tile of the forward pass and the weight gradient, one panel wide.
    const WIDE_ROWS: usize = 2 * ROWS;
    /// Rows per tile two panels wide: 16 accumulators, the two panels'
    /// weights and the eight broadcasts fit the 32 registers (twelve rows
    /// spilled accumulators to the stack).
    const PAIR_ROWS: usize = 8;

    /// As [`super::avx::forward`], eight output positions by two panels (32
    /// output channels) at a time where two remain: two weight loads and
    /// eight broadcasts per 16 fused multiply-adds, where twelve positions
    /// by one panel take thirteen loads per twelve.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn forward(images: &[f32], starts: &[usize], offsets: &[usize], panels: &[f32], bias: &[f32], c_out: usize, out: *mut f32) {
        let count = c_out / LANES;
        for p in (0..count).step_by(2) {
            match p + 1 < count {
                true => forward_panels::<PAIR_ROWS, 2>(images, starts, offsets, panels, bias, c_out, out, p),
                false => forward_panels::<WIDE_ROWS, 1>(images, starts, offsets, panels, bias, c_out, out, p),
            }
        }
    }

    /// [`forward`] over the `P` panels from panel `p`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn forward_panels<const R: usize, const P: usize>(
        images: &[f32],
        starts: &[usize],
        offsets: &[usize],
        panels: &[f32],
        bias: &[f32],
        c_out: usize,
        out: *mut f32,
        p: usize,
    ) {
        let depth = offsets.len();
        let panel: [*const f32; P] = std::array::from_fn(|i| panels.as_ptr().add((p + i) * depth * LANES));
        let b: [__m512; P] = std::array::from_fn(|i| _mm512_loadu_ps(bias.as_ptr().add((p + i) * LANES)));
        for (g, group) in starts.chunks(R).enumerate() {
            let rows: [*const f32; R] = std::array::from_fn(|t| images.as_ptr().add(group[t.min(group.len() - 1)]));
            let mut acc = [b; R];
            for (k, &o) in offsets.iter().enumerate() {
                let w: [__m512; P] = std::array::from_fn(|i| _mm512_loadu_ps(panel[i].add(k * LANES)));
                step_panels(&mut acc, rows.map(|r| r.add(o)), w);
            }
            let dst = out.add(g * R * c_out + p * LANES);
            for (t, row) in acc.iter().enumerate().take(group.len()) {
                row.iter().enumerate().for_each(|(i, v)| _mm512_storeu_ps(dst.add(t * c_out + i * LANES), *v));
            }
        }
    }

    /// `acc[t][i] += a[t] * w[i]` for the broadcast values `a` and the
    /// `P` panels' weights `w`: each accumulator its own sum, as the AVX2
    /// path's `step` adds it.
    #[inline(always)]
    unsafe fn step_panels<const R: usize, const P: usize>(acc: &mut [[__m512; P]; R], a: [*const f32; R], w: [__m512; P]) {
        for t in 0..R {
            let v = _mm512_set1_ps(*a[t]);
            for i in 0..P {
                acc[t][i] = _mm512_fmadd_ps(v, w[i], acc[t][i]);
            }
        }
    }

    /// Element groups per tile of the input gradient.
    const GROUPS: usize = 2;

    /// As [`super::avx::input_grad`], with the same six-position tiles,
    /// two element groups at a time (12 accumulators): each tile's sums
    /// are the six-by-one tiles' sums, and they are added onto the windows
    /// group by group, position by position, in the very order the
    /// six-by-one tiles add them.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn input_grad(dy: &[f32], starts: &[usize], groups: &[ElementGroup], panels: &[f32], c_out: usize, dx: *mut f32) {
        for (q, positions) in starts.chunks(ROWS).enumerate() {
            let rows: [*const f32; ROWS] = std::array::from_fn(|t| dy.as_ptr().add((q * ROWS + t.min(positions.len() - 1)) * c_out));
            for (n, tile) in groups.chunks(GROUPS).enumerate() {
                let panel = panels.as_ptr().add(n * GROUPS * c_out * LANES);
                match tile.len() {
                    2 => input_grad_groups::<2>(rows, positions, tile, panel, c_out, dx),
                    _ => input_grad_groups::<1>(rows, positions, tile, panel, c_out, dx),
                }
            }
        }
    }

    /// One tile of [`input_grad`]: the gradient rows `rows` of the
    /// `positions` by the `G` element groups `groups`, whose panels follow
    /// each other from `panel`.
    #[inline(always)]
    unsafe fn input_grad_groups<const G: usize>(
        rows: [*const f32; ROWS],
        positions: &[usize],
        groups: &[ElementGroup],
        panel: *const f32,
        c_out: usize,
        dx: *mut f32,
    ) {
        let mut acc = [[_mm512_setzero_ps(); G]; ROWS];
        for k in 0..c_out {
            let w: [__m512; G] = std::array::from_fn(|i| _mm512_loadu_ps(panel.add((i * c_out + k) * LANES)));
            step_panels(&mut acc, rows.map(|r| r.add(k)), w);
        }
        for (i, group) in groups.iter().enumerate() {
            for (row, &start) in acc.iter().zip(positions) {
                let at = dx.add(start + group.offset);
                _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), row[i]));
            }
        }
    }

    /// As [`super::avx::weight_grad`], twelve patch elements per tile, or
    /// eight by two panels where two remain (as [`forward`]).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn weight_grad(images: &[f32], starts: &[usize], offsets: &[usize], dy: &[f32], c_out: usize, dw: &mut [f32]) {
        let count = c_out / LANES;
        for (b, block) in starts.chunks(super::avx::BLOCK).enumerate() {
            let grads = dy.as_ptr().add(b * super::avx::BLOCK * c_out);
            for p in (0..count).step_by(2) {
                let (grads, dw) = (grads.add(p * LANES), dw.as_mut_ptr().add(p * LANES));
                match p + 1 < count {
                    true => weight_grad_panels::<PAIR_ROWS, 2>(images, block, offsets, grads, c_out, dw),
                    false => weight_grad_panels::<WIDE_ROWS, 1>(images, block, offsets, grads, c_out, dw),
                }
            }
        }
    }

    /// [`weight_grad`] of one block of positions on `P` panels: tiles of
    /// `R` patch elements, each summed over the `block`'s positions (their
    /// gradients from `grads`, a row every `c_out`) onto `dw`, where the
    /// panels' first column is.
    #[inline(always)]
    unsafe fn weight_grad_panels<const R: usize, const P: usize>(
        images: &[f32],
        block: &[usize],
        offsets: &[usize],
        grads: *const f32,
        c_out: usize,
        dw: *mut f32,
    ) {
        for (g, group) in offsets.chunks(R).enumerate() {
            let dst = dw.add(g * R * c_out);
            let offsets: [usize; R] = std::array::from_fn(|t| group[t.min(group.len() - 1)]);
            let mut acc: [[__m512; P]; R] = std::array::from_fn(|t| {
                std::array::from_fn(|i| if t < group.len() { _mm512_loadu_ps(dst.add(t * c_out + i * LANES)) } else { _mm512_setzero_ps() })
            });
            for (q, &start) in block.iter().enumerate() {
                let window = images.as_ptr().add(start);
                let w: [__m512; P] = std::array::from_fn(|i| _mm512_loadu_ps(grads.add(q * c_out + i * LANES)));
                step_panels(&mut acc, offsets.map(|o| window.add(o)), w);
            }
            for (t, row) in acc.iter().enumerate().take(group.len()) {
                row.iter().enumerate().for_each(|(i, v)| _mm512_storeu_ps(dst.add(t * c_out + i * LANES), *v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Whatever path `isa` picks (AVX-512 on a CPU with it), every value is
    /// bit-identical to the AVX2 path's: the forward pass, the weight and
    /// the input gradient on the encoders' kinds of shapes (a 3 x 3
    /// co-occurrence layer, a temporal 5 x 1 one, a 1 x 1 product) with
    /// short last tiles. Without AVX2 + FMA the direct path must not run.
    #[test]
    fn the_path_isa_picks_gives_the_avx2_paths_bits() {
        let shapes = [
            ConvShape { batch: 3, height: 9, width: 11, c_in: 8, c_out: 32, kh: 3, kw: 3 },
            ConvShape { batch: 2, height: 20, width: 3, c_in: 16, c_out: 16, kh: 5, kw: 1 },
            ConvShape { batch: 37, height: 1, width: 1, c_in: 24, c_out: 48, kh: 1, kw: 1 },
        ];
        let values = |n: usize, seed: usize| (0..n).map(|i| ((i * 7919 + seed * 104_729) % 997) as f32 / 498.5 - 1.0).collect::<Vec<f32>>();
        for s in shapes {
            assert_eq!(available(&s), crate::isa::avx2_fma(), "{s:?}");
            if !available(&s) {
                continue;
            }
            let depth = s.kh * s.kw * s.c_in;
            let (x, m, bias, dy) =
                (values(s.batch * s.height * s.width * s.c_in, 1), values(depth * s.c_out, 2), values(s.c_out, 3), values(s.output_len(), 4));
            let windows = Windows::new(&s);
            let panels = matrix_panels(&m, depth, s.c_out, (s.c_out, 1));
            let starts = windows.all(s.batch);
            let mut picked = vec![MaybeUninit::uninit(); s.output_len()];
            forward(&x, &windows, &panels, &bias, &s, &mut picked);
            let mut avx2 = vec![0.0f32; s.output_len()];
            // SAFETY: AVX2 + FMA (`available`); the shapes are the checked ones above.
            unsafe { avx::forward(&x, &starts, &windows.offsets, &panels, &bias, s.c_out, avx2.as_mut_ptr()) };
            // SAFETY: `forward` wrote every value.
            let picked: Vec<f32> = picked.into_iter().map(|v| unsafe { v.assume_init() }).collect();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
            assert_eq!(bits(&picked), bits(&avx2), "forward {s:?} on {}", crate::isa::describe());
            let mut dw = vec![0.0f32; depth * s.c_out];
            // SAFETY: as above.
            unsafe { avx::weight_grad(&x, &starts, &windows.offsets, &dy, s.c_out, &mut dw) };
            assert_eq!(bits(&weight_grad(&x, &windows, &dy, &s)), bits(&dw), "weight gradient {s:?}");
            if input_grad_available(&s) {
                let weights = InputGradPanels::new(&m, &s);
                let (mut a, mut b) = (vec![0.5f32; x.len()], vec![0.5f32; x.len()]);
                input_grad(&dy, &windows, &weights, &s, &mut a);
                // SAFETY: as above; `input_grad` checked the groups.
                unsafe { avx::input_grad(&dy, &starts, &weights.groups, &weights.panels, s.c_out, b.as_mut_ptr()) };
                assert_eq!(bits(&a), bits(&b), "input gradient {s:?}");
            }
        }
    }

    /// 200 rows of depth 16 make chunks of 48 rows (two blocks each) and a
    /// short last chunk: every block is finished once, at its own rows,
    /// and the values are [`product`]'s.
    #[test]
    fn blocked_product_is_the_product_and_finishes_each_block_at_its_rows() {
        let (rows, depth, c_out) = (200, 16, 32);
        let values = |n: usize, seed: usize| (0..n).map(|i| ((i * 7919 + seed) % 997) as f32 / 498.5 - 1.0).collect::<Vec<f32>>();
        let (x, m, bias) = (values(rows * depth, 1), values(depth * c_out, 2), values(c_out, 3));
        // The definition, in f64.
        let reference: Vec<f32> = (0..rows * c_out)
            .map(|i| (bias[i % c_out] as f64 + (0..depth).map(|k| x[i / c_out * depth + k] as f64 * m[k * c_out + i % c_out] as f64).sum::<f64>()) as f32)
            .collect();
        let close = |a: &[f32]| a.len() == reference.len() && a.iter().zip(&reference).all(|(a, b)| (a - b).abs() < 1e-4);
        assert_eq!(available(&pointwise(rows, depth, c_out)), crate::isa::avx2_fma(), "the direct path runs exactly where the ISA allows");
        if !available(&pointwise(rows, depth, c_out)) {
            // The portable path: callers take gemm, which must be the product too.
            let mut y = crate::conv::product(rows, c_out, depth, (&x, depth as isize, 1), (&m, c_out as isize, 1), gemm::Parallelism::None);
            y.iter_mut().enumerate().for_each(|(i, v)| *v += bias[i % c_out]);
            assert!(close(&y), "gemm's product");
            return;
        }
        let expected = product(&x, depth, (&m, c_out, 1), c_out, &bias);
        assert!(close(&expected), "the direct product");
        let finished = Mutex::new(Vec::new());
        let blocked = product_blocked(&x, depth, (&m, c_out, 1), c_out, &bias, |first, block| {
            assert_eq!(block, &expected[first * c_out..][..block.len()], "block at row {first}");
            finished.lock().unwrap().push((first, block.len() / c_out));
        });
        assert_eq!(blocked, expected);
        let mut finished = finished.into_inner().unwrap();
        finished.sort();
        let firsts: Vec<usize> = (0..rows).step_by(PRODUCT_BLOCK).collect();
        assert_eq!(finished.iter().map(|b| b.0).collect::<Vec<_>>(), firsts);
        assert_eq!(finished.iter().map(|b| b.1).sum::<usize>(), rows);
        assert_eq!(chunks_of(rows, depth).next_multiple_of(PRODUCT_BLOCK), 2 * PRODUCT_BLOCK);
    }
}
