//! Encoders and heads: output sizes computed from the configuration match
//! the real forward pass (docs/method.md: 256 for the co-occurrence encoder on
//! 3 x 50 x 20, 5632 for the CNN-Transformer on 6 x 50), and batch norm and
//! dropout switch between training and evaluation.

use burn::prelude::*;
use burn::tensor::Distribution;
use cmkm::models::{EncoderConfig, InputShape};

fn config(yaml: &str) -> EncoderConfig {
    cmkm::config::parse_yaml(yaml).unwrap()
}

fn features(cfg: &EncoderConfig, shape: InputShape, device: &Device) -> [usize; 2] {
    let enc = cfg.init(shape, device).unwrap();
    let x = Tensor::<4>::random([3, shape.channels, shape.frames, shape.joints], Distribution::Normal(0.0, 1.0), device);
    enc.forward(x).dims()
}

#[test]
fn output_sizes_match_spec_and_forward() {
    let _rng = cmkm::training::exclusive();
    let device = Device::flex();
    device.seed(0);
    let skeleton = InputShape { channels: 3, frames: 50, joints: 20 };
    let inertial = InputShape { channels: 6, frames: 50, joints: 1 };
    let co = config("type: co_occurrence");
    assert_eq!(co.output_size(skeleton).unwrap(), 256);
    assert_eq!(features(&co, skeleton, &device), [3, 256]);
    let ct = config("type: cnn_transformer");
    assert_eq!(ct.output_size(inertial).unwrap(), 5632);
    assert_eq!(features(&ct, inertial, &device), [3, 5632]);
    let c1 = config("type: cnn1d");
    assert_eq!(c1.output_size(inertial).unwrap(), 6400);
    assert_eq!(features(&c1, inertial, &device), [3, 6400]);
    // Sizes follow the YAML: a small co-occurrence net on 2-D MMAct skeletons.
    let small = config("{type: co_occurrence, point_channels: 8, temporal_channels: 16, cooccurrence_channels: [8, 8], fused_channels: [16]}");
    let mmact = InputShape { channels: 2, frames: 50, joints: 17 };
    let n = small.output_size(mmact).unwrap();
    assert_eq!(features(&small, mmact, &device), [3, n]);
    let small_ct = config("{type: cnn_transformer, channels: [8, 16], kernel: 3, padding: 0, feed_forward: 32}");
    assert_eq!(small_ct.output_size(inertial).unwrap(), 46 * 16);
    assert_eq!(features(&small_ct, inertial, &device), [3, 46 * 16]);
}

#[test]
fn impossible_sizes_are_errors_not_panics() {
    let co = config("type: co_occurrence");
    let e = co.output_size(InputShape { channels: 3, frames: 12, joints: 20 }).unwrap_err().to_string();
    assert!(e.contains("shorter"), "{e}");
    let ct = config("type: cnn_transformer");
    assert!(ct.output_size(InputShape { channels: 3, frames: 50, joints: 20 }).unwrap_err().to_string().contains("co_occurrence"));
    assert!(config("{type: cnn_transformer, channels: [8, 15]}").output_size(InputShape { channels: 6, frames: 50, joints: 1 }).is_err());
    let err = cmkm::config::parse_yaml::<EncoderConfig>("{type: cnn1d, kernal: 3}").unwrap_err().to_string();
    assert!(err.contains("kernal"), "{err}");
}

/// `cmkm bench` times each method through its `Method` implementation and
/// turns the FLOP counts into rates against the measured peak: the
/// supervised and CMC-CMKM (its miners included) step and validation
/// figures are there, and a sane share of the peak (a count off by a
/// factor, or a peak timed wrongly, would put them far outside).
#[test]
fn bench_reports_flop_rates_against_the_peak() {
    let dataset = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/datasets/synthetic-utd.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cmkm"))
        .args(["bench", "--json", "--steps", "1", "--only", "supervised_multimodal,cmkm", "--dataset"])
        .arg(&dataset)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let peak = json["peak_gflop_per_s"].as_f64().unwrap();
    for figure in ["supervised_multimodal", "cmkm"].iter().flat_map(|m| [format!("{m}_step_gflop_per_s"), format!("{m}_validation_gflop_per_s")]) {
        let figure = figure.as_str();
        let rate = json[figure].as_f64().unwrap_or_else(|| panic!("{figure} missing from {json}"));
        assert!(rate > 0.02 * peak && rate < 1.5 * peak, "{figure}: {rate} GFLOP/s against a peak of {peak}");
    }
}
