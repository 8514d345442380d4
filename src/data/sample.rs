//! A sample's identity and labels: a leaf type that the loader, the layouts
//! and the splits share without importing each other.

use serde::Serialize;

/// Identity and labels of one sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleMeta {
    /// Stable id, e.g. `a3_s2_t1`.
    pub id: String,
    /// 0-based class index.
    pub label: usize,
    pub subject: u32,
    pub trial: Option<u32>,
    pub scene: Option<u32>,
    pub session: Option<u32>,
}

/// What protocols select samples by: who, which trial, scene and session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Attributes {
    pub subject: u32,
    pub trial: Option<u32>,
    pub scene: Option<u32>,
    pub session: Option<u32>,
}

impl SampleMeta {
    /// The order of a dataset's samples, whatever its format: by label,
    /// subject, trial, session, scene, then id.
    pub fn order(&self, other: &Self) -> std::cmp::Ordering {
        let key = |m: &Self| (m.label, m.subject, m.trial, m.session, m.scene);
        key(self).cmp(&key(other)).then_with(|| self.id.cmp(&other.id))
    }

    /// The attributes protocols select by.
    pub fn attributes(&self) -> Attributes {
        Attributes { subject: self.subject, trial: self.trial, scene: self.scene, session: self.session }
    }
}
