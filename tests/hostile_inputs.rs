//! Hostile and broken inputs through the command line: every case must exit
//! non-zero with a message naming the file (or key) and the problem, and
//! must never panic.

use crate::common;

use cmkm::data::formats::mat::encode_mat_double;
use common::{cmkm, dataset, write_mmact_fixture, write_utd_fixture, ENCODERS};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `cmd`, asserts a non-zero exit without a panic, returns stdout + stderr.
fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    check_failed(&out)
}

fn check_failed(out: &Output) -> String {
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "expected a failure, got success:\n{text}");
    assert!(!text.contains("panicked"), "a panic instead of an error:\n{text}");
    assert!(out.status.code().is_some(), "killed by a signal: {:?}\n{text}", out.status);
    text
}

/// The `failed` list of `cmkm data inspect --json` as (file name, reason).
fn inspect_failures(decl: &Path) -> (serde_json::Value, Vec<(String, String)>) {
    let out = cmkm().args(["data", "inspect", "--json"]).arg(decl).output().unwrap();
    check_failed(&out);
    assert_eq!(out.status.code(), Some(2), "inspect reports problems with status 2");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = PathBuf::from(f["file"].as_str().unwrap());
            (file.file_name().unwrap().to_string_lossy().to_string(), f["reason"].as_str().unwrap().to_string())
        })
        .collect();
    (report, failed)
}

fn reason_of<'a>(failed: &'a [(String, String)], file: &str) -> &'a str {
    failed.iter().find(|(f, _)| f == file).map(|(_, r)| r.as_str()).unwrap_or_else(|| panic!("{file} not reported in {failed:#?}"))
}

/// An `.npy` file with any dtype descriptor and raw data bytes.
fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A declaration of the shipped format `name` rooted at `root`, written to `dir`.
fn declaration_at(dir: &Path, name: &str, root: &Path) -> PathBuf {
    let yaml = std::fs::read_to_string(common::declaration(name)).unwrap();
    let mut lines: Vec<String> = yaml.lines().map(String::from).collect();
    for l in lines.iter_mut().filter(|l| l.starts_with("root:")) {
        *l = format!("root: {}", root.display());
    }
    let path = dir.join("data.yaml");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// A tiny supervised inertial method file (one epoch).
fn tiny_method(dir: &Path, name: &str) -> PathBuf {
    let mut m: cmkm::methods::config::MethodConfig =
        cmkm::config::parse_yaml(&format!("name: {name}\nkind: supervised\nmodalities: [inertial]\n{ENCODERS}")).unwrap();
    m.encoders.retain(|k, _| k == "inertial");
    m.augmentations.clear();
    m.schedule.epochs = 1;
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, serde_yaml::to_string(&m).unwrap()).unwrap();
    path
}

/// The synthetic set's declaration, written to `dir`.
fn synthetic_declaration(dir: &Path) -> PathBuf {
    declaration_at(dir, "utd-mhad.yaml", &dataset().decl.root)
}

