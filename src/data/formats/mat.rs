//! MATLAB level-5 MAT files: the container of the UTD-MHAD release.
//!
//! Reading goes through the `matfile` crate (numeric arrays, compressed or
//! not). Writing is ours: the only maintained Rust writer we found
//! (`matrw` 0.1) discards I/O errors, and the synthetic generator needs just
//! one kind of element, a real double array, optionally inside a zlib
//! `miCOMPRESSED` element. `scipy.io.loadmat` reads what we write.

use anyhow::{anyhow, bail, Context, Result};
use flate2::{write::ZlibEncoder, Compression};
use std::io::{Read, Write};
use std::path::Path;

/// A numeric MAT variable converted to f64, in MATLAB's column-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct MatArray {
    /// MATLAB dimensions, e.g. `[20, 3, T]` for `d_skel`.
    pub dims: Vec<usize>,
    /// Values in column-major order (first index fastest).
    pub data: Vec<f64>,
}

/// Reads variable `name` from the MAT file at `path`.
///
/// Errors name the file and say what is wrong: unreadable, not a level-5 MAT
/// file, variable missing (listing those present), complex or empty data.
pub fn read_mat_variable(path: &Path, name: &str) -> Result<MatArray> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
    parse_mat_variable(&bytes, name).with_context(|| format!("{}", path.display()))
}

/// Parses variable `name` from the bytes of a MAT file.
pub fn parse_mat_variable(bytes: &[u8], name: &str) -> Result<MatArray> {
    check_file(bytes)?;
    // The parser is third-party code fed with untrusted bytes: a panic inside
    // it must become an error for this file, not abort the whole load.
    let parsed = std::panic::catch_unwind(|| matfile::MatFile::parse(bytes))
        .map_err(|_| anyhow!("corrupt MAT file (the parser crashed on it)"))?
        .map_err(|e| anyhow!("corrupt or truncated MAT file: {e}"))?;
    let Some(array) = parsed.find_by_name(name) else {
        let present: Vec<&str> = parsed.arrays().iter().map(|a| a.name()).collect();
        bail!("variable '{name}' not found (numeric variables present: {present:?})");
    };
    let data = real_f64(array.data()).ok_or_else(|| anyhow!("variable '{name}' is complex"))?;
    let dims = array.size().clone();
    if dims.iter().product::<usize>() != data.len() {
        bail!("variable '{name}': dimensions {dims:?} do not match {} values", data.len());
    }
    if data.is_empty() {
        bail!("variable '{name}' is empty (dimensions {dims:?})");
    }
    Ok(MatArray { dims, data })
}

/// Checks the header and walks the top-level elements (see
/// [`check_elements`]).
pub(super) fn check_file(bytes: &[u8]) -> Result<()> {
    if bytes.len() < 128 {
        bail!("not a MAT file: {} bytes, shorter than the 128-byte header", bytes.len());
    }
    if !bytes.starts_with(b"MATLAB") {
        bail!("not a MATLAB level-5 MAT file (header does not start with 'MATLAB')");
    }
    check_elements(bytes)
}

/// Walks the top-level data elements, so that a truncated file or a broken
/// compressed element is reported as such (the parser would just skip it).
fn check_elements(bytes: &[u8]) -> Result<()> {
    if &bytes[126..128] != b"IM" {
        bail!("big-endian or unknown byte order (endian indicator {:?}); only little-endian files are read", &bytes[126..128]);
    }
    let mut offset = 128;
    while offset < bytes.len() {
        if bytes.len() - offset < 8 {
            bail!("truncated: {} stray bytes after the last element at byte {offset}", bytes.len() - offset);
        }
        let word = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let (data_type, size) = (word(offset), word(offset + 4) as usize);
        let end = offset + 8 + size;
        if end > bytes.len() {
            bail!("truncated: element at byte {offset} needs {size} bytes, the file has {} left", bytes.len() - offset - 8);
        }
        if data_type == MI_COMPRESSED {
            let mut inflated = Vec::new();
            flate2::read::ZlibDecoder::new(&bytes[offset + 8..end])
                .read_to_end(&mut inflated)
                .map_err(|e| anyhow!("corrupt compressed element at byte {offset}: {e}"))?;
            check_matrix_dims(&inflated).with_context(|| format!("compressed element at byte {offset}"))?;
            offset = end;
        } else {
            check_matrix_dims(&bytes[offset..end]).with_context(|| format!("element at byte {offset}"))?;
            offset = end.next_multiple_of(8);
        }
    }
    Ok(())
}

