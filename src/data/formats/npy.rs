//! NumPy `.npy` arrays (MMAct skeletons, manifest datasets), via `npyz`.

use anyhow::{anyhow, bail, Context, Result};
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use npyz::{NpyFile, Order, WriterBuilder};
use std::path::Path;

/// Reads a numeric `.npy` file (float, integer; C or Fortran order) as f64.
pub fn read_npy(path: &Path) -> Result<ArrayD<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
    parse_npy(&bytes).with_context(|| format!("{}", path.display()))
}

/// Parses the bytes of an `.npy` file.
pub fn parse_npy(bytes: &[u8]) -> Result<ArrayD<f64>> {
    check_header(bytes)?;
    let npy = NpyFile::new(bytes).map_err(|e| anyhow!("not a valid .npy file: {e}"))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let order = npy.order();
    let dtype = npy.dtype().descr();
    let values = read_values(npy).map_err(|e| {
        let eof = e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof);
        if eof {
            anyhow!("truncated file: the header declares shape {shape:?} of {dtype} but the data ends early")
        } else {
            anyhow!("cannot read {dtype} data: {e}")
        }
    })?;
    if values.len() != shape.iter().product::<usize>() {
        bail!("shape {shape:?} does not match {} values (truncated file?)", values.len());
    }
    let array = match order {
        Order::C => ArrayD::from_shape_vec(IxDyn(&shape), values),
        Order::Fortran => ArrayD::from_shape_vec(IxDyn(&shape).f(), values),
    };
    array.map_err(|e| anyhow!("bad shape {shape:?}: {e}"))
}

/// Checks the header before `npyz` parses it: its header parser takes
/// exponential time on nested brackets (found by fuzzing: a 383-byte file
/// ran for minutes) and it multiplies the shape without overflow checks.
/// Plain numeric arrays, the only ones we read, have one flat dictionary.
fn check_header(bytes: &[u8]) -> Result<()> {
    if bytes.len() < 10 || !bytes.starts_with(b"\x93NUMPY") {
        bail!("not a valid .npy file: missing the \\x93NUMPY magic");
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => bail!("not a valid .npy file: unsupported format version {v}"),
    };
    let Some(header) = bytes.get(start..start.saturating_add(len)) else {
        bail!("truncated .npy file: the header needs {len} bytes, the file has {}", bytes.len() - start.min(bytes.len()));
    };
    let header = String::from_utf8_lossy(header);
    let count = |c: char| header.chars().filter(|&x| x == c).count();
    if count('{') != 1 || count('}') != 1 || count('(') > 1 || count(')') > 1 || count('[') > 0 {
        bail!("unsupported .npy header (structured dtypes or a malformed dictionary): {:?}", header.trim_end());
    }
    if let Some(shape) = header.split_once("'shape'").and_then(|(_, r)| r.split_once('(')).and_then(|(_, r)| r.split_once(')')).map(|(s, _)| s) {
        let dims: Vec<&str> = shape.split(',').map(str::trim).filter(|d| !d.is_empty()).collect();
        let mut total: u64 = 1;
        for d in &dims {
            let d: u64 = d.parse().map_err(|_| anyhow!("bad .npy shape ({shape})"))?;
            total = total
                .checked_mul(d)
                .filter(|&t| t <= isize::MAX as u64)
                .ok_or_else(|| anyhow!("the .npy shape ({shape}) holds more elements than can exist"))?;
        }
    }
    Ok(())
}

fn read_values(npy: NpyFile<&[u8]>) -> Result<Vec<f64>> {
    let npy = match npy.try_data::<f64>() {
        Ok(r) => return Ok(r.collect::<std::io::Result<Vec<_>>>()?),
        Err(npy) => npy,
    };
    let npy = match npy.try_data::<f32>() {
        Ok(r) => return Ok(r.collect::<std::io::Result<Vec<_>>>()?.into_iter().map(f64::from).collect()),
        Err(npy) => npy,
    };
    let npy = match npy.try_data::<i64>() {
        Ok(r) => return Ok(r.collect::<std::io::Result<Vec<_>>>()?.into_iter().map(|v| v as f64).collect()),
        Err(npy) => npy,
    };
    match npy.try_data::<i32>() {
        Ok(r) => Ok(r.collect::<std::io::Result<Vec<_>>>()?.into_iter().map(f64::from).collect()),
        Err(_) => bail!("unsupported dtype (expected float64, float32, int64 or int32)"),
    }
}

/// Writes a C-order float32 `.npy` file (fixtures, manifest exports).
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let mut bytes = Vec::new();
    {
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut w = npyz::WriteOptions::new().default_dtype().shape(&shape).writer(&mut bytes).begin_nd()?;
        w.extend(data.iter().copied())?;
        w.finish()?;
    }
    crate::fsutil::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_f32() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
        write_npy_f32(&p, &[2, 3, 4], &data).unwrap();
        let a = read_npy(&p).unwrap();
        assert_eq!(a.shape(), &[2, 3, 4]);
        assert_eq!(a[[1, 2, 3]], 23.0);
        assert_eq!(a[[0, 1, 0]], 4.0);
    }

    #[test]
    fn truncated_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy_f32(&p, &[10, 10], &[1.0; 100]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert!(parse_npy(&bytes[..bytes.len() - 9]).is_err());
        assert!(parse_npy(b"garbage").is_err());
    }
}
