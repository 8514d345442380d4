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
    /// The attributes protocols select by.
    pub fn attributes(&self) -> Attributes {
        Attributes { subject: self.subject, trial: self.trial, scene: self.scene, session: self.session }
    }
}
