//! A long-format table: named text and number columns of one height, one
//! row per evaluated number. What the report needs of a data frame (column
//! access, a filter, renaming one column's values) and no more; grouping is
//! [`super::aggregate::summarise`]. (polars did this once, and was a
//! quarter of a fresh clone's build time for these few operations.)

use anyhow::{bail, Result};

/// Text and number columns, all `height` long.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    text: Vec<(&'static str, Vec<String>)>,
    numbers: Vec<(&'static str, Vec<f64>)>,
    height: usize,
}

impl Frame {
    /// A frame of these columns; an error where their heights differ.
    pub fn new(text: Vec<(&'static str, Vec<String>)>, numbers: Vec<(&'static str, Vec<f64>)>) -> Result<Frame> {
        let height = text.first().map(|c| c.1.len()).or(numbers.first().map(|c| c.1.len())).unwrap_or(0);
        let heights = text.iter().map(|c| (c.0, c.1.len())).chain(numbers.iter().map(|c| (c.0, c.1.len())));
        for (name, h) in heights {
            if h != height {
                bail!("column '{name}' has {h} rows where the frame has {height}");
            }
        }
        Ok(Frame { text, numbers, height })
    }

    /// Number of rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The text column `name`.
    pub fn text(&self, name: &str) -> Result<&[String]> {
        column(&self.text, "text", name)
    }

    /// The number column `name`.
    pub fn numbers(&self, name: &str) -> Result<&[f64]> {
        column(&self.numbers, "number", name)
    }

    /// Replaces the values of the text column `name`.
    pub fn set_text(&mut self, name: &str, values: Vec<String>) -> Result<()> {
        replace(&mut self.text, "text", name, values, self.height)
    }

    /// Replaces the values of the number column `name`.
    pub fn set_numbers(&mut self, name: &str, values: Vec<f64>) -> Result<()> {
        replace(&mut self.numbers, "number", name, values, self.height)
    }

    /// The rows whose `keep` is true, in order.
    pub fn filter(&self, keep: &[bool]) -> Frame {
        fn pick<T: Clone>(values: &[T], keep: &[bool]) -> Vec<T> {
            values.iter().zip(keep).filter(|(_, &k)| k).map(|(v, _)| v.clone()).collect()
        }
        Frame {
            text: self.text.iter().map(|(n, v)| (*n, pick(v, keep))).collect(),
            numbers: self.numbers.iter().map(|(n, v)| (*n, pick(v, keep))).collect(),
            height: keep.iter().take(self.height).filter(|&&k| k).count(),
        }
    }
}

fn column<'a, T>(columns: &'a [(&'static str, Vec<T>)], kind: &str, name: &str) -> Result<&'a [T]> {
    match columns.iter().find(|c| c.0 == name) {
        Some(c) => Ok(&c.1),
        None => bail!("the frame has no {kind} column '{name}'"),
    }
}

fn replace<T>(columns: &mut [(&'static str, Vec<T>)], kind: &str, name: &str, values: Vec<T>, height: usize) -> Result<()> {
    let Some(column) = columns.iter_mut().find(|c| c.0 == name) else { bail!("the frame has no {kind} column '{name}'") };
    if values.len() != height {
        bail!("{} values for column '{name}' of a frame of {height} rows", values.len());
    }
    column.1 = values;
    Ok(())
}

/// Appends `value` to the column `name`, which it starts where there is none.
fn push<T>(columns: &mut Vec<(&'static str, Vec<T>)>, name: &'static str, value: T) {
    match columns.iter_mut().find(|c| c.0 == name) {
        Some(c) => c.1.push(value),
        None => columns.push((name, vec![value])),
    }
}

/// Builds a [`Frame`] one value at a time, row after row.
#[derive(Default)]
pub struct FrameBuilder {
    text: Vec<(&'static str, Vec<String>)>,
    numbers: Vec<(&'static str, Vec<f64>)>,
}

impl FrameBuilder {
    /// Appends `value` to the text column `name`.
    pub fn text(&mut self, name: &'static str, value: impl Into<String>) {
        push(&mut self.text, name, value.into());
    }

    /// Appends `value` to the number column `name`.
    pub fn number(&mut self, name: &'static str, value: f64) {
        push(&mut self.numbers, name, value);
    }

    /// The frame with exactly these columns, in this order, so that an
    /// empty frame still has them; an error for a column filled but not
    /// named, or columns of different heights (a bug in the caller).
    pub fn build(mut self, text: &[&'static str], numbers: &[&'static str]) -> Result<Frame> {
        fn take<T>(columns: &mut Vec<(&'static str, Vec<T>)>, names: &[&'static str]) -> Result<Vec<(&'static str, Vec<T>)>> {
            let out =
                names.iter().map(|n| (*n, columns.iter().position(|c| c.0 == *n).map(|i| std::mem::take(&mut columns[i].1)).unwrap_or_default())).collect();
            if let Some(extra) = columns.iter().find(|c| !names.contains(&c.0)) {
                bail!("column '{}' was filled but is not one of the frame's", extra.0);
            }
            Ok(out)
        }
        let text = take(&mut self.text, text)?;
        let numbers = take(&mut self.numbers, numbers)?;
        Frame::new(text, numbers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_rows() -> FrameBuilder {
        let mut b = FrameBuilder::default();
        for (m, x) in [("a", 1.0), ("b", 2.0), ("c", 3.0)] {
            b.text("method", m);
            b.number("x", x);
        }
        b
    }

    #[test]
    fn builds_filters_and_renames() {
        let mut f = three_rows().build(&["method"], &["x"]).unwrap();
        assert_eq!(f.height(), 3);
        let kept = f.filter(&[true, false, true]);
        assert_eq!(kept.text("method").unwrap(), ["a", "c"]);
        assert_eq!(kept.numbers("x").unwrap(), [1.0, 3.0]);
        assert_eq!(kept.height(), 2);
        f.set_text("method", vec!["z".into(), "y".into(), "x".into()]).unwrap();
        assert_eq!(f.text("method").unwrap()[0], "z");
        assert!(f.set_text("method", vec![]).is_err());
        assert!(f.numbers("method").unwrap_err().to_string().contains("no number column 'method'"));
        let empty = FrameBuilder::default().build(&["method"], &["x"]).unwrap();
        assert_eq!((empty.height(), empty.text("method").unwrap().len()), (0, 0));
    }

    #[test]
    fn columns_of_different_heights_or_unnamed_are_errors() {
        let err = three_rows().build(&["method"], &["x", "y"]).unwrap_err().to_string();
        assert!(err.contains("column 'y' has 0 rows where the frame has 3"), "{err}");
        let err = three_rows().build(&["method"], &[]).unwrap_err().to_string();
        assert!(err.contains("'x' was filled"), "{err}");
    }
}