/// Rejects a matrix whose dimensions are negative or whose element count
/// overflows: `matfile` multiplies them as `i32` and would panic (debug) or
/// wrap around (release). Anything else is left to the parser.
fn check_matrix_dims(element: &[u8]) -> Result<()> {
    let word = |o: usize| element.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if word(0) != Some(MI_MATRIX) {
        return Ok(());
    }
    // Every sub-element must fit in the matrix: matfile rounds their sizes
    // up to 8 bytes in u32 and overflows on sizes near 4 GiB.
    let mut at = 8;
    // The loop's condition keeps both words inside the element.
    while let (Some(tag), Some(size)) = (word(at), word(at + 4)) {
        if tag >> 16 != 0 {
            at += 8; // small data element: tag and data in 8 bytes
            continue;
        }
        let size = size as usize;
        if size > element.len() - at - 8 {
            bail!("sub-element at byte {at} of a matrix needs {size} bytes, the matrix has {} left", element.len() - at - 8);
        }
        at += 8 + size.next_multiple_of(8);
    }
    // Array flags: an 8-byte tag and 8 bytes of data; then the dimensions.
    let Some(tag) = word(24) else { return Ok(()) };
    // A header too short for these is left to matfile's own parsing errors.
    let (size, data): (usize, usize) = match (tag >> 16, word(28)) {
        (0, Some(size)) => (size as usize, 32),
        (0, None) => return Ok(()),
        (small, _) => (small as usize, 28),
    };
    let Some(dims) = element.get(data..data.saturating_add(size.min(element.len()))) else { return Ok(()) };
    let dims: Vec<i32> = dims.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if dims.iter().any(|&d| d < 0) {
        bail!("negative array dimensions {dims:?}");
    }
    if dims.iter().try_fold(1i32, |acc, &d| acc.checked_mul(d)).is_none() {
        bail!("array dimensions {dims:?} hold more elements than a MAT array can");
    }
    Ok(())
}

fn real_f64(data: &matfile::NumericData) -> Option<Vec<f64>> {
    use matfile::NumericData as N;
    fn conv<T: Copy + Into<f64>>(real: &[T], imag: &Option<Vec<T>>) -> Option<Vec<f64>> {
        imag.is_none().then(|| real.iter().map(|&v| v.into()).collect())
    }
    match data {
        N::Double { real, imag } => conv(real, imag),
        N::Single { real, imag } => conv(real, imag),
        N::Int8 { real, imag } => conv(real, imag),
        N::UInt8 { real, imag } => conv(real, imag),
        N::Int16 { real, imag } => conv(real, imag),
        N::UInt16 { real, imag } => conv(real, imag),
        N::Int32 { real, imag } => conv(real, imag),
        N::UInt32 { real, imag } => conv(real, imag),
        N::Int64 { real, imag } => imag.is_none().then(|| real.iter().map(|&v| v as f64).collect()),
        N::UInt64 { real, imag } => imag.is_none().then(|| real.iter().map(|&v| v as f64).collect()),
    }
}

pub(super) const MI_INT8: u32 = 1;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_DOUBLE: u32 = 9;
pub(super) const MI_MATRIX: u32 = 14;
pub(super) const MI_COMPRESSED: u32 = 15;
const MX_DOUBLE_CLASS: u32 = 6;

/// Encodes a complete MAT file holding one real double array.
///
/// `data` is column-major and must hold `dims.iter().product()` values.
pub fn encode_mat_double(name: &str, dims: &[usize], data: &[f64], compress: bool) -> Result<Vec<u8>> {
    if dims.iter().product::<usize>() != data.len() {
        bail!("MAT variable '{name}': dimensions {dims:?} do not match {} values", data.len());
    }
    let mut file = header();
    let matrix = matrix_element(name, dims, data);
    if compress {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&matrix)?;
        let packed = z.finish()?;
        push_tag(&mut file, MI_COMPRESSED, packed.len());
        file.extend_from_slice(&packed);
    } else {
        file.extend_from_slice(&matrix);
    }
    Ok(file)
}