#[test]
fn broken_npy_and_csv_files_are_named_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mmact");
    let samples: Vec<(usize, u32, u32, u32)> = (1..=10).map(|a| (a, 1, 1, 1)).collect();
    write_mmact_fixture(&root, &samples);
    let skel = |a: usize| root.join(format!("Skeleton/a{a}_s1_t1_ses1_sc1.npy"));
    let iner = |a: usize| root.join(format!("Inertial/a{a}_s1_t1_ses1_sc1.csv"));
    // Truncated files: an .npy cut short, a CSV cut in the middle of a row.
    let bytes = std::fs::read(skel(1)).unwrap();
    std::fs::write(skel(1), &bytes[..bytes.len() - 10]).unwrap();
    let text = std::fs::read_to_string(iner(2)).unwrap();
    let cut = &text[..text.len() - 20];
    let last_line = cut.lines().count();
    std::fs::write(iner(2), cut).unwrap();
    // Wrong dtypes: complex numbers and strings.
    std::fs::write(skel(3), npy_bytes("<c16", "(17, 2, 2)", &[0u8; 17 * 2 * 2 * 16])).unwrap();
    std::fs::write(skel(4), npy_bytes("<U3", "(2,)", &[0u8; 24])).unwrap();
    // Wrong dimensions: a 2-D skeleton, an 11-column inertial table.
    std::fs::write(skel(5), npy_bytes("<f8", "(17, 50)", &[0u8; 17 * 50 * 8])).unwrap();
    let mut csv = String::from("a,b,c,d,e,f,g,h,i,j,k\n");
    (0..40).for_each(|_| csv.push_str("1,2,3,4,5,6,7,8,9,10,11\n"));
    std::fs::write(iner(6), csv).unwrap();
    // Zero-length sequences: no frames, a header without rows.
    std::fs::write(skel(7), npy_bytes("<f4", "(17, 2, 0)", &[])).unwrap();
    std::fs::write(iner(8), "pax,pay,paz,wax,way,waz,gx,gy,gz,ox,oy,oz\n").unwrap();
    // A huge declared shape with no data behind it.
    std::fs::write(skel(9), npy_bytes("<f8", "(4294967296, 4294967296, 2)", &[0u8; 64])).unwrap();

    let decl = declaration_at(dir.path(), "mmact.yaml", &root);
    let (report, failed) = inspect_failures(&decl);
    assert_eq!(report["samples"], 1, "only a10 is usable: {report:#}");
    let r = |f: &str| reason_of(&failed, f).to_string();
    assert!(r("a1_s1_t1_ses1_sc1.npy").contains("truncated") || r("a1_s1_t1_ses1_sc1.npy").contains("does not match"), "{}", r("a1_s1_t1_ses1_sc1.npy"));
    // The cut row is named by its line (1-based, header included); it ends
    // in an empty or partial cell.
    let csv_reason = r("a2_s1_t1_ses1_sc1.csv");
    assert!(
        csv_reason.contains(&format!("line {last_line}:")) && (csv_reason.contains("columns") || csv_reason.contains("non-numeric")),
        "line {last_line}: {csv_reason}"
    );
    assert!(r("a3_s1_t1_ses1_sc1.npy").contains("dtype") || r("a3_s1_t1_ses1_sc1.npy").contains("c16"), "{}", r("a3_s1_t1_ses1_sc1.npy"));
    assert!(r("a4_s1_t1_ses1_sc1.npy").contains("U3") || r("a4_s1_t1_ses1_sc1.npy").contains("dtype"), "{}", r("a4_s1_t1_ses1_sc1.npy"));
    assert!(r("a5_s1_t1_ses1_sc1.npy").contains("2 dimensions"), "{}", r("a5_s1_t1_ses1_sc1.npy"));
    assert!(r("a6_s1_t1_ses1_sc1.csv").contains("found 11 channels, declared 12"), "{}", r("a6_s1_t1_ses1_sc1.csv"));
    assert!(r("a7_s1_t1_ses1_sc1.npy").contains("0 time steps"), "{}", r("a7_s1_t1_ses1_sc1.npy"));
    assert!(r("a8_s1_t1_ses1_sc1.csv").contains("no numeric rows"), "{}", r("a8_s1_t1_ses1_sc1.csv"));
    assert!(!r("a9_s1_t1_ses1_sc1.npy").is_empty());

    // Training on it stops before any work, naming a broken file.
    let method = tiny_method(dir.path(), "m");
    let text = fails(cmkm().args(["train", "--quiet", "--dataset"]).arg(&decl).arg(&method).arg("--out").arg(dir.path().join("run")));
    assert!(text.contains("failed to load") && text.contains("_ses1_sc1."), "{text}");
}

/// A MAT file whose variable is complex: the real double array plus an
/// imaginary part, with the complex flag set.
fn complex_mat(name: &str, dims: &[usize]) -> Vec<u8> {
    let n: usize = dims.iter().product();
    let mut bytes = encode_mat_double(name, dims, &vec![1.0; n], false).unwrap();
    bytes[128 + 16 + 1] |= 0x08; // array flags: complex
    bytes.extend_from_slice(&9u32.to_le_bytes()); // miDOUBLE
    bytes.extend_from_slice(&((n * 8) as u32).to_le_bytes());
    bytes.extend(std::iter::repeat_n(0u8, n * 8));
    let size = u32::from_le_bytes(bytes[132..136].try_into().unwrap()) + 8 + (n * 8) as u32;
    bytes[132..136].copy_from_slice(&size.to_le_bytes());
    bytes
}

