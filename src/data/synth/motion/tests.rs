//! Physical and structural checks of the generator.

use super::actions::Action;
use super::body::{forward_kinematics, BONES};
use super::imu::{self, ImuNoise, SensorSite};
use super::math::{norm, rot_y, sub, Mat3, Vec3};
use super::pose::Pose;
use super::subject::{Performance, Subject};
use super::*;
use crate::rng::stream;

fn close(a: &Pose, b: &Pose) -> bool {
    a.to_array().iter().zip(b.to_array()).all(|(x, y)| (x - y).abs() < 1e-12)
}

#[test]
fn bone_lengths_are_constant_for_a_subject() {
    for subject in 1..=NUM_SUBJECTS {
        let person = Subject::new(7, subject);
        let mut lengths: Option<Vec<f64>> = None;
        for action in Action::ALL {
            let performance = Performance::new(7, &person, action, subject, 1);
            for k in 0..40 {
                let t = performance.duration_s() * k as f64 / 39.0;
                let joints = forward_kinematics(&person.body, &performance.pose_at(t)).joints;
                let now: Vec<f64> = BONES.iter().map(|&(a, b)| norm(sub(joints[a], joints[b]))).collect();
                let reference = lengths.get_or_insert_with(|| now.clone());
                assert!(now.iter().zip(reference.iter()).all(|(x, y)| (x - y).abs() < 1e-9), "{action:?} at {t}");
            }
        }
    }
}

#[test]
fn counter_clockwise_circle_and_stand_to_sit_are_time_reversals() {
    for k in 0..=200 {
        let u = k as f64 / 200.0;
        assert!(close(&Action::DrawCircleCcw.pose(u), &Action::DrawCircleCw.pose(1.0 - u)));
        assert!(close(&Action::Stand2Sit.pose(u), &Action::Sit2Stand.pose(1.0 - u)));
    }
}

#[test]
fn swipes_sweep_in_opposite_directions_along_mirrored_paths() {
    let azimuth = |action: Action, u: f64| action.pose(u).right_arm.azimuth.to_degrees();
    assert!(azimuth(Action::SwipeLeft, 0.35) > 40.0 && azimuth(Action::SwipeLeft, 0.62) < -30.0);
    assert!(azimuth(Action::SwipeRight, 0.35) < -30.0 && azimuth(Action::SwipeRight, 0.62) > 40.0);
    for k in 0..=100 {
        let u = k as f64 / 100.0;
        let (left, right) = (Action::SwipeLeft.pose(u), Action::SwipeRight.pose(u));
        assert!((left.right_arm.elevation - right.right_arm.elevation).abs() < 1e-12);
        assert!((left.trunk_yaw + right.trunk_yaw).abs() < 1e-12);
    }
}

#[test]
fn actions_start_and_end_at_rest() {
    for action in Action::ALL {
        let seated = matches!(action, Action::Sit2Stand | Action::Stand2Sit);
        for u in [0.0, 1.0] {
            let at_rest = close(&action.pose(u), &Pose::rest());
            assert!(at_rest || (seated && u == if action == Action::Sit2Stand { 0.0 } else { 1.0 }), "{action:?} at {u}");
        }
    }
}

fn quiet_stream() -> crate::rng::Stream {
    stream(0, "test", 0)
}

#[test]
fn static_sensor_reads_one_g_and_no_rotation() {
    let body = forward_kinematics(&Subject::new(3, 2).body, &Action::ArmCross.pose(0.5));
    let tilted: Mat3 = super::math::mul(&rot_y(0.3), &super::math::rot_x(0.7));
    for site in [SensorSite::RightWrist, SensorSite::RightThigh] {
        let pose = site.sensor_pose(&body, &tilted);
        let rows = imu::record(|_| pose, 20, 50.0, &ImuNoise::NONE, &mut quiet_stream());
        for row in rows {
            assert!((norm([row[0], row[1], row[2]]) - 1.0).abs() < 1e-6);
            assert!(norm([row[3], row[4], row[5]]) < 1e-6);
        }
    }
}

#[test]
fn sensor_on_a_turntable_reads_the_turn_rate_and_centripetal_force() {
    let (rate_dps, radius) = (120.0f64, 0.5);
    let omega = rate_dps.to_radians();
    let sensor_at = |t: f64| -> (Vec3, Mat3) {
        let turn = rot_y(omega * t);
        (super::math::mul_vec(&turn, [radius, 1.0, 0.0]), turn)
    };
    for row in imu::record(sensor_at, 50, 50.0, &ImuNoise::NONE, &mut quiet_stream()) {
        assert!((row[4] - rate_dps).abs() < 1e-3 && row[3].abs() < 1e-6 && row[5].abs() < 1e-6);
        // Specific force = centripetal acceleration (towards the axis, sensor -x) plus the floor's push (up).
        let centripetal_g = omega * omega * radius / imu::STANDARD_GRAVITY;
        assert!((row[0] + centripetal_g).abs() < 1e-4 && (row[1] - 1.0).abs() < 1e-6 && row[2].abs() < 1e-6);
    }
}

#[test]
fn recordings_are_deterministic_and_consistent() {
    for (action, subject, trial) in [(1, 1, 1), (5, 2, 3), (22, 8, 4), (24, 6, 2)] {
        let (a, b) = (record(11, action, subject, trial), record(11, action, subject, trial));
        assert_eq!(a.inertial, b.inertial);
        assert_eq!(a.skeleton, b.skeleton);
        assert_ne!(a.inertial, record(12, action, subject, trial).inertial);
        let duration = a.inertial.len() as f64 / 50.0;
        assert!((a.skeleton.len() as f64 / 30.0 - duration).abs() < 0.05, "same clip duration");
        assert!((1.5..6.0).contains(&duration));
        assert!(a.inertial.iter().flatten().chain(a.skeleton.iter().flatten().flatten()).all(|x| x.is_finite()));
        // At rest before the movement the accelerometer sees gravity only.
        let resting: f64 = a.inertial[..5].iter().map(|r| norm([r[0], r[1], r[2]])).sum::<f64>() / 5.0;
        assert!((resting - 1.0).abs() < 0.1, "{resting}");
        // The subject stands 2.3-3.8 m in front of the camera, head up.
        let first = &a.skeleton[0];
        assert!((2.3..3.8).contains(&first[2][2]) && first[0][1] > first[3][1] + 0.4);
    }
}

#[test]
fn fast_actions_reach_realistic_magnitudes() {
    let peak = |r: &Recording, axes: std::ops::Range<usize>| {
        r.inertial.iter().map(|row| norm([row[axes.start], row[axes.start + 1], row[axes.start + 2]])).fold(0.0, f64::max)
    };
    let throw = record(0, 5, 3, 1);
    assert!(peak(&throw, 0..3) > 2.5 && peak(&throw, 3..6) > 300.0);
    let squat = record(0, 27, 3, 1);
    assert!(peak(&squat, 0..3) < 2.5);
}
