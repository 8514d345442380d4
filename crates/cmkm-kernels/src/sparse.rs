//! Products that skip the zeros of a ReLU layer.
//!
//! The feed-forward block's hidden activation `h` (tokens x 2048) is zero
//! wherever ReLU cut or dropout dropped: about 55% of it at initialisation
//! (half cut, a tenth of the rest dropped), more as training sparsifies
//! it. Its gradient `dz` is zero at the same places. Four of the block's six
//! products have `h` or `dz` as the factor whose entries are broadcast:
//! the output `h W2`, the input gradient `dz W1^T`, and the weight
//! gradients `h^T dy` and `x^T dz`. Here they add only the non-zero
//! entries' products, found from a bit [`Pattern`] of the matrix.
//!
//! Skipping an exact zero leaves every sum unchanged except for its order
//! of additions (and a zero times an infinity, which the dense product
//! turns into NaN). Each output value is still one running sum in a fixed
//! order (columns, or rows, ascending), so results do not depend on the
//! thread count.
//!
//! The kernels need AVX2 and FMA and a multiple of 64 output columns
//! ([`available`]): a 64-column slice of an output row is eight
//! registers, and the other factor's 128 rows of that slice (32 KB, laid
//! out contiguously by [`Panels`]) stay in L1 while every row of a chunk
//! adds its non-zero entries' products. Per non-zero entry that is one
//! broadcast and eight FMAs, each with its own load, where the dense
//! kernels reuse a load six times; at the feed-forward's density (0.48 on
//! the bench's data) a product takes about 0.8 of the dense kernel's time.

use crate::direct;
use rayon::prelude::*;

/// Output columns per register tile: eight AVX registers.
const TILE: usize = 64;
/// Rows of the other factor per pass over a chunk (two pattern words):
/// each row's loop over its set bits runs about 60 steps between the
/// branch mispredictions its variable length costs (one word: 1.08 times
/// the time; four, with 64 KB panels spilling from L1: 1.5 times).
const SPAN: usize = 128;
/// Rows of `a` per parallel chunk of [`rows_product`].
const ROW_CHUNK: usize = 128;
/// Columns of `a` per parallel chunk of [`columns_product`].
const COLUMN_CHUNK: usize = 64;

/// Whether [`rows_product`] and [`columns_product`] run for products
/// with `d` output columns on this CPU.
pub fn available(d: usize) -> bool {
    d > 0 && d.is_multiple_of(TILE) && direct::cpu_supported()
}

/// Where a `(rows, width)` matrix is non-zero: per row, one bit per
/// column (column `j` is bit `j % 64` of word `j / 64`), and bits past the
/// width clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    rows: usize,
    width: usize,
    bits: Vec<u64>,
}

impl Pattern {
    /// The pattern of the row-major `(m.len() / width, width)` matrix `m`.
    pub fn of(m: &[f32], width: usize) -> Self {
        let words = width.div_ceil(64);
        let rows = m.len() / width.max(1);
        let mut bits = vec![0; rows * words];
        bits.par_chunks_mut(words.max(1) * 64).zip(m.par_chunks(width.max(1) * 64)).for_each(|(bits, m)| {
            for (row, bits) in m.chunks_exact(width).zip(bits.chunks_exact_mut(words)) {
                row_bits(row, bits);
            }
        });
        Pattern { rows, width, bits }
    }

    /// An all-clear pattern of `(rows, width)`, to be filled by row blocks
    /// through [`Pattern::set_rows`].
    pub fn empty(rows: usize, width: usize) -> Self {
        Pattern { rows, width, bits: vec![0; rows * width.div_ceil(64)] }
    }

    /// The words of one row.
    fn words(&self) -> usize {
        self.width.div_ceil(64)
    }

