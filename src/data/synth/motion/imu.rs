//! Virtual inertial sensor (accelerometer + gyroscope) rigidly strapped to a body segment.
//!
//! The continuous-time sensor trajectory (position and orientation in the world = camera frame, y up) is
//! differentiated numerically: acceleration by a central second difference, angular velocity from the relative
//! rotation R(t-h)^T R(t+h). The accelerometer measures specific force R^T (a - g) in g, the gyroscope the
//! angular velocity in the sensor frame in deg/s, both with white noise, a constant bias and range limits.

use super::body::{Kinematics, Segment};
use super::math::{add, mul, mul_vec, rot_z, rotation_log, scale, sub, transpose, Mat3, Vec3};
use crate::rng::Stream;
use rand::Rng;
use rand_distr::StandardNormal;

pub const STANDARD_GRAVITY: f64 = 9.81;
const GRAVITY: Vec3 = [0.0, -STANDARD_GRAVITY, 0.0];
/// Differentiation step, seconds.
const STEP: f64 = 2e-3;
/// Measurement ranges of the UTD-MHAD sensor (InvenSense MPU-9150 as configured there).
const ACC_RANGE_G: f64 = 8.0;
const GYRO_RANGE_DPS: f64 = 1000.0;

/// Where the sensor sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensorSite {
    /// On the back of the right forearm just above the wrist.
    RightWrist,
    /// On the front of the right thigh, half-way down.
    RightThigh,
}

impl SensorSite {
    /// Sensor position and orientation in the body frame. `mounting` is the individual small misalignment of the
    /// strap; nominally the sensor x axis points along the segment towards its distal end.
    pub fn sensor_pose(self, body: &Kinematics, mounting: &Mat3) -> (Vec3, Mat3) {
        let (segment, along, out): (&Segment, f64, f64) = match self {
            SensorSite::RightWrist => (&body.right_forearm, 0.9, 0.03),
            SensorSite::RightThigh => (&body.right_thigh, 0.5, 0.08),
        };
        let position = add(segment.origin, mul_vec(&segment.frame, [0.0, -along * segment.length, out]));
        let nominal = mul(&segment.frame, &rot_z(-std::f64::consts::FRAC_PI_2));
        (position, mul(&nominal, mounting))
    }
}

/// Sensor imperfections: white noise and constant bias per axis.
#[derive(Clone, Debug, PartialEq)]
pub struct ImuNoise {
    pub acc_sd_g: f64,
    pub gyro_sd_dps: f64,
    pub acc_bias_g: Vec3,
    pub gyro_bias_dps: Vec3,
}

#[cfg(test)]
impl ImuNoise {
    pub const NONE: ImuNoise = ImuNoise { acc_sd_g: 0.0, gyro_sd_dps: 0.0, acc_bias_g: [0.0; 3], gyro_bias_dps: [0.0; 3] };
}

/// Ideal readings at time t of a sensor whose world pose over time is `sensor_at`:
/// (specific force in g, angular velocity in deg/s), both in the sensor frame.
pub fn ideal_reading(sensor_at: &impl Fn(f64) -> (Vec3, Mat3), t: f64) -> (Vec3, Vec3) {
    let ((p0, r0), (p1, r1), (p2, r2)) = (sensor_at(t - STEP), sensor_at(t), sensor_at(t + STEP));
    let acceleration = scale(add(sub(p2, p1), sub(p0, p1)), 1.0 / (STEP * STEP));
    let specific_force = mul_vec(&transpose(&r1), sub(acceleration, GRAVITY));
    let angular_velocity = scale(rotation_log(&mul(&transpose(&r0), &r2)), 1.0 / (2.0 * STEP));
    (scale(specific_force, 1.0 / STANDARD_GRAVITY), scale(angular_velocity, 180.0 / std::f64::consts::PI))
}

/// `count` samples at `rate_hz` starting at t = 0, as rows [acc xyz (g), gyro xyz (deg/s)].
pub fn record(sensor_at: impl Fn(f64) -> (Vec3, Mat3), count: usize, rate_hz: f64, noise: &ImuNoise, rng: &mut Stream) -> Vec<[f64; 6]> {
    let mut gaussian = move || rng.sample::<f64, _>(StandardNormal);
    (0..count)
        .map(|k| {
            let (acc, gyro) = ideal_reading(&sensor_at, k as f64 / rate_hz);
            let mut row = [0.0; 6];
            for axis in 0..3 {
                let a = acc[axis] + noise.acc_bias_g[axis] + noise.acc_sd_g * gaussian();
                let w = gyro[axis] + noise.gyro_bias_dps[axis] + noise.gyro_sd_dps * gaussian();
                row[axis] = a.clamp(-ACC_RANGE_G, ACC_RANGE_G);
                row[axis + 3] = w.clamp(-GYRO_RANGE_DPS, GYRO_RANGE_DPS);
            }
            row
        })
        .collect()
}
