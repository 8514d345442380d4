//! Numeric tables (MMAct inertial files, manifest arrays, recordings): rows
//! are time steps, columns are channels, an optional single header row;
//! cells separated by commas (CSV) or by white space (HAPT's `.txt` files).

use anyhow::{bail, Context, Result};
use ndarray::Array2;
use std::path::Path;

/// Reads a numeric CSV into a `rows x columns` array.
///
/// A first row that does not parse as numbers is taken as the header. Every
/// other cell must be a number (`nan`/`inf` parse and are reported later by
/// the finiteness checks); ragged rows are an error naming the line.
pub fn read_numeric_csv(path: &Path) -> Result<Array2<f64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read file", path.display()))?;
    parse_numeric_csv(&text).with_context(|| format!("{}", path.display()))
}

/// Reads a numeric table whose cells are separated by commas or, where its
/// first line has none, by white space.
pub fn read_numeric_table(path: &Path) -> Result<Array2<f64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read file", path.display()))?;
    let comma = text.lines().next().is_some_and(|l| l.contains(','));
    let parsed = if comma { parse_numeric_csv(&text) } else { parse_whitespace_table(&text) };
    parsed.with_context(|| format!("{}", path.display()))
}

/// Parses a table of white-space separated numbers (blank lines skipped, a
/// non-numeric first line taken as the header).
pub fn parse_whitespace_table(text: &str) -> Result<Array2<f64>> {
    let mut values = Vec::new();
    let mut columns = None;
    let mut rows = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let before = values.len();
        let mut bad = None;
        for cell in line.split_whitespace() {
            match cell.parse::<f64>() {
                Ok(v) => values.push(v),
                Err(e) => {
                    bad = Some((cell, e));
                    break;
                }
            }
        }
        if let Some((cell, e)) = bad {
            values.truncate(before);
            if i == 0 {
                continue; // header
            }
            bail!("line {}: non-numeric value '{cell}' ({e})", i + 1);
        }
        let n = values.len() - before;
        match columns {
            None => columns = Some(n),
            Some(c) if c != n => bail!("line {}: {n} columns, expected {c}", i + 1),
            _ => {}
        }
        rows += 1;
    }
    let Some(columns) = columns else { bail!("no numeric rows") };
    Ok(Array2::from_shape_vec((rows, columns), values)?)
}

/// Parses CSV text; see [`read_numeric_csv`].
pub fn parse_numeric_csv(text: &str) -> Result<Array2<f64>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).trim(csv::Trim::All).from_reader(text.as_bytes());
    let mut values = Vec::new();
    let mut columns = None;
    let mut rows = 0;
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("line {}: malformed CSV", i + 1))?;
        let parsed: Result<Vec<f64>, _> = record.iter().map(str::parse::<f64>).collect();
        let row = match parsed {
            Ok(row) => row,
            Err(_) if i == 0 => continue, // header
            Err(e) => bail!("line {}: non-numeric value ({e}): {:?}", i + 1, record.iter().collect::<Vec<_>>()),
        };
        match columns {
            None => columns = Some(row.len()),
            Some(c) if c != row.len() => bail!("line {}: {} columns, expected {c}", i + 1, row.len()),
            _ => {}
        }
        values.extend(row);
        rows += 1;
    }
    let Some(columns) = columns else { bail!("no numeric rows") };
    Ok(Array2::from_shape_vec((rows, columns), values)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_skipped_and_values_parsed() {
        let a = parse_numeric_csv("ax,ay\n1,2\n3.5,-4\nnan,inf\n").unwrap();
        assert_eq!(a.dim(), (3, 2));
        assert_eq!(a[[1, 1]], -4.0);
        assert!(a[[2, 0]].is_nan() && a[[2, 1]].is_infinite());
    }

    #[test]
    fn ragged_and_non_numeric_rows_are_errors() {
        let e = format!("{:#}", parse_numeric_csv("a,b\n1,2\n3\n").unwrap_err());
        assert!(e.contains("line 3"), "{e}");
        let e = format!("{:#}", parse_numeric_csv("a,b\n1,2\nx,3\n").unwrap_err());
        assert!(e.contains("line 3") && e.contains("non-numeric"), "{e}");
        assert!(parse_numeric_csv("a,b\n").is_err());
    }

    #[test]
    fn white_space_tables_parse_like_csv() {
        let a = parse_whitespace_table("t ax ay\n0  1 2\n\n1\t3.5 -4e-1\n").unwrap();
        assert_eq!(a.dim(), (2, 3));
        assert_eq!(a[[1, 2]], -0.4);
        let e = format!("{:#}", parse_whitespace_table("1 2\n3\n").unwrap_err());
        assert!(e.contains("line 2") && e.contains("1 columns"), "{e}");
        let e = format!("{:#}", parse_whitespace_table("1 2\n3 x\n").unwrap_err());
        assert!(e.contains("line 2") && e.contains("'x'"), "{e}");
    }
}