    /// The pattern of `(m.len() / width)` rows starting at row `first`,
    /// written through `shared` (from parallel blocks that do not overlap).
    ///
    /// # Safety
    /// `shared` must come from [`Pattern::shared`] of a pattern that lives
    /// while this runs and has these rows, and no other call may write
    /// them at the same time.
    pub unsafe fn set_rows(shared: &SharedPattern, first: usize, m: &[f32]) {
        let words = shared.width.div_ceil(64);
        let rows = m.len() / shared.width.max(1);
        assert!(first + rows <= shared.rows, "rows past the pattern");
        // SAFETY: these rows' words lie inside the pattern (just checked)
        // and no one else writes them (the caller's promise).
        let bits = unsafe { std::slice::from_raw_parts_mut(shared.bits.add(first * words), rows * words) };
        for (row, bits) in m.chunks_exact(shared.width).zip(bits.chunks_exact_mut(words)) {
            row_bits(row, bits);
        }
    }

    /// A handle for [`Pattern::set_rows`] from parallel blocks.
    pub fn shared(&mut self) -> SharedPattern {
        SharedPattern { rows: self.rows, width: self.width, bits: self.bits.as_mut_ptr() }
    }

    /// The `(width, rows)` pattern of the transposed matrix, by 64 x 64
    /// bit blocks.
    pub fn transposed(&self) -> Pattern {
        let (words, row_words) = (self.words(), self.rows.div_ceil(64));
        let mut out = vec![0u64; self.width * row_words];
        // One output block row (64 columns of the matrix) per task.
        out.par_chunks_mut(64 * row_words).enumerate().for_each(|(w, out)| {
            for rb in 0..row_words {
                let mut block = [0u64; 64];
                for (r, word) in block.iter_mut().enumerate() {
                    let row = rb * 64 + r;
                    if row < self.rows {
                        *word = self.bits[row * words + w];
                    }
                }
                transpose64(&mut block);
                for (c, word) in block.iter().enumerate().take(out.len() / row_words) {
                    out[c * row_words + rb] = *word;
                }
            }
        });
        Pattern { rows: self.width, width: self.rows, bits: out }
    }

    /// The fraction of set bits: how dense the matrix is.
    pub fn density(&self) -> f64 {
        let set: u64 = self.bits.iter().map(|w| w.count_ones() as u64).sum();
        set as f64 / (self.rows * self.width).max(1) as f64
    }
}

/// A [`Pattern`]'s storage shared by parallel blocks of rows.
pub struct SharedPattern {
    rows: usize,
    width: usize,
    bits: *mut u64,
}

// SAFETY: `Pattern::set_rows`'s callers write disjoint rows only.
unsafe impl Sync for SharedPattern {}
// SAFETY: as above.
unsafe impl Send for SharedPattern {}

/// One row's bits: set where the value is not zero (NaN included).
fn row_bits(row: &[f32], bits: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    if direct::cpu_supported() {
        // SAFETY: the CPU has AVX2 (`cpu_supported`).
        return unsafe { avx::row_bits(row, bits) };
    }
    for (word, values) in bits.iter_mut().zip(row.chunks(64)) {
        *word = word_bits(values);
    }
}

/// The bits of up to 64 values, one at a time.
fn word_bits(values: &[f32]) -> u64 {
    values.iter().enumerate().fold(0, |w, (j, v)| w | (((*v != 0.0) as u64) << j))
}

