//! Method declarations: what a method trains, with which encoders,
//! augmentations, loss switches and schedule. A new baseline is a new YAML.

use crate::data::declaration::DatasetDecl;
use crate::data::transforms::TransformStep;
use crate::models::{EncoderConfig, ProjectionConfig};
pub use crate::training::schedule::ScheduleConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A method declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodConfig {
    pub name: String,
    /// Which method trains it: a key of [`super::registry`] (`supervised`,
    /// `simclr`, `cmc`, `cmkm`, `vicreg`, `barlow_twins`).
    pub kind: String,
    /// Dataset modalities it trains on, in order (CMC's modality 1 and 2).
    pub modalities: Vec<String>,
    /// Encoder per modality.
    pub encoders: BTreeMap<String, EncoderConfig>,
    /// Training-time augmentation pipeline per modality (none if absent).
    #[serde(default)]
    pub augmentations: BTreeMap<String, Vec<TransformStep>>,
    /// SSL projection head.
    #[serde(default)]
    pub projection: ProjectionConfig,
    /// The loss settings, as the method's kind reads them (e.g. SimCLR's and
    /// CMC's temperature, CMC-CMKM's switches, VICReg's weights); each kind
    /// rejects the keys it does not read.
    #[serde(default)]
    pub loss: Option<serde_yaml::Value>,
    /// CMC-CMKM: the unimodal (SimCLR) run folder of each modality, whose
    /// frozen encoder mines positives (relative paths from the method file's folder).
    #[serde(default)]
    pub pretrained: BTreeMap<String, PathBuf>,
    pub schedule: ScheduleConfig,
}

impl MethodConfig {
    /// Reads a method file as written (no kind-specific checks: see
    /// [`MethodConfig::from_file`]); relative `pretrained` paths are resolved
    /// against the file's folder.
    pub fn read_file(path: &Path) -> Result<Self> {
        Self::read_files(&MethodFiles::read(path)?)
    }

    /// [`MethodConfig::read_file`] of files already read: one file is parsed
    /// from its text (errors with its lines), a chain from the merged tree.
    pub fn read_files(files: &MethodFiles) -> Result<Self> {
        let (path, text) = &files.files[0];
        let mut m: MethodConfig = match files.files.len() {
            1 => crate::config::parse_yaml_of(text, path)?,
            _ => files.parse()?,
        };
        let base = path.parent().unwrap_or(Path::new(""));
        for p in m.pretrained.values_mut() {
            if p.is_relative() {
                *p = crate::fsutil::normalize(&base.join(&*p));
            }
        }
        Ok(m)
    }

    /// The checks every kind shares: modalities against the dataset,
    /// encoders and augmentations per modality, the schedule.
    pub fn validate_common(&self, dataset: &DatasetDecl) -> Result<()> {
        for m in &self.modalities {
            dataset.modality(m)?;
            if !self.encoders.contains_key(m) {
                bail!("method '{}': no encoder for modality '{m}'", self.name);
            }
        }
        let known = |k: &String| self.modalities.contains(k);
        if let Some(k) = self.encoders.keys().chain(self.augmentations.keys()).chain(self.pretrained.keys()).find(|k| !known(k)) {
            bail!("method '{}': '{k}' is not one of its modalities {:?}", self.name, self.modalities);
        }
        let s = &self.schedule;
        if s.epochs == 0 || s.batch_size < 2 || !(s.lr > 0.0) || !(0.0 < s.plateau_factor && s.plateau_factor < 1.0) {
            bail!("method '{}': need epochs >= 1, batch_size >= 2, lr > 0 and 0 < plateau_factor < 1", self.name);
        }
        if let Some(c) = s.grad_clip_norm.filter(|c| !(*c > 0.0 && c.is_finite())) {
            bail!("method '{}': schedule.grad_clip_norm must be a positive number, got {c}", self.name);
        }
        for (m, steps) in &self.augmentations {
            let decl = dataset.modality(m)?;
            for step in steps {
                step.transform.check(&decl.shape()).with_context(|| format!("method '{}', augmentation of '{m}'", self.name))?;
            }
        }
        Ok(())
    }

