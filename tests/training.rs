//! Every method trains from YAML on the synthetic data (release mode, tiny
//! models and epochs): the loss goes down, a repeat with the same seed gives
//! identical curves, checkpoints reload bit-identically, and frozen encoders
//! neither learn nor update their batch-norm statistics.

use crate::common;

use common::{dataset, method, run, ENCODERS};

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use cmkm::methods::config::MethodConfig;
use cmkm::methods::{train, TrainOptions};
use cmkm::models::{Encoder, EncoderConfig, InputShape};
use cmkm::training::checkpoint;
use std::path::{Path, PathBuf};

/// Trains `m` twice with the same seed: the loss must fall and both runs
/// must log identical losses and metrics.
fn trains_and_repeats(m: &MethodConfig, root: &Path) -> PathBuf {
    let a = root.join(format!("{}-a", m.name));
    let b = root.join(format!("{}-b", m.name));
    let first = run(m, &a);
    assert!(first.last_train_loss < first.first_train_loss, "{}: loss did not fall: {first:?}", m.name);
    let second = run(m, &b);
    let losses = |dir: &Path| -> Vec<String> {
        std::fs::read_to_string(dir.join("curves.csv")).unwrap().lines().map(|l| l.split(',').take(5).collect::<Vec<_>>().join(",")).collect()
    };
    assert_eq!(losses(&a), losses(&b), "{}: repeat differs", m.name);
    assert_eq!(first.test.as_ref().map(|t| t.accuracy), second.test.as_ref().map(|t| t.accuracy));
    for f in ["checkpoint.safetensors", "run.yaml", "curves.csv", "timings.json"] {
        assert!(a.join(f).is_file(), "{}: no {f}", m.name);
    }
    a
}

#[test]
fn supervised_methods_train_and_repeat() {
    let root = tempfile::tempdir().unwrap();
    let skel = method("name: sup-skel\nkind: supervised\nmodalities: [skeleton]", &["skeleton"]);
    let dir = trains_and_repeats(&skel, root.path());
    let preds = std::fs::read_to_string(dir.join("predictions.csv")).unwrap();
    assert!(preds.starts_with("sample_id,label,prediction\n") && preds.lines().count() == 431);
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    assert!(metrics["accuracy"].as_f64().unwrap() > 1.0 / 27.0, "better than chance: {metrics}");
    let fused = method("name: sup-fusion\nkind: supervised\nmodalities: [inertial, skeleton]", &["inertial", "skeleton"]);
    trains_and_repeats(&fused, root.path());
}

#[test]
fn self_supervised_methods_train_and_repeat() {
    let root = tempfile::tempdir().unwrap();
    let si = trains_and_repeats(&method("name: simclr-i\nkind: simclr\nmodalities: [inertial]\nloss: {temperature: 0.1}", &["inertial"]), root.path());
    let ss = trains_and_repeats(&method("name: simclr-s\nkind: simclr\nmodalities: [skeleton]\nloss: {temperature: 0.5}", &["skeleton"]), root.path());
    let both = ["inertial", "skeleton"];
    let cmc = trains_and_repeats(&method("name: cmc\nkind: cmc\nmodalities: [inertial, skeleton]\nloss: {temperature: 0.1}", &both), root.path());
    // Loading a run draws nothing from burn's process-wide generator (a
    // load outside the training lock would shift a training running
    // alongside in the same process).
    {
        let _exclusive = cmkm::training::exclusive();
        let device = Device::flex();
        let draw = || Tensor::<1>::random([4], Distribution::Uniform(0.0, 1.0), &device).into_data();
        device.seed(9);
        let expected = draw();
        device.seed(9);
        cmkm::methods::load_run(&cmc, dataset().decl.classes.len(), &device).unwrap();
        assert_eq!(draw(), expected, "loading the CMC run drew from the generator");
    }
    let mut cmkm = method("name: cmkm\nkind: cmkm\nmodalities: [inertial, skeleton]\nloss: {temperature: 0.1, mining_k: 1, intra_lambda: 1.0}", &both);
    cmkm.pretrained.insert("inertial".into(), si.clone());
    cmkm.pretrained.insert("skeleton".into(), ss.clone());
    let dir = trains_and_repeats(&cmkm, root.path());
    // CMC-CMKM logs the mean similarity of mined positives and of negatives.
    let header = std::fs::read_to_string(dir.join("curves.csv")).unwrap();
    assert!(header.lines().next().unwrap().ends_with("negative_similarity,positive_similarity"), "{header}");
    // Swapped pretrained runs are caught before training.
    cmkm.pretrained.insert("inertial".into(), ss);
    let opts = TrainOptions { protocol: "cross_subject".into(), seed: 5, out: root.path().join("bad"), quiet: true, train_subset: None };
    let err = format!("{:#}", train(&cmkm, dataset(), &opts).unwrap_err());
    assert!(err.contains("not modality 'inertial'"), "{err}");
}

