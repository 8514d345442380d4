//! Talking to Slurm through its client commands: `sbatch` to submit,
//! `squeue` for queued and running jobs, `scontrol show job` for finished
//! ones (`sacct` is absent on clusters without accounting, so it is never
//! used). Each command's failure is an error that names the command and
//! quotes what it printed.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Runs a Slurm client command and returns its standard output.
fn run(program: &str, args: &[String]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run `{program}`: is Slurm's client installed and on PATH? (Debian: apt-get install slurm-client)"))?;
    if !out.status.success() {
        bail!("`{program} {}` failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submits `script` with these extra command-line options; returns the job id.
pub fn sbatch(script: &Path, options: &[String]) -> Result<String> {
    let mut args = vec!["--parsable".to_string()];
    args.extend(options.iter().cloned());
    args.push(script.display().to_string());
    let out = run("sbatch", &args)?;
    // `--parsable` prints `<job id>` or `<job id>;<cluster>`.
    let id = out.trim().split(';').next().unwrap_or_default().to_string(); // split gives at least one part; an empty id is refused below
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("sbatch {}: expected a job id, got {out:?}", script.display());
    }
    Ok(id)
}

/// Job states in which a job will still run or is running: everything
/// `squeue` lists except the terminal states.
fn is_live(state: &str) -> bool {
    !matches!(
        state,
        "COMPLETED" | "FAILED" | "CANCELLED" | "TIMEOUT" | "NODE_FAIL" | "PREEMPTED" | "BOOT_FAIL" | "DEADLINE" | "OUT_OF_MEMORY" | "SPECIAL_EXIT" | "REVOKED"
    )
}

/// The states of the jobs and array tasks Slurm still knows, keyed
/// `<job>` or `<array job>_<task>`: queued and running ones from `squeue`,
/// finished ones (kept for `MinJobAge`) from `scontrol show job` of the
/// given array jobs.
pub fn job_states(array_jobs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut states = BTreeMap::new();
    let queue = run("squeue", &["--noheader".into(), "--array".into(), "--format=%i|%T".into()])?;
    for line in queue.lines() {
        if let Some((job, state)) = line.trim().split_once('|') {
            states.insert(job.to_string(), state.to_string());
        }
    }
    for job in array_jobs {
        // A job Slurm has forgotten is an error here; its state is unknown.
        let Ok(text) = run("scontrol", &["--oneliner".into(), "show".into(), "job".into(), job.clone()]) else { continue };
        for line in text.lines() {
            let field = |name: &str| line.split_whitespace().find_map(|w| w.strip_prefix(name)).map(str::to_string);
            let (Some(id), Some(state)) = (field("JobId="), field("JobState=")) else { continue };
            match (field("ArrayJobId="), field("ArrayTaskId=")) {
                // Tasks that never started share one record (e.g. a whole
                // array cancelled while pending): `0-4`, `1,3,5-7%2`.
                (Some(array), Some(tasks)) => {
                    for task in task_ids(&tasks) {
                        states.entry(format!("{array}_{task}")).or_insert_with(|| state.clone());
                    }
                }
                _ => {
                    states.entry(id).or_insert(state);
                }
            }
        }
    }
    Ok(states)
}

/// The task ids of an `ArrayTaskId` field: `3`, `0-4`, `1,3,5-7%2`.
fn task_ids(field: &str) -> Vec<u64> {
    let list = field.split('%').next().unwrap_or_default(); // split gives at least one part
    let mut ids = vec![];
    for part in list.split(',') {
        let (from, to) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(from), Ok(to)) = (from.parse::<u64>(), to.parse::<u64>()) {
            ids.extend(from..=to.min(from + 1_000_000));
        }
    }
    ids
}

/// True when Slurm lists this job as queued or running.
pub fn live(states: &BTreeMap<String, String>, job: &str) -> bool {
    states.get(job).is_some_and(|s| is_live(s))
}

#[cfg(test)]
mod tests {
    #[test]
    fn terminal_states_are_not_live() {
        let states = std::collections::BTreeMap::from([
            ("1_0".to_string(), "PENDING".to_string()),
            ("1_1".to_string(), "FAILED".to_string()),
            ("2".to_string(), "RUNNING".to_string()),
        ]);
        assert!(super::live(&states, "1_0") && super::live(&states, "2"));
        assert!(!super::live(&states, "1_1") && !super::live(&states, "3"));
    }

    #[test]
    fn array_task_fields_expand() {
        assert_eq!(super::task_ids("3"), vec![3]);
        assert_eq!(super::task_ids("0-2"), vec![0, 1, 2]);
        assert_eq!(super::task_ids("1,3,5-7%2"), vec![1, 3, 5, 6, 7]);
        assert!(super::task_ids("x").is_empty());
    }
}