/// Transposes a 64 x 64 bit matrix in place (row `r` is word `r`, column
/// `c` its bit `c`): swaps ever smaller off-diagonal blocks.
fn transpose64(a: &mut [u64; 64]) {
    let (mut j, mut m) = (32usize, 0x0000_0000_FFFF_FFFFu64);
    while j != 0 {
        let mut k = 0;
        while k < 64 {
            let t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k + j] ^= t;
            a[k] ^= t << j;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// A `(k, d)` row-major matrix as the kernels read it: per [`SPAN`] rows
/// and [`TILE`] columns one contiguous block (rows past `k` zero), which
/// sits in L1 without its rows' cache sets colliding, starting on a cache
/// line so that no 32-byte load straddles two (with malloc's 16-byte
/// alignment half of them did: the product took 1.25 times as long).
struct Panels {
    store: Vec<f32>,
    skip: usize,
}

impl Panels {
    fn new(b: &[f32], k: usize, d: usize) -> Self {
        let len = k.div_ceil(SPAN) * SPAN * d;
        let mut store = vec![0.0f32; len + 16];
        let skip = store.as_ptr().align_offset(64).min(16);
        store[skip..skip + len].par_chunks_mut(SPAN * d).enumerate().for_each(|(w, out)| {
            for (q, block) in out.chunks_exact_mut(SPAN * TILE).enumerate() {
                for (j, row) in block.chunks_exact_mut(TILE).enumerate().take(k.saturating_sub(w * SPAN)) {
                    row.copy_from_slice(&b[(w * SPAN + j) * d + q * TILE..][..TILE]);
                }
            }
        });
        Panels { store, skip }
    }

    fn values(&self) -> &[f32] {
        &self.store[self.skip..self.store.len() - 16 + self.skip]
    }
}

/// `bias + a (rows, k) @ b (k, d)`, adding only the products of `a`'s
/// non-zero entries (`pattern`, of `a`): each output value sums them in
/// column order of `a`. Needs [`available`]`(d)`.
pub fn rows_product(a: &[f32], pattern: &Pattern, b: &[f32], bias: &[f32]) -> Vec<f32> {
    let (k, d) = (pattern.width, bias.len());
    assert!(available(d) && a.len() == pattern.rows * k && b.len() == k * d, "sparse rows product of mismatched shapes");
    let words = pattern.words();
    let b = Panels::new(b, k, d);
    // Every sum starts from its bias.
    let mut out = bias.repeat(pattern.rows);
    out.par_chunks_mut(ROW_CHUNK * d).enumerate().for_each(|(c, out)| {
        let first = c * ROW_CHUNK;
        let rows = out.len() / d;
        // SAFETY: AVX2 and FMA (`available`), AVX-512 where `isa` says so;
        // the chunk's rows of `a` and of the pattern, `b` and `out` have the
        // sizes the kernel reads.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let (a, bits) = (&a[first * k..(first + rows) * k], &pattern.bits[first * words..(first + rows) * words]);
            match crate::isa::avx512() {
                true => wide::rows_product(a, bits, k, b.values(), d, out),
                false => avx::rows_product(a, bits, k, b.values(), d, out),
            }
        }
    });
    out
}

/// `a^T (k, rows) @ g (rows, d)` for a row-major `a (rows, k)` with the
/// pattern `transposed` of `a^T` ([`Pattern::transposed`]): each output
/// value sums the products of `a`'s non-zero entries in row order. Needs
/// [`available`]`(d)`.
pub fn columns_product(a: &[f32], transposed: &Pattern, g: &[f32], d: usize) -> Vec<f32> {
    let (k, rows) = (transposed.rows, transposed.width);
    assert!(available(d) && a.len() == rows * k && g.len() == rows * d, "sparse columns product of mismatched shapes");
    let words = transposed.words();
    let g = Panels::new(g, rows, d);
    let mut out = vec![0.0; k * d];
    out.par_chunks_mut(COLUMN_CHUNK * d).enumerate().for_each(|(c, out)| {
        let first = c * COLUMN_CHUNK;
        let columns = out.len() / d;
        // SAFETY: as in `rows_product`; every row `t < rows` and column
        // `first + j < k` read lies inside `a`, `g` and the pattern.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let bits = &transposed.bits[first * words..(first + columns) * words];
            match crate::isa::avx512() {
                true => wide::columns_product(a, k, first, bits, words, g.values(), d, out),
                false => avx::columns_product(a, k, first, bits, words, g.values(), d, out),
            }
        }
    });
    out
}

