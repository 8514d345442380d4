//! File formats: MAT (UTD-MHAD), NPY and numeric CSV or white-space tables
//! (MMAct, manifests, recordings).

pub mod czu;
pub mod mat;
pub mod mat_cell;
pub mod npy;
pub mod table;

use anyhow::{anyhow, bail, Result};
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use std::path::Path;

/// Reads one array file, choosing the reader by extension; `.mat` files need
/// the variable name.
pub fn read_array(path: &Path, mat_variable: Option<&str>) -> Result<ArrayD<f64>> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "mat" => {
            let var = mat_variable.ok_or_else(|| anyhow!("{}: a .mat file needs a variable name in the declaration", path.display()))?;
            let m = mat::read_mat_variable(path, var)?;
            ArrayD::from_shape_vec(IxDyn(&m.dims).f(), m.data).map_err(|e| anyhow!("{}: {e}", path.display()))
        }
        "npy" => npy::read_npy(path),
        "csv" => Ok(table::read_numeric_csv(path)?.into_dyn()),
        "txt" => Ok(table::read_numeric_table(path)?.into_dyn()),
        _ => bail!("{}: unsupported file type '.{ext}' (expected .mat, .npy, .csv or .txt)", path.display()),
    }
}
