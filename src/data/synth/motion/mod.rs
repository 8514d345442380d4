//! Physically coherent synthetic UTD-MHAD recordings.
//!
//! A kinematic body (`body`) is driven through forward kinematics by per-action joint-angle trajectories
//! (`actions`, built from `pose`), performed with per-subject and per-trial variation (`subject`). The same
//! continuous motion is observed by a virtual Kinect (`kinect`: 30 Hz skeleton in camera coordinates with
//! tracking jitter) and by a virtual IMU (`imu`: 50 Hz specific force and angular velocity of a sensor strapped
//! to the right wrist, or to the right thigh for the leg actions 22-27).

mod actions;
mod body;
mod imu;
mod kinect;
mod math;
mod pose;
mod subject;

#[cfg(test)]
mod tests;

use crate::rng::{index_of, stream};
use actions::Action;
use body::forward_kinematics;
use imu::SensorSite;
use subject::{Performance, Subject};

/// Bumped whenever generated data changes.
pub const GENERATOR_VERSION: u32 = 1;
pub const NUM_ACTIONS: usize = 27;
pub const NUM_SUBJECTS: usize = 8;

const SKELETON_RATE_HZ: f64 = 30.0;
const INERTIAL_RATE_HZ: f64 = 50.0;

/// One synthetic trial: what the Kinect and the IMU recorded.
pub struct Recording {
    /// 50 Hz, rows of [acc_x, acc_y, acc_z (in g, specific force incl. gravity), gyro_x, gyro_y, gyro_z (deg/s)], sensor frame.
    pub inertial: Vec<[f64; 6]>,
    /// 30 Hz frames, 20 joints x xyz in metres, Kinect camera coordinates.
    pub skeleton: Vec<[[f64; 3]; 20]>,
}

/// action 1..=27, subject 1..=8, trial 1..=4. Deterministic in (seed, action, subject, trial).
pub fn record(seed: u64, action: usize, subject: usize, trial: usize) -> Recording {
    let action = Action::from_label(action);
    let person = Subject::new(seed, subject);
    let performance = Performance::new(seed, &person, action, subject, trial);
    let placement = &performance.placement;
    let body_at = |t: f64| forward_kinematics(&person.body, &performance.pose_at(t));
    let duration = performance.duration_s();
    let index = index_of(&[action.label() as u64, subject as u64, trial as u64]);

    let mut kinect_rng = stream(seed, "kinect", index);
    let frames = (duration * SKELETON_RATE_HZ).round() as usize;
    let skeleton =
        (0..frames).map(|f| kinect::observe(placement, &body_at(f as f64 / SKELETON_RATE_HZ).joints, &person.tracking_bias, &mut kinect_rng)).collect();

    let (site, mounting) = match action.uses_thigh_sensor() {
        true => (SensorSite::RightThigh, &person.thigh_mounting),
        false => (SensorSite::RightWrist, &person.wrist_mounting),
    };
    let sensor_at = |t: f64| {
        let (position, orientation) = site.sensor_pose(&body_at(t), mounting);
        (placement.room_point(position), placement.room_rotation(&orientation))
    };
    let mut imu_rng = stream(seed, "imu", index);
    let samples = (duration * INERTIAL_RATE_HZ).round() as usize;
    let inertial = imu::record(sensor_at, samples, INERTIAL_RATE_HZ, &person.imu_noise, &mut imu_rng);
    Recording { inertial, skeleton }
}
