//! Sweeps: one suite method expanded into variants over dotted keys of its
//! method file (`loss.mining_k: [1, 2, 3]`), by full grid, seeded random
//! search over that grid, or one key at a time around the file's own
//! values (an ablation). Each variant is an ordinary method of the suite
//! under a readable name (`cmc-cmkm[mining_k=2,intra_lambda=1]`); its runs
//! carry the swept method's name and the resolved method, so variants that
//! resolve to the same method share their runs, and the variant equal to
//! the method file shares the unswept method's runs.

use crate::methods::config::MethodConfig;
use anyhow::{anyhow, bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};
use std::path::Path;

/// How a sweep picks its points from the grid of its keys' values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Search {
    /// Every combination of the keys' values.
    #[default]
    Grid,
    /// `samples` distinct grid points drawn with `search_seed`.
    Random,
    /// The method file as written, then each key's other values with the
    /// rest of the keys as the file has them: an ablation.
    OneAtATime,
}

impl Search {
    /// The name a suite file gives it.
    pub fn name(self) -> &'static str {
        match self {
            Search::Grid => "grid",
            Search::Random => "random",
            Search::OneAtATime => "one_at_a_time",
        }
    }
}

/// A suite method's sweep settings, as written beside its `file`.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepDecl<'a> {
    /// Dotted key -> its values, in the suite file's order.
    pub keys: &'a Mapping,
    pub search: Search,
    pub samples: Option<usize>,
    pub search_seed: u64,
}

/// One variant of a swept method.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// `method[key=value,...]`; `method[base]` for the file as written.
    pub name: String,
    /// The swept keys and this variant's value of each (the file's value,
    /// or null where it has none, for keys a one-at-a-time point keeps).
    pub values: Vec<(String, Value)>,
    pub config: MethodConfig,
}

/// A swept suite method: its keys and variants, in expansion order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub keys: Vec<String>,
    pub search: Search,
    /// The method file as written.
    pub base: MethodConfig,
    pub variants: Vec<Variant>,
}

impl Sweep {
    /// The short label of each key: its last segment, or the whole dotted
    /// key where two keys share a last segment.
    pub fn labels(&self) -> Vec<String> {
        labels(&self.keys)
    }

    /// The variant named `name`.
    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }
}

/// Expands the sweep of suite method `name` over `file` (its method file).
/// Errors name the key; the caller adds the suite file and line.
pub fn expand(name: &str, file: &Path, decl: &SweepDecl) -> Result<Sweep, KeyError> {
    let whole = |e: anyhow::Error| KeyError { key: None, error: e };
    let files = crate::methods::config::MethodFiles::read(file).map_err(whole)?;
    let base = MethodConfig::from_files(&files).map_err(whole)?;
    let document = files.tree;
    let mut keys: Vec<(String, Vec<Value>)> = vec![];
    for (k, v) in decl.keys {
        let Some(key) = k.as_str() else { return Err(whole(anyhow!("sweep keys are dotted method-file keys such as `loss.mining_k`, got {k:?}"))) };
        let at = |e: anyhow::Error| KeyError { key: Some(key.to_string()), error: e };
        let Value::Sequence(values) = v else { return Err(at(anyhow!("`{key}` needs a list of values, e.g. [1, 2, 3]"))) };
        if values.is_empty() {
            return Err(at(anyhow!("`{key}` has no values")));
        }
        if let Some(v) = crate::config::first_repeated(values) {
            return Err(at(anyhow!("`{key}` lists {} twice", show(v))));
        }
        if key.split('.').any(str::is_empty) || ["name", "kind", "pretrained"].contains(&key.split('.').next().unwrap_or_default()) {
            return Err(at(anyhow!("`{key}` cannot be swept (sweep settings of the method file: loss, schedule, encoders, augmentations, projection)")));
        }
        // Every value must make a valid method on its own.
        for value in values {
            resolve(&document, file, &[(key.to_string(), value.clone())]).map_err(at)?;
        }
        keys.push((key.to_string(), values.clone()));
    }
    if keys.is_empty() {
        return Err(whole(anyhow!("`sweep` lists no keys")));
    }
    let points = points(&document, &keys, decl).map_err(whole)?;
    let labels = labels(&keys.iter().map(|k| k.0.clone()).collect::<Vec<_>>());
    let mut variants: Vec<Variant> = vec![];
    for point in points {
        let config = resolve(&document, file, &point).map_err(whole)?;
        let shown: Vec<String> = match decl.search {
            // Only the key that moved away from the file's value.
            Search::OneAtATime => point
                .iter()
                .zip(&labels)
                .filter(|((key, value), _)| as_written(&document, key) != *value)
                .map(|((_, value), label)| format!("{label}={}", show(value)))
                .collect(),
            _ => point.iter().zip(&labels).map(|((_, value), label)| format!("{label}={}", show(value))).collect(),
        };
        let name = if shown.is_empty() { format!("{name}[base]") } else { format!("{name}[{}]", shown.join(",")) };
        if variants.iter().any(|v| v.name == name) {
            continue; // a one-at-a-time value equal to the file's: the base point
        }
        variants.push(Variant { name, values: point, config });
    }
    Ok(Sweep { keys: keys.into_iter().map(|k| k.0).collect(), search: decl.search, base, variants })
}

/// A sweep error and the key it is about (`None`: the sweep as a whole).
#[derive(Debug)]
pub struct KeyError {
    pub key: Option<String>,
    pub error: anyhow::Error,
}

