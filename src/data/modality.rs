//! What kind of samples a modality holds and their shape: leaf types shared
//! by the dataset declaration and the transforms, so the declaration (which
//! lists preprocessing steps) and the transforms (which check themselves
//! against a modality) do not import each other.

use serde::{Deserialize, Serialize};

/// What a modality's samples are: a multichannel time series (C x T) or a
/// skeleton sequence (C x T x J).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModalityKind {
    Series,
    Skeleton,
}

/// The shape a transform checks itself against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModalityShape {
    pub kind: ModalityKind,
    /// Channels per joint (xyz = 3) or per time step for series.
    pub channels: usize,
    /// Joints (1 for series).
    pub joints: usize,
}
