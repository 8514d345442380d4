//! Model checkpoints: SafeTensors files, written atomically.

use anyhow::{anyhow, Context, Result};
use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use std::path::Path;

/// Saves `model`'s parameters (and batch-norm statistics) to `path`.
pub fn save<M: Module>(model: &M, path: &Path) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create directory", dir.display()))?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("checkpoint")));
    let mut store = SafetensorsStore::from_file(&tmp).overwrite(true);
    model.save_into(&mut store).map_err(|e| anyhow!("{}: cannot write checkpoint: {e:?}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot move the checkpoint into place", path.display()))
}

/// Loads parameters from `path` into `model`, which must have the same
/// architecture (the error says which tensor does not fit).
pub fn load<M: Module>(mut model: M, path: &Path) -> Result<M> {
    if !path.is_file() {
        return Err(anyhow!("{}: checkpoint not found", path.display()));
    }
    let mut store = SafetensorsStore::from_file(path);
    model.load_from(&mut store).map_err(|e| anyhow!("{}: checkpoint does not fit the model: {e:?}", path.display()))?;
    Ok(model)
}