/// The row-major transpose of a `(rows, columns)` matrix, 16 of its
/// columns per parallel task.
pub fn transpose(m: &[f32], rows: usize, columns: usize) -> Vec<f32> {
    let mut out = vec![0.0; m.len()];
    if rows > 0 {
        out.par_chunks_mut(16 * rows).enumerate().for_each(|(b, out)| {
            for (i, row) in out.chunks_exact_mut(rows).enumerate() {
                row.iter_mut().enumerate().for_each(|(r, v)| *v = m[r * columns + b * 16 + i]);
            }
        });
    }
    out
}

/// The AVX2 + FMA products: eight 8-lane accumulators per 64 output
/// columns, each value one running sum in ascending order.
#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{SPAN, TILE};
    use std::arch::x86_64::*;

    type Acc = [__m256; TILE / 8];

    #[inline(always)]
    unsafe fn load(p: *const f32) -> Acc {
        std::array::from_fn(|i| _mm256_loadu_ps(p.add(8 * i)))
    }

    #[inline(always)]
    unsafe fn store(acc: &Acc, p: *mut f32) {
        for (i, v) in acc.iter().enumerate() {
            _mm256_storeu_ps(p.add(8 * i), *v);
        }
    }

    /// Adds to `acc`, for every set bit `j` of `set` in ascending order,
    /// `src[j]` times the row at `panel + TILE j`.
    #[inline(always)]
    unsafe fn add_set_bits(acc: &mut Acc, mut set: u128, src: *const f32, panel: *const f32) {
        while set != 0 {
            let j = set.trailing_zeros() as usize;
            set &= set - 1;
            let v = _mm256_set1_ps(*src.add(j));
            let row = panel.add(j * TILE);
            for (q, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(v, _mm256_loadu_ps(row.add(8 * q)), *a);
            }
        }
    }

    /// [`super::row_bits`] eight values per comparison.
    #[target_feature(enable = "avx2")]
    pub unsafe fn row_bits(row: &[f32], bits: &mut [u64]) {
        for (word, values) in bits.iter_mut().zip(row.chunks(64)) {
            *word = match values.len() {
                64 => (0..8).fold(0, |w, i| {
                    let v = _mm256_loadu_ps(values.as_ptr().add(8 * i));
                    let set = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(v, _mm256_setzero_ps())) as u32 as u64;
                    w | (set << (8 * i))
                }),
                _ => super::word_bits(values),
            };
        }
    }

    /// Copies the piece of `a` (row-major, `k` columns) that span `w` of a
    /// columns product reads, its rows `64 w..` (at most [`SPAN`]) and
    /// `columns` columns from `first`, transposed into `block`: column `c`
    /// at `block[c SPAN..]`, so that each column is contiguous (read in
    /// place, every value lay 8 KB from the last and missed L1).
    #[inline(always)]
    pub unsafe fn transpose_span(a: &[f32], k: usize, first: usize, w: usize, columns: usize, block: &mut [f32]) {
        let rows = a.len() / k;
        let (span_rows, src) = ((rows - w * 64).min(SPAN), a.as_ptr().add(w * 64 * k + first));
        for t in (0..span_rows).step_by(8) {
            for c in (0..columns).step_by(8) {
                match t + 8 <= span_rows && c + 8 <= columns {
                    true => transpose8(src.add(t * k + c), k, block.as_mut_ptr().add(c * SPAN + t), SPAN),
                    false => (t..(t + 8).min(span_rows)).for_each(|t| (c..(c + 8).min(columns)).for_each(|c| block[c * SPAN + t] = *src.add(t * k + c))),
                }
            }
        }
    }

    /// Writes the transpose of the 8 x 8 block at `src` (rows `stride`
    /// apart) to `dst` (rows `dst_stride` apart).
    #[inline(always)]
    pub unsafe fn transpose8(src: *const f32, stride: usize, dst: *mut f32, dst_stride: usize) {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * stride)));
        let lo = [0, 2, 4, 6].map(|i| _mm256_unpacklo_ps(r[i], r[i + 1]));
        let hi = [0, 2, 4, 6].map(|i| _mm256_unpackhi_ps(r[i], r[i + 1]));
        let q = [
            _mm256_shuffle_ps::<0x44>(lo[0], lo[1]),
            _mm256_shuffle_ps::<0xEE>(lo[0], lo[1]),
            _mm256_shuffle_ps::<0x44>(hi[0], hi[1]),
            _mm256_shuffle_ps::<0xEE>(hi[0], hi[1]),
            _mm256_shuffle_ps::<0x44>(lo[2], lo[3]),
            _mm256_shuffle_ps::<0xEE>(lo[2], lo[3]),
            _mm256_shuffle_ps::<0x44>(hi[2], hi[3]),
            _mm256_shuffle_ps::<0xEE>(hi[2], hi[3]),
        ];
        for i in 0..4 {
            _mm256_storeu_ps(dst.add(i * dst_stride), _mm256_permute2f128_ps::<0x20>(q[i], q[i + 4]));
            _mm256_storeu_ps(dst.add((i + 4) * dst_stride), _mm256_permute2f128_ps::<0x31>(q[i], q[i + 4]));
        }
    }

    /// The bits of one span of a pattern row: words `w` and `w + 1` (if
    /// the row has it).
    #[inline(always)]
    pub unsafe fn span_bits(row: *const u64, w: usize, words: usize) -> u128 {
        let word = |i: usize| if i < words { *row.add(i) } else { 0 };
        (word(w) as u128) | ((word(w + 1) as u128) << 64)
    }

    /// One chunk of [`super::rows_product`], added onto the `d`-wide rows
    /// of `out` (where the sums start): span by span of 128 rows of `b`,
    /// 64 output columns at a time (that panel, 32 KB, in L1 while every
    /// row of the chunk passes).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn rows_product(a: &[f32], bits: &[u64], k: usize, b: &[f32], d: usize, out: &mut [f32]) {
        let words = k.div_ceil(64);
        let rows = out.len() / d;
        for (span, w) in (0..words).step_by(2).enumerate() {
            for g in (0..d).step_by(TILE) {
                let panel = b.as_ptr().add(span * SPAN * d + g * SPAN);
                for t in 0..rows {
                    let dst = out.as_mut_ptr().add(t * d + g);
                    let mut acc = load(dst);
                    add_set_bits(&mut acc, span_bits(bits.as_ptr().add(t * words), w, words), a.as_ptr().add(t * k + w * 64), panel);
                    store(&acc, dst);
                }
            }
        }
    }

    /// One chunk of [`super::columns_product`]: the output rows for `a`'s
    /// (at most 64) columns `first..`, span by span of 128 rows of `a`,
    /// whose piece is first copied transposed so that each column is
    /// contiguous (read in place, every value lay 8 KB from the last and
    /// missed L1), and the span's 64 columns of `g` at a time, 32 KB.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn columns_product(a: &[f32], k: usize, first: usize, bits: &[u64], words: usize, g: &[f32], d: usize, out: &mut [f32]) {
        let columns = out.len() / d;
        let mut block = vec![0.0f32; 64 * SPAN];
        for (span, w) in (0..words).step_by(2).enumerate() {
            super::avx::transpose_span(a, k, first, w, columns, &mut block);
            for grp in (0..d).step_by(TILE) {
                let panel = g.as_ptr().add(span * SPAN * d + grp * SPAN);
                for c in 0..columns {
                    let dst = out.as_mut_ptr().add(c * d + grp);
                    let mut acc = load(dst);
                    add_set_bits(&mut acc, span_bits(bits.as_ptr().add(c * words), w, words), block.as_ptr().add(c * SPAN), panel);
                    store(&acc, dst);
                }
            }
        }
    }
}