#[test]
fn broken_mat_files_duplicates_and_non_finite_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("utd");
    write_utd_fixture(&root, 2, 8, 1);
    let iner = |id: &str| root.join(format!("Inertial/{id}_inertial.mat"));
    // Complex data (a wrong dtype for sensor values).
    std::fs::write(iner("a1_s1_t1"), complex_mat("d_iner", &[40, 6])).unwrap();
    // Zero-length sequence and a wrong number of dimensions.
    std::fs::write(iner("a1_s2_t1"), encode_mat_double("d_iner", &[0, 6], &[], false).unwrap()).unwrap();
    std::fs::write(iner("a1_s3_t1"), encode_mat_double("d_iner", &[40, 6, 2], &vec![0.5; 480], true).unwrap()).unwrap();
    // A second name for sample a2_s1_t1.
    std::fs::copy(iner("a2_s1_t1"), iner("a02_s1_t1")).unwrap();
    std::fs::copy(root.join("Skeleton/a2_s1_t1_skeleton.mat"), root.join("Skeleton/a02_s1_t1_skeleton.mat")).unwrap();
    // NaN, and a value that overflows the f32 the models use.
    let mut values = common::wave(240, 0.0);
    values[7] = f64::NAN;
    std::fs::write(iner("a2_s2_t1"), encode_mat_double("d_iner", &[40, 6], &values, false).unwrap()).unwrap();
    values[7] = 1e300;
    std::fs::write(iner("a2_s3_t1"), encode_mat_double("d_iner", &[40, 6], &values, false).unwrap()).unwrap();

    let decl = declaration_at(dir.path(), "utd-mhad.yaml", &root);
    let (report, failed) = inspect_failures(&decl);
    let r = |f: &str| reason_of(&failed, f).to_string();
    assert!(r("a1_s1_t1_inertial.mat").contains("complex"), "{}", r("a1_s1_t1_inertial.mat"));
    assert!(r("a1_s2_t1_inertial.mat").contains("empty"), "{}", r("a1_s2_t1_inertial.mat"));
    assert!(r("a1_s3_t1_inertial.mat").contains("3 dimensions"), "{}", r("a1_s3_t1_inertial.mat"));
    let dup = r("a2_s1_t1_inertial.mat");
    assert!(dup.contains("duplicate sample") && dup.contains("a02_s1_t1"), "{dup}");
    let non_finite: Vec<String> = report["non_finite"].as_array().unwrap().iter().map(|v| v["file"].as_str().unwrap().to_string()).collect();
    assert!(
        non_finite.iter().any(|f| f.ends_with("a2_s2_t1_inertial.mat")) && non_finite.iter().any(|f| f.ends_with("a2_s3_t1_inertial.mat")),
        "{non_finite:?}"
    );

    let text = fails(cmkm().args(["train", "--quiet", "--dataset"]).arg(&decl).arg(tiny_method(dir.path(), "m")).arg("--out").arg(dir.path().join("run")));
    assert!(text.contains("failed to load") && text.contains("_inertial.mat"), "{text}");
    // Only the NaN/Inf files left: the message says so and names one.
    for f in ["a1_s1_t1", "a1_s2_t1", "a1_s3_t1", "a02_s1_t1"] {
        std::fs::remove_file(iner(f)).unwrap();
    }
    let text = fails(cmkm().args(["train", "--quiet", "--dataset"]).arg(&decl).arg(tiny_method(dir.path(), "m")).arg("--out").arg(dir.path().join("run")));
    assert!(text.contains("NaN/Inf") && text.contains("a2_s2_t1_inertial.mat"), "{text}");
}