/// The grid points the search picks: one value per key.
fn points(document: &Value, keys: &[(String, Vec<Value>)], decl: &SweepDecl) -> Result<Vec<Vec<(String, Value)>>> {
    let grid = || {
        let mut out: Vec<Vec<(String, Value)>> = vec![vec![]];
        for (key, values) in keys {
            out = out.into_iter().flat_map(|p| values.iter().map(move |v| [p.clone(), vec![(key.clone(), v.clone())]].concat())).collect();
        }
        out
    };
    if decl.samples.is_some() != (decl.search == Search::Random) {
        bail!("`samples` goes with `search: random`, and only with it");
    }
    Ok(match decl.search {
        Search::Grid => grid(),
        Search::Random => {
            let all = grid();
            let n = decl.samples.unwrap_or_default();
            if n == 0 || n > all.len() {
                bail!("`samples: {n}` must be between 1 and the grid's {} points", all.len());
            }
            let mut order: Vec<usize> = (0..all.len()).collect();
            order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(decl.search_seed));
            order.truncate(n);
            order.sort_unstable(); // grid order, whatever the draw
            order.into_iter().map(|i| all[i].clone()).collect()
        }
        Search::OneAtATime => {
            let as_written: Vec<(String, Value)> = keys.iter().map(|(k, _)| (k.clone(), as_written(document, k))).collect();
            let mut out = vec![as_written.clone()];
            for (i, (_, values)) in keys.iter().enumerate() {
                for v in values {
                    let mut p = as_written.clone();
                    p[i].1 = v.clone();
                    out.push(p);
                }
            }
            out
        }
    })
}

/// The method file with `values` set, checked as the method's kind reads it.
fn resolve(document: &Value, file: &Path, values: &[(String, Value)]) -> Result<MethodConfig> {
    let mut doc = document.clone();
    for (key, value) in values {
        set(&mut doc, key, value.clone()).map_err(|e| anyhow!("`{key}`: {e}"))?;
    }
    let shown = || values.iter().map(|(k, v)| format!("{k}={}", show(v))).collect::<Vec<_>>().join(", ");
    let mut m: MethodConfig = serde_yaml::from_value(doc).map_err(|e| anyhow!("{} with {}: {}", file.display(), shown(), crate::config::describe(&e, None)))?;
    let method = m.method().map_err(|e| anyhow!("{}: {e:#}", file.display()))?;
    method.check_loss(m.loss.as_ref(), None).map_err(|e| anyhow!("{} with {}: {e:#}", file.display(), shown()))?;
    let base = file.parent().unwrap_or(Path::new(""));
    for p in m.pretrained.values_mut() {
        if p.is_relative() {
            *p = crate::fsutil::normalize(&base.join(&*p));
        }
    }
    Ok(m)
}

/// The value at dotted `key`, if written.
fn get<'a>(doc: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(doc, |v, k| v.as_mapping()?.get(k))
}

/// The value the method file gives dotted `key`, null where it gives none
/// (the kind's default, as a null in a sweep means).
fn as_written(doc: &Value, key: &str) -> Value {
    get(doc, key).cloned().unwrap_or(Value::Null)
}

/// Sets dotted `key` to `value`, making the missing mappings on the way; a
/// null value removes the key (the kind's default).
fn set(doc: &mut Value, key: &str, value: Value) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, path) = parts.split_last().expect("split yields at least one part");
    let mut at = doc;
    for (i, k) in path.iter().enumerate() {
        let map = at.as_mapping_mut().ok_or_else(|| anyhow!("`{}` is not a mapping", parts[..i].join(".")))?;
        at = map.entry(Value::from(*k)).or_insert_with(|| Value::Mapping(Mapping::new()));
        if at.is_null() {
            *at = Value::Mapping(Mapping::new());
        }
    }
    let map = at.as_mapping_mut().ok_or_else(|| anyhow!("`{}` is not a mapping", path.join(".")))?;
    if value.is_null() {
        map.remove(*last);
    } else {
        map.insert(Value::from(*last), value);
    }
    Ok(())
}

/// A value as a variant name shows it: `0.1`, `true`, `default` for null.
pub fn show(v: &Value) -> String {
    match v {
        Value::Null => "default".into(),
        Value::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_else(|_| format!("{other:?}")),
    }
}

fn labels(keys: &[String]) -> Vec<String> {
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    keys.iter().map(|k| if keys.iter().filter(|o| last(o) == last(k)).count() > 1 { k.clone() } else { last(k) }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        serde_yaml::from_str("loss: {temperature: 0.1, mining_k: 1}\nschedule: {epochs: 3}\n").unwrap()
    }

    #[test]
    fn dotted_keys_are_set_made_and_removed() {
        let mut d = doc();
        set(&mut d, "loss.mining_k", Value::from(3)).unwrap();
        set(&mut d, "projection.out_dim", Value::from(64)).unwrap();
        set(&mut d, "loss.temperature", Value::Null).unwrap();
        assert_eq!(get(&d, "loss.mining_k"), Some(&Value::from(3)));
        assert_eq!(get(&d, "projection.out_dim"), Some(&Value::from(64)));
        assert_eq!(get(&d, "loss.temperature"), None);
        assert!(set(&mut d, "loss.mining_k.deeper", Value::from(1)).is_err(), "a number is not a mapping");
    }

    #[test]
    fn labels_are_last_segments_unless_they_clash() {
        let keys = ["loss.mining_k".to_string(), "schedule.lr".to_string(), "encoders.inertial.lr".to_string()];
        assert_eq!(labels(&keys), ["mining_k", "schedule.lr", "encoders.inertial.lr"]);
        assert_eq!(show(&Value::from(0.25)), "0.25");
        assert_eq!(show(&Value::Null), "default");
    }
}
