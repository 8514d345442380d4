//! Cell arrays in level-5 MAT files, which the `matfile` crate skips: CZU-MHAD
//! keeps its ten wearable sensors in one cell (`sensor`, 1 x 10, each cell a
//! T_i x 7 double array). The cell's structure is walked here; each cell's
//! numeric array is handed to `matfile` as a one-variable file of its own,
//! so the numeric types and checks are the ones every other file gets.

use crate::data::formats::mat::{self, MatArray, MI_COMPRESSED, MI_MATRIX};
use anyhow::{anyhow, bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// MATLAB's class code of a cell array.
const MX_CELL_CLASS: u32 = 1;

/// Reads the numeric arrays in the cell variable `name` of the MAT file at
/// `path`, in MATLAB's (column-major) cell order.
pub fn read_mat_cell(path: &Path, name: &str) -> Result<Vec<MatArray>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
    parse_mat_cell(&bytes, name).with_context(|| format!("{}", path.display()))
}

/// Parses the cell variable `name` from the bytes of a MAT file.
pub fn parse_mat_cell(bytes: &[u8], name: &str) -> Result<Vec<MatArray>> {
    mat::check_file(bytes)?;
    let mut offset = 128;
    let mut present = vec![];
    while offset + 8 <= bytes.len() {
        let (kind, body, next) = element(bytes, offset)?;
        let inflated;
        let matrix = match kind {
            MI_COMPRESSED => {
                let mut out = Vec::new();
                flate2::read::ZlibDecoder::new(body).read_to_end(&mut out).map_err(|e| anyhow!("corrupt compressed element at byte {offset}: {e}"))?;
                inflated = out;
                let (inner, inner_body, _) = element(&inflated, 0)?;
                (inner == MI_MATRIX).then_some(inner_body)
            }
            MI_MATRIX => Some(body),
            _ => None,
        };
        if let Some(m) = matrix {
            let header = MatrixHeader::parse(m)?;
            if header.name == name {
                return cells(m, &header).with_context(|| format!("variable '{name}'"));
            }
            present.push(header.name);
        }
        offset = next;
    }
    bail!("variable '{name}' not found (variables present: {present:?})")
}

/// An element at `offset`: its type, its data, and where the next one starts
/// (the small format packs up to 4 bytes of data into the tag).
fn element(bytes: &[u8], offset: usize) -> Result<(u32, &[u8], usize)> {
    let word = |o: usize| bytes.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let (Some(first), Some(second)) = (word(offset), word(offset + 4)) else {
        bail!("truncated: no complete element tag at byte {offset}");
    };
    if first >> 16 != 0 {
        let size = (first >> 16) as usize;
        if size > 4 {
            bail!("malformed small element at byte {offset}");
        }
        return Ok((first & 0xffff, &bytes[offset + 4..offset + 4 + size], offset + 8));
    }
    let size = second as usize;
    let body = bytes.get(offset + 8..offset + 8 + size).with_context(|| format!("truncated: element at byte {offset} needs {size} bytes"))?;
    let next = if first == MI_COMPRESSED { offset + 8 + size } else { offset + 8 + size.next_multiple_of(8) };
    Ok((first, body, next))
}

/// The first three sub-elements of a matrix: flags, dimensions, name.
struct MatrixHeader {
    class: u32,
    dims: Vec<usize>,
    name: String,
    /// Where the matrix's data (or its cells) start, within its body.
    data_at: usize,
}

impl MatrixHeader {
    fn parse(body: &[u8]) -> Result<Self> {
        let (_, flags, at) = element(body, 0)?;
        let class = flags.first().map(|&b| b as u32).context("matrix without array flags")?;
        let (_, dims, at) = element(body, at)?;
        let dims: Vec<usize> = dims.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).map(|d| d.max(0) as usize).collect();
        let (_, name, data_at) = element(body, at)?;
        Ok(MatrixHeader { class, dims, name: String::from_utf8_lossy(name).into_owned(), data_at })
    }
}

/// The numeric arrays of a cell matrix's cells.
fn cells(body: &[u8], header: &MatrixHeader) -> Result<Vec<MatArray>> {
    if header.class != MX_CELL_CLASS {
        bail!("is not a cell array (MATLAB class {})", header.class);
    }
    let count: usize = header.dims.iter().product();
    let mut at = header.data_at;
    let mut out = Vec::with_capacity(count);
    for k in 0..count {
        let (kind, _, next) = element(body, at).with_context(|| format!("cell {}", k + 1))?;
        if kind != MI_MATRIX {
            bail!("cell {} is not an array (element type {kind})", k + 1);
        }
        // The cell as a one-variable MAT file named "cell", for matfile.
        let renamed = renamed_matrix(&body[at..next.min(body.len())], "cell").with_context(|| format!("cell {}", k + 1))?;
        let mut file = mat::header();
        file.extend_from_slice(&renamed);
        out.push(mat::parse_mat_variable(&file, "cell").with_context(|| format!("cell {}", k + 1))?);
        at = next;
    }
    Ok(out)
}

/// A matrix element with its (empty, in a cell) name replaced by `name`.
fn renamed_matrix(element_bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    let (_, body, _) = element(element_bytes, 0)?;
    let header = MatrixHeader::parse(body)?;
    let (_, _, flags_end) = element(body, 0)?;
    let (_, _, dims_end) = element(body, flags_end)?;
    let mut new_body = body[..dims_end].to_vec();
    new_body.extend_from_slice(&mat::MI_INT8.to_le_bytes());
    new_body.extend_from_slice(&(name.len() as u32).to_le_bytes());
    new_body.extend_from_slice(name.as_bytes());
    new_body.resize(new_body.len().next_multiple_of(8), 0);
    new_body.extend_from_slice(&body[header.data_at..]);
    let mut out = MI_MATRIX.to_le_bytes().to_vec();
    out.extend_from_slice(&(new_body.len() as u32).to_le_bytes());
    out.extend_from_slice(&new_body);
    Ok(out)
}