#[test]
fn splits_with_an_empty_class_or_split_and_bad_label_fractions_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("utd");
    write_utd_fixture(&root, 2, 4, 1);
    let decl = declaration_at(dir.path(), "utd-mhad.yaml", &root);
    let yaml = std::fs::read_to_string(&decl).unwrap().replace(
        "protocols:\n",
        "protocols:\n  no_class_2:\n    train: {subjects: [1]}\n    val: {subjects: [2]}\n    test: {subjects: [3, 4]}\n  empty_val:\n    train: {subjects: [1, 2]}\n    val: {subjects: [9]}\n    test: {subjects: [3, 4]}\n  usable:\n    train: {subjects: [1, 2]}\n    val: {subjects: [3]}\n    test: {subjects: [4]}\n",
    );
    std::fs::write(&decl, yaml).unwrap();
    for f in ["Inertial/a2_s1_t1_inertial.mat", "Skeleton/a2_s1_t1_skeleton.mat"] {
        std::fs::remove_file(root.join(f)).unwrap();
    }
    let text = fails(cmkm().args(["data", "baseline", "--protocol", "no_class_2"]).arg(&decl));
    assert!(text.contains("data.yaml: protocol 'no_class_2'") && text.contains("classes [2]") && text.contains("train split"), "{text}");
    let text = fails(cmkm().args(["data", "baseline", "--protocol", "empty_val"]).arg(&decl));
    assert!(text.contains("data.yaml: protocol 'empty_val'") && text.contains("val split is empty"), "{text}");

    // Label fractions outside (0, 1] would leave classes without a label.
    tiny_method(dir.path(), "m");
    for bad in ["0.0", "1.5"] {
        let suite = dir.path().join("suite.yaml");
        std::fs::write(&suite, format!("name: s\ndataset: data.yaml\nprotocol: cross_subject\nseeds: [1]\nmethods:\n  m: {{file: m.yaml}}\nevaluations:\n  label_fractions: {{fractions: [0.5, {bad}]}}\n")).unwrap();
        let text = fails(cmkm().arg("plan").arg(&suite));
        let shown = bad.parse::<f64>().unwrap().to_string(); // 0.0 prints as 0
        assert!(text.contains("suite.yaml") && text.contains("label_fractions.fractions") && text.contains(&shown), "{text}");
    }
    // A frozen-encoder mode with nothing it applies to is not silently ignored.
    let suite = dir.path().join("suite.yaml");
    std::fs::write(
        &suite,
        "name: s\ndataset: data.yaml\nprotocol: cross_subject\nseeds: [1]\nmethods:\n  m: {file: m.yaml}\nevaluations: {retrieval: true, frozen: training}\n",
    )
    .unwrap();
    let text = fails(cmkm().arg("plan").arg(&suite));
    assert!(text.contains("suite.yaml line 7: `evaluations.frozen`: applies to fine_tuning and label_fractions"), "{text}");
    let text = fails(
        cmkm()
            .args(["evaluate", "label-fractions", "--protocol", "usable", "--fractions", "0", "--repetitions", "1", "--dataset"])
            .arg(&decl)
            .arg("--random")
            .arg(dir.path().join("m.yaml"))
            .arg("--out")
            .arg(dir.path().join("lf")),
    );
    assert!(text.contains("invalid value '0' for '--fractions") && text.contains("0 is not in (0, 1]"), "{text}");
}

#[test]
fn misspelt_yaml_keys_and_values_come_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let decl = synthetic_declaration(dir.path());
    let method = tiny_method(dir.path(), "m");
    let text = std::fs::read_to_string(&method).unwrap();
    let line = text.lines().position(|l| l.trim_start().starts_with("epochs:")).unwrap() + 1;
    std::fs::write(&method, text.replace("epochs:", "epochz:")).unwrap();
    let out = fails(cmkm().args(["train", "--dataset"]).arg(&decl).arg(&method));
    let want = format!("unknown key `epochz` under `schedule` in {} line {line}; did you mean `epochs`?", method.display());
    assert!(out.contains(&want), "want {want}\n{out}");

    std::fs::write(&method, text.replace("kind: supervised", "kind: supervized")).unwrap();
    let out = fails(cmkm().args(["train", "--dataset"]).arg(&decl).arg(&method));
    assert!(out.contains("unknown value `supervized`") && out.contains("m.yaml line") && out.contains("did you mean `supervised`?"), "{out}");

    let bad_decl = dir.path().join("bad.yaml");
    std::fs::write(&bad_decl, std::fs::read_to_string(&decl).unwrap().replace("main_metric:", "main_metrc:")).unwrap();
    let out = fails(cmkm().args(["data", "inspect"]).arg(&bad_decl));
    assert!(out.contains("unknown key `main_metrc` in") && out.contains("bad.yaml line") && out.contains("did you mean `main_metric`?"), "{out}");

    // A CMC-CMKM switch in a CMC method would be ignored: it is an error
    // naming the file, the line and the key.
    let cmc = dir.path().join("cmc.yaml");
    std::fs::write(
        &cmc,
        std::fs::read_to_string(common::experiments().join("methods/cmc.yaml"))
            .unwrap()
            .replace("loss: {temperature: 0.1}", "loss:\n  temperature: 0.1\n  mining_k: 3"),
    )
    .unwrap();
    let line = std::fs::read_to_string(&cmc).unwrap().lines().position(|l| l.contains("mining_k: 3")).unwrap() + 1;
    let out = fails(cmkm().args(["train", "--dataset"]).arg(&decl).arg(&cmc));
    let want = format!("unknown key `mining_k` under `loss` in {} line {line}", cmc.display());
    assert!(out.contains(&want) && out.contains("CMC-CMKM switches"), "want {want}\n{out}");

    let suite = dir.path().join("suite.yaml");
    std::fs::write(&suite, "name: s\ndataset: data.yaml\nprotocol: cross_subject\nseed: [1]\nmethods: {}\n").unwrap();
    let out = fails(cmkm().arg("plan").arg(&suite));
    assert!(out.contains("unknown key `seed` in") && out.contains("suite.yaml line 4; did you mean `seeds`?"), "{out}");
}