    /// The augmentation pipeline of a modality (empty when none).
    pub fn augmentation(&self, modality: &str) -> &[TransformStep] {
        self.augmentations.get(modality).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The key by which a method file extends another: `extends: cmc.yaml`
/// (relative to the file) takes that file and overrides it key by key.
pub const EXTENDS: &str = "extends";

/// A method file and the files it extends, merged: mappings key by key
/// (a null value removes the key), anything else (lists, numbers) replaced
/// whole by the extending file's. `pretrained` paths stay relative to the
/// file that writes them.
pub struct MethodFiles {
    /// The merged YAML tree, without `extends`.
    pub tree: serde_yaml::Value,
    /// The file itself first, then the one it extends, and so on.
    pub files: Vec<(PathBuf, String)>,
}

impl MethodFiles {
    /// Reads `path` and, through `extends`, every file below it.
    pub fn read(path: &Path) -> Result<Self> {
        let mut files: Vec<(PathBuf, String)> = vec![];
        let mut layers: Vec<serde_yaml::Value> = vec![];
        let mut next = Some(path.to_path_buf());
        while let Some(file) = next.take() {
            if let Some(k) = files.iter().position(|(f, _)| crate::fsutil::normalize(f) == crate::fsutil::normalize(&file)) {
                let cycle: Vec<String> = files[k..].iter().map(|(f, _)| f.display().to_string()).collect();
                bail!("{}: `extends` goes round in a circle: {} -> {}", path.display(), cycle.join(" -> "), file.display());
            }
            let text = std::fs::read_to_string(&file).map_err(|e| match files.last() {
                Some((child, _)) => anyhow::anyhow!("{}: `extends: {}`: cannot read {}: {e}", child.display(), file.display(), file.display()),
                None => anyhow::anyhow!("{}: cannot read file: {e}", file.display()),
            })?;
            let mut layer: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}", crate::config::describe(&e, Some(&file))))?;
            let base = file.parent().unwrap_or(Path::new("")).to_path_buf();
            if let Some(map) = layer.as_mapping_mut() {
                if let Some(parent) = map.remove(EXTENDS) {
                    let Some(parent) = parent.as_str() else {
                        bail!("{}: `extends` names one method file, e.g. `extends: cmc.yaml`", file.display());
                    };
                    next = Some(crate::fsutil::normalize(&base.join(parent)));
                }
                // `pretrained` paths are relative to the file that writes them.
                if let Some(serde_yaml::Value::Mapping(pre)) = map.get_mut("pretrained") {
                    for (_, v) in pre.iter_mut() {
                        if let Some(p) = v.as_str().filter(|p| Path::new(p).is_relative()) {
                            *v = crate::fsutil::normalize(&base.join(p)).display().to_string().into();
                        }
                    }
                }
            }
            files.push((file, text));
            layers.push(layer);
        }
        Ok(MethodFiles { tree: merge_layers(layers), files })
    }

    /// A method declaration from embedded texts (`cmkm bench`'s method
    /// files): the file first, then each file it extends, merged as
    /// [`MethodFiles::read`] merges them from disk.
    pub fn parse_embedded(texts: &[&str]) -> Result<MethodConfig> {
        let mut layers = vec![];
        for text in texts {
            let mut layer: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| anyhow::anyhow!("{}", crate::config::describe(&e, None)))?;
            if let Some(map) = layer.as_mapping_mut() {
                map.remove(EXTENDS);
            }
            layers.push(layer);
        }
        serde_yaml::from_value(merge_layers(layers)).map_err(|e| anyhow::anyhow!("{}", crate::config::describe(&e, None)))
    }

    /// The merged tree as a method declaration; an unknown key is named
    /// with the file and line that write it.
    pub fn parse(&self) -> Result<MethodConfig> {
        serde_yaml::from_value(self.tree.clone()).map_err(|e| {
            let message = crate::config::describe(&e, None);
            let key = message.split('`').nth(1).unwrap_or_default();
            let chain: Vec<String> = self.files.iter().map(|(f, _)| f.display().to_string()).collect();
            let at = self.files.iter().find_map(|(f, text)| crate::config::value_line(text, &[], key).map(|l| format!("{} line {l}", f.display())));
            match at {
                Some(at) if !key.is_empty() => anyhow::anyhow!("{at}: {message} (method files: {})", chain.join(" extending ")),
                _ => anyhow::anyhow!("{}: {message} (method files: {})", self.files[0].0.display(), chain.join(" extending ")),
            }
        })
    }
}

