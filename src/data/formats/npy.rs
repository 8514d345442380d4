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
    let npy = NpyFile::new(bytes).map_err(|e| anyhow!("not a valid .npy file: {e}"))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let order = npy.order();
    let dtype = npy.dtype().descr();
    let values = read_values(npy).map_err(|e| anyhow!("cannot read {dtype} data: {e}"))?;
    if values.len() != shape.iter().product::<usize>() {
        bail!("shape {shape:?} does not match {} values (truncated file?)", values.len());
    }
    let array = match order {
        Order::C => ArrayD::from_shape_vec(IxDyn(&shape), values),
        Order::Fortran => ArrayD::from_shape_vec(IxDyn(&shape).f(), values),
    };
    array.map_err(|e| anyhow!("bad shape {shape:?}: {e}"))
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
