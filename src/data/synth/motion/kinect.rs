//! Virtual Kinect v1: places the body in camera coordinates and adds skeleton-tracking jitter.
//!
//! Camera frame: x to the subject's right as seen facing the camera, y up, z = depth away from the camera.
//! The subject faces the camera, so body-forward is camera -z. The body frame (x right, y up, z forward) is
//! left-handed; mapping z to -z makes it the right-handed camera frame, and rotations are conjugated alike.
//! The "room" frame is the camera frame without the camera's tilt: the IMU lives there, with gravity along -y.

use super::math::{add, mul, mul_vec, rot_x, rot_y, Mat3, Vec3};
use crate::rng::Stream;
use rand::Rng;
use rand_distr::StandardNormal;

/// Where the subject stands relative to the camera in one trial.
#[derive(Clone, Debug)]
pub struct Placement {
    /// Turn of the subject about the vertical, radians.
    pub yaw: f64,
    /// Distance from the camera, metres.
    pub depth: f64,
    /// Sideways offset from the optical axis, metres.
    pub lateral: f64,
    /// Height of the camera above the floor, metres.
    pub camera_height: f64,
    /// Upward tilt of the camera, radians.
    pub camera_tilt: f64,
}

const FLIP_Z: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]];

impl Placement {
    /// A body-frame point in room coordinates: the camera frame before its tilt, so gravity is exactly -y.
    pub fn room_point(&self, p: Vec3) -> Vec3 {
        let facing_camera = [p[0], p[1] - self.camera_height, -p[2]];
        add(mul_vec(&rot_y(self.yaw), facing_camera), [self.lateral, 0.0, self.depth])
    }

    /// A body-frame orientation in room coordinates (still a proper rotation).
    pub fn room_rotation(&self, r: &Mat3) -> Mat3 {
        mul(&rot_y(self.yaw), &mul(&mul(&FLIP_Z, r), &FLIP_Z))
    }

    /// A body-frame point as the (tilted) camera sees it.
    pub fn camera_point(&self, p: Vec3) -> Vec3 {
        mul_vec(&rot_x(-self.camera_tilt), self.room_point(p))
    }
}

/// Tracking noise (standard deviation, metres) per Kinect v1 joint: steady on the torso, worse at the extremities.
fn jitter_sd(joint: usize) -> f64 {
    match joint {
        6 | 7 | 10 | 11 | 14 | 15 | 18 | 19 => 0.012,
        5 | 9 | 13 | 17 => 0.009,
        _ => 0.006,
    }
}

/// Chance per frame that a hand or foot joint is mis-tracked, and the size of such a glitch (metres).
const GLITCH_PROBABILITY: f64 = 0.003;
const GLITCH_SD: f64 = 0.05;

/// One Kinect frame of a body-frame skeleton: camera coordinates plus the subject's systematic tracking bias,
/// tracking jitter and rare glitches.
pub fn observe(placement: &Placement, joints: &[Vec3; 20], bias: &[Vec3; 20], rng: &mut Stream) -> [[f64; 3]; 20] {
    std::array::from_fn(|j| {
        let glitch = matches!(j, 7 | 11 | 15 | 19) && rng.random::<f64>() < GLITCH_PROBABILITY;
        let sd = jitter_sd(j) + if glitch { GLITCH_SD } else { 0.0 };
        let noise: [f64; 3] = std::array::from_fn(|_| sd * rng.sample::<f64, _>(StandardNormal));
        add(add(placement.camera_point(joints[j]), bias[j]), noise)
    })
}