/// The layers (a file first, then what it extends) merged from the base up.
fn merge_layers(mut layers: Vec<serde_yaml::Value>) -> serde_yaml::Value {
    let mut tree = layers.pop().unwrap_or(serde_yaml::Value::Null);
    while let Some(layer) = layers.pop() {
        merge(&mut tree, layer);
    }
    tree
}

/// Merges `over` into `base`: mappings key by key (null removes the key),
/// anything else replaced whole.
fn merge(base: &mut serde_yaml::Value, over: serde_yaml::Value) {
    match (base, over) {
        (serde_yaml::Value::Mapping(b), serde_yaml::Value::Mapping(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(&k);
                } else if let Some(slot) = b.get_mut(&k) {
                    merge(slot, v);
                } else {
                    b.insert(k, v);
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "name: base\nkind: cmc\nmodalities: [a, b]\nencoders:\n  a: {type: cnn_transformer}\n  b: {type: co_occurrence}\naugmentations:\n  a: [{name: jitter, sigma: 1.0}]\n  b: [{name: jitter, sigma: 0.1}]\nloss: {temperature: 0.1}\nschedule: {epochs: 100, batch_size: 64, lr: 0.001, plateau_patience: 20}\n";

    fn files(child: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("base.yaml"), BASE).unwrap();
        std::fs::write(dir.path().join("sub/child.yaml"), child).unwrap();
        let path = dir.path().join("sub/child.yaml");
        (dir, path)
    }

    #[test]
    fn an_extending_file_overrides_key_by_key() {
        let child = "extends: ../base.yaml\nname: child\nkind: cmkm\naugmentations:\n  b: null\nloss: {mining_k: 2}\nschedule: {batch_size: 32}\npretrained: {a: runs/a}\n";
        let (dir, path) = files(child);
        let m = MethodConfig::read_file(&path).unwrap();
        assert_eq!((m.name.as_str(), m.kind.as_str()), ("child", "cmkm"));
        assert_eq!(m.augmentations.keys().collect::<Vec<_>>(), ["a"], "null removes a key");
        assert_eq!(serde_json::to_string(&m.loss).unwrap(), r#"{"temperature":0.1,"mining_k":2}"#, "mappings merge in the base's order");
        assert_eq!((m.schedule.batch_size, m.schedule.epochs), (32, 100));
        assert_eq!(m.pretrained["a"], crate::fsutil::normalize(&dir.path().join("sub/runs/a")), "relative to the file that writes it");
        // A list is replaced whole.
        std::fs::write(&path, "extends: ../base.yaml\nmodalities: [a]\nencoders: {b: null}\naugmentations: {a: [{name: jitter, sigma: 2.0}], b: null}\n")
            .unwrap();
        let m = MethodConfig::read_file(&path).unwrap();
        assert_eq!(m.modalities, ["a"]);
        assert_eq!(m.augmentations["a"].len(), 1);
    }

    #[test]
    fn extends_errors_name_the_files_and_the_key() {
        let (dir, path) = files("extends: ../nope.yaml\nname: child\n");
        let err = format!("{:#}", MethodConfig::read_file(&path).unwrap_err());
        assert!(err.contains("child.yaml") && err.contains("nope.yaml"), "{err}");
        std::fs::write(&path, "extends: ../base.yaml\nname: child\nlosss: {temperature: 0.2}\n").unwrap();
        let err = format!("{:#}", MethodConfig::read_file(&path).unwrap_err());
        assert!(err.contains("losss") && err.contains("child.yaml line 3") && err.contains("base.yaml"), "{err}");
        std::fs::write(dir.path().join("base.yaml"), format!("extends: sub/child.yaml\n{BASE}")).unwrap();
        let err = format!("{:#}", MethodConfig::read_file(&path).unwrap_err());
        assert!(err.contains("circle"), "{err}");
    }
}