/// The AVX-512 products: each value the same sum in the same order as on
/// the AVX2 path (vectorised across output columns), so the same bits,
/// with 128 output columns per tile where two 64-column panels remain
/// (eight 16-lane accumulators, as the AVX2 path keeps eight 8-lane ones:
/// with four, each non-zero entry's fused multiply-adds waited on the
/// last entry's, and the products ran at half the FMA units' rate). A
/// span's two panels are 64 KB, more than L1, so each of its two words
/// of rows passes on its own (32 KB), the first before the second, as the
/// sums run.
#[cfg(target_arch = "x86_64")]
mod wide {
    use super::avx::span_bits;
    use super::{SPAN, TILE};
    use std::arch::x86_64::*;

    /// The accumulators of `P` panels' 64 columns.
    type Acc<const P: usize> = [[__m512; TILE / 16]; P];

    /// Adds to the `P` panels' columns at `dst`, for every set bit `j` of
    /// `set` in ascending order, `src[j]` times row `j` of each panel
    /// (panels [`SPAN`] rows apart from `panel`). One word of bits: a
    /// `u128` took ten scalar instructions per entry to step through,
    /// which compete with the fused multiply-adds for their ports.
    #[inline(always)]
    unsafe fn add_tile<const P: usize>(mut set: u64, src: *const f32, panel: *const f32, dst: *mut f32) {
        if set == 0 {
            return;
        }
        let mut acc: Acc<P> = std::array::from_fn(|p| std::array::from_fn(|q| _mm512_loadu_ps(dst.add(p * TILE + 16 * q))));
        while set != 0 {
            let j = set.trailing_zeros() as usize;
            set &= set - 1;
            let v = _mm512_set1_ps(*src.add(j));
            for (p, acc) in acc.iter_mut().enumerate() {
                let row = panel.add(p * SPAN * TILE + j * TILE);
                for (q, a) in acc.iter_mut().enumerate() {
                    *a = _mm512_fmadd_ps(v, _mm512_loadu_ps(row.add(16 * q)), *a);
                }
            }
        }
        for (p, acc) in acc.iter().enumerate() {
            acc.iter().enumerate().for_each(|(q, a)| _mm512_storeu_ps(dst.add(p * TILE + 16 * q), *a));
        }
    }