/// VICReg and Barlow Twins, registered methods like the others: each trains
/// on one modality (two augmented views) and across two modalities, and the
/// protocols get the encoders back (with projection heads when cross-modal).
#[test]
fn vicreg_and_barlow_twins_train_unimodally_and_across_modalities() {
    let root = tempfile::tempdir().unwrap();
    let both = ["inertial", "skeleton"];
    let classes = dataset().decl.classes.len();
    for kind in ["vicreg", "barlow_twins"] {
        let one = trains_and_repeats(&method(&format!("name: {kind}-i\nkind: {kind}\nmodalities: [inertial]"), &["inertial"]), root.path());
        let two = trains_and_repeats(&method(&format!("name: {kind}-x\nkind: {kind}\nmodalities: [inertial, skeleton]"), &both), root.path());
        let (_, parts) = cmkm::methods::load_run(&one, classes, &Device::flex()).unwrap();
        assert!(parts.encoders.len() == 1 && parts.projections.is_none(), "{kind}: one encoder, no shared space");
        let (_, parts) = cmkm::methods::load_run(&two, classes, &Device::flex()).unwrap();
        assert!(parts.encoders.len() == 2 && parts.projections.as_ref().is_some_and(|p| p.len() == 2), "{kind}: two encoders and projections");
    }
}

#[test]
fn method_declarations_are_checked() {
    let decl = &dataset().decl;
    let m = method("name: x\nkind: cmkm\nmodalities: [inertial, skeleton]\nloss: {temperature: 0.1}", &["inertial", "skeleton"]);
    assert!(m.validate(decl).unwrap_err().to_string().contains("pretrained"));
    let m = method("name: x\nkind: simclr\nmodalities: [inertial, skeleton]\nloss: {temperature: 0.1}", &["inertial", "skeleton"]);
    assert!(m.validate(decl).unwrap_err().to_string().contains("needs 1..=1 modalities"));
    let m = method("name: x\nkind: simclr\nmodalities: [depth]", &[]);
    assert!(m.validate(decl).unwrap_err().to_string().contains("no modality 'depth'"));
    // Each kind reads its own loss settings and rejects the others'.
    let error = |head: &str, modalities: &[&str]| format!("{:#}", method(head, modalities).validate(decl).unwrap_err());
    let err = error("name: x\nkind: vicreg\nmodalities: [inertial]\nloss: {temperature: 0.1}", &["inertial"]);
    assert!(err.contains("unknown field `temperature`") && err.contains("`vicreg`"), "{err}");
    let err = error("name: x\nkind: barlow_twins\nmodalities: [inertial, skeleton]\nloss: {lambda: -1.0}", &["inertial", "skeleton"]);
    assert!(err.contains("lambda must be finite and >= 0"), "{err}");
    let err = error("name: x\nkind: supervised\nmodalities: [inertial]\nloss: {temperature: 0.1}", &["inertial"]);
    assert!(err.contains("no `loss` settings"), "{err}");
    let err = error(
        "name: x\nkind: cmc\nmodalities: [inertial, skeleton]\nloss: {temperature: 0.1}\npretrained: {inertial: a, skeleton: b}",
        &["inertial", "skeleton"],
    );
    assert!(err.contains("reads no pretrained encoders"), "{err}");
    let err = error("name: x\nkind: vicreg\nmodalities: [inertial, skeleton, inertial]", &["inertial", "skeleton"]);
    assert!(err.contains("needs 1..=2 modalities"), "{err}");
    let err = error("name: x\nkind: byol\nmodalities: [inertial]", &["inertial"]);
    assert!(err.contains("unknown value `byol` for `kind`") && err.contains("`barlow_twins`"), "{err}");
    let err = cmkm::config::parse_yaml::<MethodConfig>(&format!("name: x\nkind: cmc\nmodalities: [a]\nlos: 1\n{ENCODERS}")).unwrap_err().to_string();
    assert!(err.contains("los"), "{err}");
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    for f in std::fs::read_dir(experiments.join("methods")).unwrap() {
        let f = f.unwrap().path();
        if f.is_dir() {
            continue; // dataset-specific variants, checked through their suites below
        }
        let m = MethodConfig::from_file(&f).unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
        if m.kind != "cmkm" {
            m.validate(decl).unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
        }
    }
    // Every shipped suite reads, with every method file it names.
    let mut suites = 0;
    for f in std::fs::read_dir(&experiments).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "yaml") {
            cmkm::harness::suite::Suite::from_file(&f).unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
            suites += 1;
        }
    }
    assert!(suites >= 4, "paper-utd, two MMAct suites, quick-utd");
}

