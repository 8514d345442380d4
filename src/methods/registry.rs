//! The methods the harness knows, by YAML `kind`. Adding a method is one
//! file implementing [`Method`] and one entry in [`METHODS`].

use super::barlow_twins::BarlowTwins;
use super::cmc::Cmc;
use super::cmkm::Cmkm;
use super::config::MethodConfig;
use super::method::Method;
use super::simclr::Simclr;
use super::supervised::SupervisedMethod;
use super::vicreg::Vicreg;
use crate::data::declaration::DatasetDecl;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// Every registered method.
pub static METHODS: [&dyn Method; 6] = [&SupervisedMethod, &Simclr, &Cmc, &Cmkm, &Vicreg, &BarlowTwins];

/// The method registered as `kind`.
pub fn method(kind: &str) -> Result<&'static dyn Method> {
    METHODS.iter().copied().find(|m| m.kind() == kind).ok_or_else(|| anyhow!("{}", unknown_kind(kind, None)))
}

/// "unknown value `kind`[ in FILE line N]; did you mean ...? (allowed: ...)".
fn unknown_kind(kind: &str, at: Option<String>) -> String {
    let known: Vec<&str> = METHODS.iter().map(|m| m.kind()).collect();
    let mut out = format!("unknown value `{kind}` for `kind`");
    if let Some(at) = at {
        out.push_str(&format!(" in {at}"));
    }
    if let Some(best) = crate::config::closest(kind, &known) {
        out.push_str(&format!("; did you mean `{best}`?"));
    }
    let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    out + &format!(" (allowed: {})", list.join(", "))
}

impl MethodConfig {
    /// Reads a method file and checks what its kind reads: an unknown kind,
    /// or a loss key the kind does not use (`kind: cmc` with `mining_k`), is
    /// an error naming the file (and the key's line).
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_files(&super::config::MethodFiles::read(path)?)
    }

    /// [`MethodConfig::from_file`] of files already read.
    pub fn from_files(files: &super::config::MethodFiles) -> Result<Self> {
        let m = Self::read_files(files)?;
        let (path, text) = &files.files[0];
        if files.files.len() > 1 {
            // The loss is merged from several files: check it as merged, naming them.
            let chain: Vec<String> = files.files.iter().map(|(f, _)| f.display().to_string()).collect();
            let method = method(&m.kind).with_context(|| format!("{}: `kind`", chain.join(" extending ")))?;
            method.check_loss(m.loss.as_ref(), None).with_context(|| format!("{}: `loss`", chain.join(" extending ")))?;
            return Ok(m);
        }
        let Ok(method) = method(&m.kind) else {
            let line = crate::config::key_line(text, &["kind"]).map_or(String::new(), |l| format!(" line {l}"));
            bail!("{}", unknown_kind(&m.kind, Some(format!("{}{line}", path.display()))));
        };
        method.check_loss(m.loss.as_ref(), Some(path))?;
        Ok(m)
    }

    /// The method of this declaration's kind.
    pub fn method(&self) -> Result<&'static dyn Method> {
        method(&self.kind).with_context(|| format!("method '{}'", self.name))
    }

    /// Whether SSL rules apply: drop the last incomplete batch, schedule on
    /// the training loss, keep the checkpoint with the lowest validation
    /// loss. For configurations already planned (the plan fails on an
    /// unknown kind); elsewhere ask [`MethodConfig::method`].
    pub fn is_self_supervised(&self) -> bool {
        method(&self.kind).is_ok_and(|m| m.self_supervised())
    }

    /// Checks the method against itself and the dataset it will train on.
    pub fn validate(&self, dataset: &DatasetDecl) -> Result<()> {
        self.validate_except_pretrained(dataset)?;
        self.check_pretrained(self.pretrained.keys().map(String::as_str))
    }

    /// [`MethodConfig::validate`] but for the pretrained runs, which a suite
    /// names by suite method rather than by path: what `cmkm plan` checks
    /// of each suite method.
    pub fn validate_except_pretrained(&self, dataset: &DatasetDecl) -> Result<()> {
        let method = self.method()?;
        let wanted = method.modalities();
        if !wanted.contains(&self.modalities.len()) {
            let count = if wanted.end() == &usize::MAX { format!("at least {}", wanted.start()) } else { format!("{wanted:?}") };
            bail!("method '{}' ({}) needs {count} modalities, got {:?}", self.name, self.kind, self.modalities);
        }
        self.validate_common(dataset)?;
        method.check_loss(self.loss.as_ref(), None).with_context(|| format!("method '{}'", self.name))
    }

    /// Checks that the modalities given a pretrained run are what the kind
    /// reads: each of its modalities for CMC-CMKM, none for the others.
    pub fn check_pretrained<'a>(&self, given: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let method = self.method()?;
        let given: Vec<&str> = given.into_iter().collect();
        if let Some(m) = given.iter().find(|m| !self.modalities.iter().any(|x| x == *m)) {
            bail!("method '{}': pretrained run for '{m}', which is not one of its modalities {:?}", self.name, self.modalities);
        }
        match (method.uses_pretrained(), self.modalities.iter().find(|m| !given.contains(&m.as_str()))) {
            (true, Some(m)) => bail!("method '{}': {} needs a pretrained unimodal run for modality '{m}'", self.name, method.display_name()),
            (false, _) if !given.is_empty() => {
                bail!("method '{}': a `{}` method reads no pretrained encoders; remove `pretrained`", self.name, self.kind)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kinds_are_unique_and_unknown_ones_are_named() {
        let mut kinds: Vec<&str> = super::METHODS.iter().map(|m| m.kind()).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), super::METHODS.len());
        let err = super::method("byol").err().expect("not registered").to_string();
        assert!(err.contains("`byol`") && err.contains("vicreg"), "{err}");
    }
}