    /// For every tile of columns of a span (two panels where two remain,
    /// else one), word by word: `each(bits, word, i, tile)` for the
    /// `items` (rows or columns of the product), `bits(i)` giving item
    /// `i`'s span bits, `bits` the set bits of its word `word` (0 or 1) and
    /// `tile` the tile's first column and panel count.
    #[inline(always)]
    unsafe fn tiles(d: usize, items: usize, bits: impl Fn(usize) -> u128, mut each: impl FnMut(u64, usize, usize, (usize, usize))) {
        for word in 0..2 {
            let mut g = 0;
            while g < d {
                let panels = if g + 2 * TILE <= d { 2 } else { 1 };
                (0..items).for_each(|i| each((bits(i) >> (64 * word)) as u64, word, i, (g, panels)));
                g += panels * TILE;
            }
        }
    }

    /// Rows ahead whose span of `a` [`rows_product`] asks the cache for.
    const PREFETCH: usize = 2;

    /// Asks the cache for the `len` values of `a` from `at` if they lie
    /// inside `a`. [`rows_product`] reads `a` a span of a row at a time,
    /// rows 8 KB apart, a stride the hardware prefetcher does not follow:
    /// each span missed the caches, and only after the last row's loop had
    /// ended in a mispredicted branch. (The same for the columns product's
    /// transposed copies made no difference.)
    #[inline(always)]
    unsafe fn prefetch(a: &[f32], at: usize, len: usize) {
        if len > 0 && at + len <= a.len() {
            (0..len).step_by(16).chain([len - 1]).for_each(|i| _mm_prefetch::<_MM_HINT_T0>(a.as_ptr().add(at + i).cast()));
        }
    }