#[test]
fn missing_or_corrupt_checkpoints_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let decl = synthetic_declaration(dir.path());
    // CMC-CMKM naming SimCLR runs that do not exist.
    let mut m: cmkm::methods::config::MethodConfig =
        cmkm::config::parse_yaml(&format!("name: k\nkind: cmkm\nmodalities: [inertial, skeleton]\nloss: {{temperature: 0.1, mining_k: 1}}\npretrained: {{inertial: nowhere/si, skeleton: nowhere/ss}}\n{ENCODERS}")).unwrap();
    m.schedule.epochs = 1;
    let method = dir.path().join("k.yaml");
    std::fs::write(&method, serde_yaml::to_string(&m).unwrap().replace(&format!("{}/", dir.path().display()), "")).unwrap();
    let text = fails(cmkm().args(["train", "--quiet", "--dataset"]).arg(&decl).arg(&method).arg("--out").arg(dir.path().join("k")));
    assert!(text.contains("nowhere/si") || text.contains("nowhere/ss"), "{text}");

    // A real run whose checkpoint is then truncated, then deleted.
    let run = dir.path().join("run");
    let out = cmkm().args(["train", "--quiet", "--dataset"]).arg(&decl).arg(tiny_method(dir.path(), "m")).arg("--out").arg(&run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ckpt = run.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ckpt).unwrap();
    for cut in [bytes.len() / 2, 12, 3] {
        std::fs::write(&ckpt, &bytes[..cut]).unwrap();
        let text = fails(cmkm().args(["evaluate", "retrieval", "--dataset"]).arg(&decl).arg("--run").arg(&run));
        assert!(text.contains("checkpoint.safetensors"), "cut at {cut}: {text}");
    }
    std::fs::remove_file(&ckpt).unwrap();
    let text = fails(cmkm().args(["evaluate", "fine-tune", "--dataset"]).arg(&decl).arg("--run").arg(&run));
    assert!(text.contains("checkpoint.safetensors: checkpoint not found"), "{text}");
    let text = fails(cmkm().args(["evaluate", "fine-tune", "--dataset"]).arg(&decl).arg("--run").arg(dir.path().join("no-such-run")));
    assert!(text.contains("no-such-run"), "{text}");
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