fn small_encoder(device: &Device) -> (Encoder, InputShape) {
    let shape = InputShape { channels: 6, frames: 50, joints: 1 };
    let cfg: EncoderConfig = cmkm::config::parse_yaml("{type: cnn_transformer, channels: [8, 16], feed_forward: 32, layers: 1}").unwrap();
    (cfg.init(shape, device).unwrap(), shape)
}

fn input(shape: InputShape, device: &Device) -> Tensor<4> {
    Tensor::random([8, shape.channels, shape.frames, shape.joints], Distribution::Normal(0.0, 1.0), device)
}

#[test]
fn checkpoints_reload_bit_identically_and_modes_switch() {
    let _rng = cmkm::training::exclusive();
    let device = Device::flex().autodiff();
    device.seed(1);
    let (enc, shape) = small_encoder(&device);
    let x = input(shape, &device);
    // Training mode: dropout makes two passes differ, batch norm learns statistics.
    let a = enc.forward(x.clone()).try_into_vec_as::<f32>().unwrap();
    let b = enc.forward(x.clone()).try_into_vec_as::<f32>().unwrap();
    assert_ne!(a, b, "dropout is active in training");
    let eval = enc.valid();
    let plain = x.clone().without_autodiff();
    let e1 = eval.forward(plain.clone()).try_into_vec_as::<f32>().unwrap();
    assert_eq!(e1, eval.forward(plain.clone()).try_into_vec_as::<f32>().unwrap(), "evaluation is deterministic");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enc.safetensors");
    checkpoint::save(&eval, &path).unwrap();
    device.seed(2);
    let (other, _) = small_encoder(&Device::flex());
    let loaded = checkpoint::load(other, &path).unwrap().valid();
    assert_eq!(e1, loaded.forward(plain).try_into_vec_as::<f32>().unwrap(), "reloaded model gives bit-identical outputs");
    assert!(checkpoint::load(small_encoder(&Device::flex()).0, &dir.path().join("missing.safetensors")).unwrap_err().to_string().contains("not found"));
}

#[derive(Module, Debug)]
struct Probe {
    encoder: Encoder,
    head: Linear,
}

/// Every float parameter and buffer (batch-norm statistics) of a module.
fn values<M: Module>(m: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(param.val().try_into_vec_as::<f32>().unwrap());
        }
    }
    let mut c = Collect(vec![]);
    m.visit(&mut c);
    c.0
}

#[test]
fn frozen_encoders_receive_no_updates() {
    let _rng = cmkm::training::exclusive();
    let device = Device::flex().autodiff();
    device.seed(3);
    let (encoder, shape) = small_encoder(&device);
    let mut probe = Probe { encoder: encoder.freeze(), head: LinearConfig::new(46 * 16, 4).init(&device) };
    // Materialise the lazily initialised parameters before taking the snapshot.
    probe.head.forward(probe.encoder.forward(input(shape, &device)));
    let before = (values(&probe.encoder), values(&probe.head));
    let mut optim = AdamConfig::new().init();
    for _ in 0..3 {
        let logits = probe.head.forward(probe.encoder.forward(input(shape, &device)));
        let loss = logits.square().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &probe);
        probe = optim.step(1e-2, probe, grads);
    }
    let after = (values(&probe.encoder), values(&probe.head));
    assert!(before.0 == after.0, "frozen encoder weights and batch-norm statistics changed");
    assert!(before.1 != after.1, "the head did not train");
}

