//! The paper's reported test-set numbers (docs/method.md section 9, from the reference
//! README), for the side-by-side columns of the main table.

/// Which column of the paper's table a suite corresponds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaperColumn {
    /// UTD-MHAD, cross-subject, accuracy.
    UtdMhad,
    /// MMAct cross-subject, macro F1.
    MmactCrossSubject,
    /// MMAct cross-scene, macro F1.
    MmactCrossScene,
}

impl PaperColumn {
    /// The column for a dataset format and protocol, if the paper has one.
    pub fn for_suite(format: crate::data::declaration::Format, protocol: &str) -> Option<Self> {
        use crate::data::declaration::Format;
        match (format, protocol) {
            (Format::UtdMhad, "cross_subject") => Some(PaperColumn::UtdMhad),
            (Format::Mmact, "cross_subject") => Some(PaperColumn::MmactCrossSubject),
            (Format::Mmact, "cross_scene") => Some(PaperColumn::MmactCrossScene),
            _ => None,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            PaperColumn::UtdMhad => "UTD-MHAD accuracy",
            PaperColumn::MmactCrossSubject => "MMAct cross-subject macro F1",
            PaperColumn::MmactCrossScene => "MMAct cross-scene macro F1",
        }
    }
}

/// (modality, approach, UTD-MHAD accuracy, MMAct x-subject F1, MMAct x-scene F1), in percent.
const ROWS: [(&str, &str, f64, f64, f64); 7] = [
    ("Inertial", "SimCLR", 72.09, 52.89, 59.23),
    ("Inertial", "Supervised", 76.74, 61.22, 78.86),
    ("Skeleton", "SimCLR", 95.11, 75.82, 67.80),
    ("Skeleton", "Supervised", 94.65, 82.50, 70.58),
    ("Multimodal", "CMC", 96.04, 82.05, 79.97),
    ("Multimodal", "CMC-CMKM", 97.67, 84.51, 82.91),
    ("Multimodal", "Supervised", 97.21, 84.05, 87.36),
];

/// The paper's number (percent) for a row, if it reports one.
pub fn paper_value(column: PaperColumn, modality: &str, approach: &str) -> Option<f64> {
    ROWS.iter().find(|r| r.0 == modality && r.1 == approach).map(|r| match column {
        PaperColumn::UtdMhad => r.2,
        PaperColumn::MmactCrossSubject => r.3,
        PaperColumn::MmactCrossScene => r.4,
    })
}

/// Position of a row in the paper's table (rows it lacks sort after).
pub fn paper_order(modality: &str, approach: &str) -> usize {
    ROWS.iter().position(|r| r.0 == modality && r.1 == approach).unwrap_or(ROWS.len())
}

/// Sort key of a table row as the paper orders it: modality group, then
/// the paper's row order, then method name.
pub fn row_order(modality: &str, approach: &str, method: &str) -> (usize, usize, String) {
    (modality_order(modality), paper_order(modality, approach), method.to_string())
}

/// Position of a modality group: Inertial, Skeleton, Multimodal.
pub fn modality_order(modality: &str) -> usize {
    ["Inertial", "Skeleton", "Multimodal"].iter().position(|m| *m == modality).unwrap_or(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_the_reported_numbers() {
        let utd = PaperColumn::for_suite(crate::data::declaration::Format::UtdMhad, "cross_subject").unwrap();
        assert_eq!(paper_value(utd, "Multimodal", "CMC-CMKM"), Some(97.67));
        assert_eq!(paper_value(PaperColumn::MmactCrossScene, "Inertial", "Supervised"), Some(78.86));
        assert_eq!(paper_value(utd, "Inertial", "CMC"), None);
        assert_eq!(PaperColumn::for_suite(crate::data::declaration::Format::Manifest, "cross_subject"), None);
    }
}
