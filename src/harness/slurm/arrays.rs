//! Which job arrays a suite's missing runs become: runs that wait for the
//! same set of unfinished runs share one array (every independent run of
//! every seed is one array; each training's evaluations are another), so
//! each array task depends on exactly the jobs its run needs, named task by
//! task (`afterok:<array job>_<task>`).

use crate::harness::runner::PlanEntry;
use crate::harness::store::RunStatus;
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// A job a new array waits for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dependency {
    /// Task `task` of array `array` of this submission.
    Submitted { array: usize, task: usize },
    /// A job of an earlier submission that is still queued or running
    /// (`<array job>_<task>`).
    Queued(String),
}

/// One job array to submit: task `i` runs `runs[i]`.
#[derive(Debug, Clone)]
pub struct JobArray {
    pub runs: Vec<PlanEntry>,
    /// What every task of the array waits for (`afterok`).
    pub after: Vec<Dependency>,
}

/// Groups the runs that are not done and not already queued (`queued`: run
/// id -> Slurm job of an earlier submission) into arrays, in an order where
/// every array comes after those it depends on. Plan order is a dependency
/// order, so the arrays in order of their first run are too.
pub fn job_arrays(runs: &[PlanEntry], queued: &BTreeMap<String, String>) -> Result<Vec<JobArray>> {
    let status: BTreeMap<&str, RunStatus> = runs.iter().map(|r| (r.id.as_str(), r.status)).collect();
    let mut groups: Vec<(Vec<String>, Vec<PlanEntry>)> = vec![];
    for run in runs.iter().filter(|r| r.status != RunStatus::Done && !queued.contains_key(&r.id)) {
        let mut waits: Vec<String> = run.depends_on.iter().filter(|d| status.get(d.as_str()) != Some(&RunStatus::Done)).cloned().collect();
        waits.sort();
        waits.dedup();
        match groups.iter_mut().find(|(key, _)| *key == waits) {
            Some((_, members)) => members.push(run.clone()),
            None => groups.push((waits, vec![run.clone()])),
        }
    }
    let mut placed: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut arrays = vec![];
    for (index, (waits, members)) in groups.into_iter().enumerate() {
        let mut after = vec![];
        for dep in &waits {
            after.push(match (placed.get(dep), queued.get(dep)) {
                (Some(&(array, task)), _) => Dependency::Submitted { array, task },
                (None, Some(job)) => Dependency::Queued(job.clone()),
                (None, None) => bail!("run {dep} is needed by run {} but is neither done, queued nor planned before it", members[0].id),
            });
        }
        for (task, run) in members.iter().enumerate() {
            placed.insert(run.id.clone(), (index, task));
        }
        arrays.push(JobArray { runs: members, after });
    }
    Ok(arrays)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, status: RunStatus, deps: &[&str]) -> PlanEntry {
        PlanEntry {
            id: id.into(),
            label: id.into(),
            step: "train",
            method: "m".into(),
            also: vec![],
            seed: 0,
            status,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            estimate_seconds: None,
            estimate_from_flops: false,
        }
    }

    #[test]
    fn runs_sharing_what_they_wait_for_share_an_array() {
        use RunStatus::*;
        let runs = [
            entry("a", Todo, &[]),
            entry("b", Done, &[]),
            entry("c", Failed, &[]),
            entry("a1", Todo, &["a"]),
            entry("b1", Todo, &["b"]),
            entry("a2", Todo, &["a"]),
            entry("ac", Todo, &["c", "a"]),
            entry("q1", Todo, &["q"]),
            entry("q", Todo, &[]),
        ];
        // Put q's record first in plan order to mimic a queued dependency.
        let queued = BTreeMap::from([("q".to_string(), "7_2".to_string())]);
        let arrays = job_arrays(&runs, &queued).unwrap();
        let ids: Vec<Vec<&str>> = arrays.iter().map(|a| a.runs.iter().map(|r| r.id.as_str()).collect()).collect();
        // b1's dependency is done, so it starts at once with a and c.
        assert_eq!(ids, vec![vec!["a", "c", "b1"], vec!["a1", "a2"], vec!["ac"], vec!["q1"]]);
        assert_eq!(arrays[0].after, vec![]);
        assert_eq!(arrays[1].after, vec![Dependency::Submitted { array: 0, task: 0 }]);
        assert_eq!(arrays[2].after, vec![Dependency::Submitted { array: 0, task: 0 }, Dependency::Submitted { array: 0, task: 1 }]);
        assert_eq!(arrays[3].after, vec![Dependency::Queued("7_2".into())]);
    }

    #[test]
    fn a_dependency_nowhere_is_an_error() {
        let runs = [entry("x", RunStatus::Todo, &["ghost"])];
        assert!(job_arrays(&runs, &BTreeMap::new()).unwrap_err().to_string().contains("ghost"));
    }
}