/// A toy objective whose loss stays finite (zero) at epoch 2 while its
/// gradient is infinite: d sqrt(u)/du at u = 0.
struct SqrtAtZero;

impl cmkm::training::Objective for SqrtAtZero {
    type Model = Linear;
    fn step(&self, model: &Linear, _batch: &[usize], epoch: u64) -> cmkm::training::StepOutput {
        let device = model.weight.val().device();
        let y = model.forward(Tensor::<2>::random([4, 3], Distribution::Default, &device));
        let loss = if epoch == 1 { (y.clone() - y.detach()).sqrt().sum() } else { y.square().mean().reshape([1]) };
        cmkm::training::StepOutput::new(loss.reshape([1]), vec![])
    }
    fn validate(&self, _model: &Linear) -> cmkm::training::Validation {
        cmkm::training::Validation { loss: 1.0, metric: None }
    }
}

#[test]
fn a_non_finite_gradient_stops_training_with_epoch_and_batch() {
    let _rng = cmkm::training::exclusive();
    let device = Device::flex().autodiff();
    device.seed(1);
    let model = LinearConfig::new(3, 2).init(&device);
    let schedule = method("name: x\nkind: supervised\nmodalities: [skeleton]", &["skeleton"]).schedule;
    let progress = cmkm::training::Progress { label: "toy".into(), quiet: true };
    let train: Vec<usize> = (0..64).collect();
    let err = match cmkm::training::fit(&SqrtAtZero, model, &train, &schedule, cmkm::training::FitRules::SelfSupervised, 0, &progress) {
        Ok(_) => panic!("an infinite gradient must stop training"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("gradients became non-finite") && err.contains("at epoch 2, batch 1") && err.contains("the loss was 0"), "{err}");
}

#[test]
fn gradient_clipping_is_a_schedule_switch_that_changes_training_and_stays_deterministic() {
    let root = tempfile::tempdir().unwrap();
    let mut m = method("name: clip\nkind: supervised\nmodalities: [skeleton]", &["skeleton"]);
    m.schedule.epochs = 2;
    let yaml = serde_yaml::to_string(&m).unwrap();
    assert!(!yaml.contains("grad_clip_norm"), "off by default, and absent so run ids do not change");
    let curves = |dir: &Path| -> Vec<String> {
        std::fs::read_to_string(dir.join("curves.csv")).unwrap().lines().map(|l| l.split(',').take(5).collect::<Vec<_>>().join(",")).collect()
    };
    run(&m, &root.path().join("plain"));
    let parsed: MethodConfig = cmkm::config::parse_yaml(&yaml.replace("batch_size:", "grad_clip_norm: 0.05\n  batch_size:")).unwrap();
    assert_eq!(parsed.schedule.grad_clip_norm, Some(0.05));
    let a = run(&parsed, &root.path().join("clip-a"));
    let b = run(&parsed, &root.path().join("clip-b"));
    assert_ne!(curves(&root.path().join("plain")), curves(&root.path().join("clip-a")), "clipping changes training");
    assert_eq!(curves(&root.path().join("clip-a")), curves(&root.path().join("clip-b")), "same seed, same curves");
    let metrics = |d: &str| std::fs::read_to_string(root.path().join(d).join("metrics.json")).unwrap();
    assert_eq!(metrics("clip-a"), metrics("clip-b"), "bit-identical metrics");
    assert!(a.last_train_loss.is_finite() && a.best_val_loss.is_finite() && b.last_train_loss == a.last_train_loss);
    let mut bad = parsed.clone();
    bad.schedule.grad_clip_norm = Some(-1.0);
    let err = bad.validate(&dataset().decl).unwrap_err().to_string();
    assert!(err.contains("grad_clip_norm"), "{err}");
}
