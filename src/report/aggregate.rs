//! Aggregation over seeds (and label-fraction repetitions) with polars:
//! mean, sample standard deviation (n - 1, 0 for one value) and count.

use anyhow::Result;
use polars::prelude::*;

/// Mean, standard deviation and count of one value in one group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

/// One group: its key values (in `keys` order) and a statistic per value
/// column (in `values` order).
#[derive(Debug, Clone)]
pub struct Group {
    pub keys: Vec<String>,
    pub numeric_keys: Vec<f64>,
    pub stats: Vec<Stat>,
}

/// Groups `df` by the text columns `keys` (and numeric `numeric_keys`) in
/// first-appearance order and summarises each column of `values`.
pub fn summarise(df: &DataFrame, keys: &[&str], numeric_keys: &[&str], values: &[&str]) -> Result<Vec<Group>> {
    if df.height() == 0 {
        return Ok(vec![]);
    }
    let by: Vec<Expr> = keys.iter().chain(numeric_keys).map(|k| col(*k)).collect();
    let mut aggs = vec![];
    for v in values {
        aggs.push(col(*v).mean().alias(format!("{v}__mean")));
        aggs.push(col(*v).std(1).fill_null(lit(0.0)).alias(format!("{v}__std")));
        aggs.push(col(*v).count().cast(DataType::Float64).alias(format!("{v}__n")));
    }
    let out = df.clone().lazy().group_by_stable(by).agg(aggs).collect()?;
    let mut groups = vec![];
    for i in 0..out.height() {
        let mut g = Group { keys: vec![], numeric_keys: vec![], stats: vec![] };
        // The frames come from run files read with their types: a null
        // key is a bug to report, not a blank.
        let null = |k: &str| anyhow::anyhow!("column '{k}' has no value in row {i}");
        for k in keys {
            g.keys.push(out.column(k)?.str()?.get(i).ok_or_else(|| null(k))?.to_string());
        }
        for k in numeric_keys {
            g.numeric_keys.push(out.column(k)?.f64()?.get(i).ok_or_else(|| null(k))?);
        }
        for v in values {
            // polars gives no standard deviation (null) for a single value:
            // NaN, printed as such, is what it is.
            let get = |suffix: &str| -> Result<f64> { Ok(out.column(&format!("{v}__{suffix}"))?.f64()?.get(i).unwrap_or(f64::NAN)) };
            g.stats.push(Stat { mean: get("mean")?, std: get("std")?, n: get("n")? as usize });
        }
        groups.push(g);
    }
    Ok(groups)
}

/// `mean ± std` in percent with two decimals (the paper's format).
pub fn percent(s: Stat) -> String {
    if s.n > 1 {
        format!("{:.2} ± {:.2}", 100.0 * s.mean, 100.0 * s.std)
    } else {
        format!("{:.2}", 100.0 * s.mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std_per_group_in_first_appearance_order() {
        let df = df!(
            "method" => ["b", "a", "b", "a", "b"],
            "x" => [1.0, 10.0, 2.0, 10.0, 3.0],
        )
        .unwrap();
        let g = summarise(&df, &["method"], &[], &["x"]).unwrap();
        assert_eq!(g[0].keys, vec!["b".to_string()]);
        assert_eq!(g[0].stats[0], Stat { mean: 2.0, std: 1.0, n: 3 });
        assert_eq!(g[1].stats[0], Stat { mean: 10.0, std: 0.0, n: 2 });
        let single = df!("method" => ["a"], "x" => [0.5]).unwrap();
        assert_eq!(summarise(&single, &["method"], &[], &["x"]).unwrap()[0].stats[0].std, 0.0);
        assert_eq!(percent(Stat { mean: 0.97674, std: 0.005, n: 3 }), "97.67 ± 0.50");
    }
}