#[test]
fn unwritable_results_are_reported_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let decl = synthetic_declaration(dir.path());
    let method = tiny_method(dir.path(), "m");
    // A results path under a regular file cannot be created, even by root.
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "not a folder").unwrap();
    let start = std::time::Instant::now();
    let text = fails(cmkm().args(["train", "--quiet", "--dataset"]).arg(&decl).arg(&method).arg("--out").arg(blocker.join("run")));
    assert!(text.contains("a-file/run") && text.contains("cannot create the output folder"), "{text}");
    assert!(start.elapsed().as_secs() < 30, "reported before training");
    std::fs::write(dir.path().join("suite.yaml"), "name: s\ndataset: data.yaml\nprotocol: cross_subject\nseeds: [1]\nmethods:\n  m: {file: m.yaml}\n").unwrap();
    let text = fails(cmkm().args(["reproduce", "--quiet", "--results"]).arg(&blocker).arg(dir.path().join("suite.yaml")));
    assert!(text.contains("a-file:") && text.contains("cannot create the output folder"), "{text}");
    // A read-only folder: permissions do not bind root, so only when not root.
    if running_as_root() {
        eprintln!("skipping the read-only folder variant: running as root, where chmod does not deny writes (the regular-file variant above covers it)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let ro = dir.path().join("read-only");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let text = fails(cmkm().args(["train", "--quiet", "--dataset"]).arg(&decl).arg(&method).arg("--out").arg(&ro));
    assert!(text.contains("read-only") && text.contains("not writable"), "{text}");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn full_disk_writes_are_errors_naming_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let decl = synthetic_declaration(dir.path());
    // Standard output on a full device (/dev/full answers ENOSPC).
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let text = fails(cmkm().args(["data", "inspect", "--json"]).arg(&decl).stdout(full()));
    assert!(text.contains("cannot write to standard output") && text.contains("No space left"), "{text}");
    tiny_method(dir.path(), "m");
    std::fs::write(dir.path().join("suite.yaml"), "name: s\ndataset: data.yaml\nprotocol: cross_subject\nseeds: [1]\nmethods:\n  m: {file: m.yaml}\n").unwrap();
    let text = fails(cmkm().arg("plan").arg(dir.path().join("suite.yaml")).stdout(full()));
    assert!(text.contains("cannot write to standard output"), "{text}");
    // Files: a file-size limit (no root needed) makes the first large write
    // fail with EFBIG, the way a full disk fails it with ENOSPC. SIGXFSZ is
    // ignored so the write returns the error instead of killing the process.
    let out_dir = dir.path().join("synth");
    let script = format!("ulimit -f 16 && trap '' XFSZ && exec '{}' synth --out '{}'", env!("CARGO_BIN_EXE_cmkm"), out_dir.display());
    let text = fails(Command::new("sh").arg("-c").arg(&script));
    assert!(text.contains(&out_dir.display().to_string()) && text.contains("File too large"), "{text}");
    // No partial file is left in place: every MAT file present is complete.
    for sub in ["Inertial", "Skeleton"] {
        for e in std::fs::read_dir(out_dir.join(sub)).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".mat") {
                let var = if sub == "Inertial" { "d_iner" } else { "d_skel" };
                cmkm::data::formats::mat::read_mat_variable(&e.path(), var).unwrap_or_else(|err| panic!("partial file {name}: {err:#}"));
            }
        }
    }
}

#[test]
fn bench_names_an_unknown_figure_group_before_any_work() {
    let text = fails(Command::new(env!("CARGO_BIN_EXE_cmkm")).args(["bench", "--only", "cmc,kernel", "--dataset", "/nonexistent.yaml"]));
    assert!(text.contains("unknown figure group \"kernel\"") && text.contains("kernels"), "{text}");
}

#[test]
fn frozen_training_mode_where_no_frozen_encoder_trains_a_head_is_an_error() {
    let bin = env!("CARGO_BIN_EXE_cmkm");
    for args in [
        &["evaluate", "retrieval", "--run", "/nonexistent", "--frozen", "training"][..],
        &["evaluate", "fine-tune", "--run", "/nonexistent", "--full", "--frozen", "training"][..],
        &["evaluate", "label-fractions", "--supervised", "/nonexistent.yaml", "--frozen", "training"][..],
    ] {
        let text = fails(Command::new(bin).args(args));
        assert!(text.contains("--frozen applies to frozen encoders"), "{args:?}: {text}");
    }
}