/// Writes [`encode_mat_double`]'s bytes to `path` atomically (temp file + rename).
pub fn write_mat_double(path: &Path, name: &str, dims: &[usize], data: &[f64], compress: bool) -> Result<()> {
    let bytes = encode_mat_double(name, dims, data, compress)?;
    crate::fsutil::write_atomic(path, &bytes)
}

pub(super) fn header() -> Vec<u8> {
    let mut text = format!("MATLAB 5.0 MAT-file, Platform: {}, Created by: cmkm", std::env::consts::OS).into_bytes();
    text.resize(116, b' ');
    text.extend_from_slice(&[0u8; 8]); // no subsystem data
    text.extend_from_slice(&0x0100u16.to_le_bytes());
    text.extend_from_slice(b"IM"); // little-endian indicator
    text
}

fn matrix_element(name: &str, dims: &[usize], data: &[f64]) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 + data.len() * 8);
    push_tag(&mut body, MI_UINT32, 8);
    body.extend_from_slice(&MX_DOUBLE_CLASS.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    push_tag(&mut body, MI_INT32, dims.len() * 4);
    for &d in dims {
        body.extend_from_slice(&(d as i32).to_le_bytes());
    }
    pad8(&mut body);
    push_tag(&mut body, MI_INT8, name.len());
    body.extend_from_slice(name.as_bytes());
    pad8(&mut body);
    push_tag(&mut body, MI_DOUBLE, data.len() * 8);
    for v in data {
        body.extend_from_slice(&v.to_le_bytes());
    }
    let mut element = Vec::with_capacity(body.len() + 8);
    push_tag(&mut element, MI_MATRIX, body.len());
    element.extend_from_slice(&body);
    element
}

fn push_tag(buf: &mut Vec<u8>, data_type: u32, bytes: usize) {
    buf.extend_from_slice(&data_type.to_le_bytes());
    buf.extend_from_slice(&(bytes as u32).to_le_bytes());
}

fn pad8(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(8) {
        buf.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<usize>, Vec<f64>) {
        let dims = vec![4, 3, 5];
        let data = (0..60).map(|i| i as f64 * 0.5 - 3.0).collect();
        (dims, data)
    }

    #[test]
    fn round_trips_uncompressed_and_compressed() {
        let (dims, data) = sample();
        for compress in [false, true] {
            let bytes = encode_mat_double("d_skel", &dims, &data, compress).unwrap();
            let back = parse_mat_variable(&bytes, "d_skel").unwrap();
            assert_eq!(back, MatArray { dims: dims.clone(), data: data.clone() });
        }
    }

    #[test]
    fn compressed_file_is_smaller_for_redundant_data() {
        let data = vec![1.0; 6000];
        let plain = encode_mat_double("d_iner", &[1000, 6], &data, false).unwrap();
        let packed = encode_mat_double("d_iner", &[1000, 6], &data, true).unwrap();
        assert!(packed.len() < plain.len() / 10);
        assert_eq!(&packed[128..132], &MI_COMPRESSED.to_le_bytes());
    }

    #[test]
    fn missing_variable_lists_present_ones() {
        let (dims, data) = sample();
        let bytes = encode_mat_double("d_depth", &dims, &data, false).unwrap();
        let err = parse_mat_variable(&bytes, "d_skel").unwrap_err().to_string();
        assert!(err.contains("'d_skel' not found") && err.contains("d_depth"), "{err}");
    }

    #[test]
    fn truncated_and_garbage_files_are_errors() {
        let (dims, data) = sample();
        for compress in [false, true] {
            let bytes = encode_mat_double("d_skel", &dims, &data, compress).unwrap();
            for cut in [10, 128, 140, bytes.len() / 2, bytes.len() - 7] {
                let err = parse_mat_variable(&bytes[..cut], "d_skel").unwrap_err().to_string();
                assert!(cut == 128 || err.contains("truncated") || err.contains("not a MAT"), "cut at {cut}: {err}");
            }
        }
        assert!(parse_mat_variable(&[0u8; 300], "x").unwrap_err().to_string().contains("not a MATLAB"));
    }
}