    /// One chunk of [`super::rows_product`], as the AVX2 path's.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn rows_product(a: &[f32], bits: &[u64], k: usize, b: &[f32], d: usize, out: &mut [f32]) {
        let words = k.div_ceil(64);
        let rows = out.len() / d;
        for (span, w) in (0..words).step_by(2).enumerate() {
            let row_bits = |t: usize| span_bits(bits.as_ptr().add(t * words), w, words);
            tiles(d, rows, row_bits, |set, word, t, (g, panels)| {
                let (src, dst) = (a.as_ptr().add(t * k + (w + word) * 64), out.as_mut_ptr().add(t * d + g));
                let panel = b.as_ptr().add(span * SPAN * d + g * SPAN + word * 64 * TILE);
                prefetch(a, (t + PREFETCH) * k + w * 64, SPAN.min(k - w * 64));
                match panels {
                    2 => add_tile::<2>(set, src, panel, dst),
                    _ => add_tile::<1>(set, src, panel, dst),
                }
            });
        }
    }

    /// One chunk of [`super::columns_product`], as the AVX2 path's.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn columns_product(a: &[f32], k: usize, first: usize, bits: &[u64], words: usize, g: &[f32], d: usize, out: &mut [f32]) {
        let columns = out.len() / d;
        let mut block = vec![0.0f32; 64 * SPAN];
        for (span, w) in (0..words).step_by(2).enumerate() {
            super::avx::transpose_span(a, k, first, w, columns, &mut block);
            let column_bits = |c: usize| span_bits(bits.as_ptr().add(c * words), w, words);
            tiles(d, columns, column_bits, |set, word, c, (grp, panels)| {
                let (src, dst) = (block.as_ptr().add(c * SPAN + word * 64), out.as_mut_ptr().add(c * d + grp));
                let panel = g.as_ptr().add(span * SPAN * d + grp * SPAN + word * 64 * TILE);
                match panels {
                    2 => add_tile::<2>(set, src, panel, dst),
                    _ => add_tile::<1>(set, src, panel, dst),
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with about half of them exactly zero.
    fn sparse_values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2654435761).wrapping_add(seed).rotate_left(13).wrapping_mul(0x9E37_79B9);
                if h >> 31 == 1 {
                    0.0
                } else {
                    ((h >> 8) % 1000) as f32 / 500.0 - 1.0
                }
            })
            .collect()
    }

    /// Bit `j` is set exactly where value `j` is not zero: negative zero
    /// counts as zero, NaN as not, in whole words and in a short last one.
    #[test]
    fn row_bits_mark_the_values_that_are_not_zero() {
        let mut row = sparse_values(150, 9);
        row[3] = -0.0;
        row[70] = f32::NAN;
        row[149] = f32::NAN;
        let mut bits = [0u64; 3];
        row_bits(&row, &mut bits);
        for (j, v) in row.iter().enumerate() {
            assert_eq!(bits[j / 64] >> (j % 64) & 1 == 1, *v != 0.0, "value {j}: {v}");
        }
        assert_eq!(bits[2] >> (150 - 128), 0, "bits past the row");
    }

    #[test]
    fn transposed_pattern_is_the_pattern_of_the_transpose() {
        for (rows, width) in [(3, 5), (64, 64), (130, 70), (50, 200)] {
            let m = sparse_values(rows * width, 7);
            let expected = Pattern::of(&transpose(&m, rows, width), rows);
            assert_eq!(Pattern::of(&m, width).transposed(), expected, "{rows} x {width}");
            assert!((0.3..0.7).contains(&expected.density()));
        }
    }

    #[test]
    fn pattern_set_by_row_blocks_is_the_pattern() {
        let (rows, width) = (50, 100);
        let m = sparse_values(rows * width, 3);
        let mut p = Pattern::empty(rows, width);
        let shared = p.shared();
        for (b, block) in m.chunks(7 * width).enumerate() {
            // SAFETY: the blocks are disjoint and `p` outlives the loop.
            unsafe { Pattern::set_rows(&shared, b * 7, block) };
        }
        assert_eq!(p, Pattern::of(&m, width));
    }

    /// Whatever path `isa` picks (AVX-512 on a CPU with it), both products
    /// are bit-identical to the AVX2 path's, chunk by chunk, with output
    /// widths of whole 128-column tiles and with a lone 64-column panel.
    #[test]
    fn the_path_isa_picks_gives_the_avx2_paths_bits() {
        for (rows, k, d) in [(150, 200, 128), (70, 130, 192)] {
            let (a, b, g, bias) = (sparse_values(rows * k, 5), sparse_values(k * d, 6), sparse_values(rows * d, 7), sparse_values(d, 8));
            assert_eq!(available(d), crate::isa::avx2_fma());
            if !available(d) {
                return assert!(!direct::cpu_supported(), "no direct kernels without AVX2 + FMA either");
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
            let pattern = Pattern::of(&a, k);
            let (panels, words) = (Panels::new(&b, k, d), pattern.words());
            let mut avx2 = bias.repeat(rows);
            for (c, out) in avx2.chunks_mut(ROW_CHUNK * d).enumerate() {
                let (first, n) = (c * ROW_CHUNK, out.len() / d);
                // SAFETY: AVX2 + FMA (`available`); the chunk's sizes as `rows_product` gives them.
                unsafe { avx::rows_product(&a[first * k..(first + n) * k], &pattern.bits[first * words..(first + n) * words], k, panels.values(), d, out) };
            }
            assert_eq!(bits(&rows_product(&a, &pattern, &b, &bias)), bits(&avx2), "rows product, width {d}, on {}", crate::isa::describe());
            let transposed = pattern.transposed();
            let (panels, words) = (Panels::new(&g, rows, d), transposed.words());
            let mut avx2 = vec![0.0; k * d];
            for (c, out) in avx2.chunks_mut(COLUMN_CHUNK * d).enumerate() {
                let (first, n) = (c * COLUMN_CHUNK, out.len() / d);
                // SAFETY: as above, as `columns_product` gives them.
                unsafe { avx::columns_product(&a, k, first, &transposed.bits[first * words..(first + n) * words], words, panels.values(), d, out) };
            }
            assert_eq!(bits(&columns_product(&a, &transposed, &g, d)), bits(&avx2), "columns product, width {d}");
        }
    }

    /// Against the plain products in f64, for widths and row counts that
    /// are not multiples of 64 and output rows past one chunk.
    #[test]
    fn sparse_products_are_the_products() {
        let (rows, k, d) = (200, 100, 128);
        let (a, b, g, bias) = (sparse_values(rows * k, 1), sparse_values(k * d, 2), sparse_values(rows * d, 3), sparse_values(d, 4));
        let pattern = Pattern::of(&a, k);
        assert_eq!(available(d), crate::isa::avx2_fma(), "the sparse products run exactly where the ISA allows");
        // Without AVX2 + FMA callers take the dense products (gemm): those must be the products then.
        let dense = |m: usize, n: usize, depth: usize, lhs: (&[f32], isize, isize), rhs: (&[f32], isize, isize)| {
            crate::conv::product(m, n, depth, lhs, rhs, gemm::Parallelism::None)
        };
        let out = if available(d) {
            rows_product(&a, &pattern, &b, &bias)
        } else {
            let mut y = dense(rows, d, k, (&a, k as isize, 1), (&b, d as isize, 1));
            y.iter_mut().enumerate().for_each(|(i, v)| *v += bias[i % d]);
            y
        };
        for t in 0..rows {
            for c in 0..d {
                let expected = bias[c] as f64 + (0..k).map(|j| a[t * k + j] as f64 * b[j * d + c] as f64).sum::<f64>();
                assert!((out[t * d + c] as f64 - expected).abs() < 1e-4, "row {t} column {c}");
            }
        }
        let out = if available(d) { columns_product(&a, &pattern.transposed(), &g, d) } else { dense(k, d, rows, (&a, 1, k as isize), (&g, d as isize, 1)) };
        for j in 0..k {
            for c in 0..d {
                let expected: f64 = (0..rows).map(|t| a[t * k + j] as f64 * g[t * d + c] as f64).sum();
                assert!((out[j * d + c] as f64 - expected).abs() < 1e-4, "row {j} column {c}");
            }
        }
    }
}