/// A suite setting that would fail a run hours in fails `cmkm plan` (and
/// `cmkm reproduce`, before any run) with the file, the key's line and the
/// key. (edit of the tiny suite, or of one of its method files; the line and
/// key the error must name; words of the message).
#[test]
fn suite_settings_that_would_fail_a_run_fail_at_plan_with_file_line_and_key() {
    type Edit = (&'static str, &'static str, &'static str);
    let cases: [(&str, Edit, usize, &str, &str); 16] = [
        ("epochs 0 in fine-tuning", ("suite", "fine_tuning: {epochs: 2}", "fine_tuning: {epochs: 0}"), 11, "evaluations.fine_tuning.epochs", "at least 1"),
        ("0 repetitions", ("suite", "repetitions: 1", "repetitions: 0"), 13, "evaluations.label_fractions.repetitions", "at least 1"),
        ("0 label-fraction epochs", ("suite", "epochs: 2, baselines", "epochs: 0, baselines"), 13, "evaluations.label_fractions.epochs", "at least 1"),
        ("a repeated fraction", ("suite", "fractions: [0.5]", "fractions: [0.5, 0.5]"), 13, "evaluations.label_fractions.fractions", "listed twice"),
        ("suite epochs 0", ("suite", "supervised]}\n", "supervised]}\nepochs: 0\n"), 14, "epochs", "at least 1"),
        ("a repeated seed", ("suite", "seeds: [3]", "seeds: [3, 3]"), 4, "seeds", "listed twice"),
        (
            "a claim naming a missing method",
            ("suite", "evaluations:", "claims:\n  - {a: cmkm, b: ss}\n  - {a: cmkm, b: nothere}\nevaluations:"),
            12,
            "claims.b",
            "`nothere`, which is not a method",
        ),
        ("a claim of a method over itself", ("suite", "evaluations:", "claims:\n  - {a: cmkm, b: cmkm}\nevaluations:"), 11, "claims.b", "with itself"),
        (
            "a miner of the other modality",
            ("suite", "{inertial: si, skeleton: ss}", "{inertial: ss, skeleton: ss}"),
            9,
            "methods.cmkm.pretrained",
            "not 'inertial' alone",
        ),
        ("a missing miner", ("suite", "{inertial: si, skeleton: ss}", "{inertial: si}"), 9, "methods.cmkm.pretrained", "for modality 'skeleton'"),
        (
            "a miner that is no method",
            ("suite", "{inertial: si, skeleton: ss}", "{inertial: si, skeleton: sss}"),
            9,
            "methods.cmkm.pretrained",
            "`sss`, which is not a method",
        ),
        (
            "a miner for a method that reads none",
            ("suite", "sup: {file: sup.yaml}", "sup: {file: sup.yaml, pretrained: {skeleton: ss}}"),
            6,
            "methods.sup.pretrained",
            "reads no pretrained",
        ),
        ("an unknown protocol", ("suite", "protocol: cross_subject", "protocol: cross_subjekt"), 3, "protocol", "no protocol 'cross_subjekt'"),
        (
            "baselines without a supervised method",
            ("suite", "  sup: {file: sup.yaml}\n", ""),
            12,
            "evaluations.label_fractions.baselines",
            "the suite has none",
        ),
        ("a batch larger than the train split", ("si.yaml", "batch_size: ", "batch_size: 100000 #"), 7, "methods.si.file", "batch_size 100000 exceeds"),
        ("0 epochs in a method file", ("ss.yaml", "epochs: ", "epochs: 0 #"), 8, "methods.ss.file", "need epochs >= 1"),
    ];
    for (what, (file, from, to), line, key, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let suite = common::write_tiny_suite(dir.path(), 0.003);
        let path = if file == "suite" { suite.clone() } else { dir.path().join(file) };
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{what}: {from:?} not in {text}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let results = dir.path().join("results");
        let message = fails(cmkm().arg("plan").arg(&suite).arg("--results").arg(&results));
        let expected = format!("suite.yaml line {line}: `{key}`: ");
        assert!(message.contains(&expected) && message.contains(says), "{what}: expected {expected:?} and {says:?} in {message}");
        let message = fails(cmkm().args(["reproduce", "--quiet", "--jobs", "1", "--results"]).arg(&results).arg(&suite));
        assert!(message.contains(&expected), "{what}: reproduce: {message}");
        assert!(!results.join("runs").exists(), "{what}: a run started");
    }
}

/// The CLI flags get the suite's checks.
#[test]
fn command_line_counts_and_fractions_out_of_range_are_refused_by_the_parser() {
    for args in [
        &["evaluate", "fine-tune", "--run", "x", "--epochs", "0"][..],
        &["train", "m.yaml", "--epochs", "0"],
        &["evaluate", "label-fractions", "--run", "x", "--repetitions", "0"],
        &["evaluate", "label-fractions", "--run", "x", "--fractions", "0.5,1.5"],
    ] {
        let out = cmkm().args(args).output().unwrap();
        let text = check_failed(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: clap's usage status: {text}");
        assert!(text.contains("invalid value"), "{args:?}: {text}");
    }
}
