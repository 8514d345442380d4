//! Dataset fingerprints for run identity: the declaration (everything that
//! shapes the data: modalities, preprocessing, classes, protocols) plus the
//! data itself, as the synthetic generator's version and seed or as a hash
//! of every file's name and contents.

use crate::data::Dataset;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

/// A hex SHA-256 naming the dataset's contents and declaration.
pub fn fingerprint(ds: &Dataset) -> Result<String> {
    let mut decl = ds.decl.clone();
    decl.root = Default::default(); // where the data lives does not change it
    let mut h = Sha256::new();
    h.update(serde_json::to_string(&decl)?.as_bytes());
    match &ds.decl.synthetic {
        Some(s) => h.update(format!("synthetic-utd generator {} seed {}", crate::data::synth::motion::GENERATOR_VERSION, s.seed).as_bytes()),
        None => hash_tree(&ds.decl.root, &ds.decl.root, &mut h)?,
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn hash_tree(root: &Path, dir: &Path, h: &mut Sha256) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            hash_tree(root, &path, h)?;
        } else {
            h.update(path.strip_prefix(root).unwrap_or(&path).to_string_lossy().as_bytes());
            h.update(std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?);
        }
    }
    Ok(())
}
