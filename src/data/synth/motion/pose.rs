//! Pose parameters (the joint angles that drive the body model) and smooth interpolation between poses.
//!
//! Angles are radians; the `deg` constructors take degrees because that is how the actions are written.
//! Conventions (body frame x = subject's right, y = up, z = forward):
//! - arm azimuth: direction of the raised arm, 0 = forward, +90 = out to the own side, negative = across the body;
//! - arm elevation: 0 = hanging, 90 = horizontal, 180 = straight up, negative = behind the body;
//! - arm twist: rotation about the upper-arm axis (positive = external rotation), elbow/wrist: flexion;
//! - hip flexion: thigh forward, knee flexion: shank backward, ankle: foot pitch from flat (toe down);
//! - trunk pitch: bending forward, roll: leaning to the right, yaw: turning to the right.

use std::f64::consts::TAU;
use std::ops::{Add, Mul, Sub};

#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Arm {
    pub azimuth: f64,
    pub elevation: f64,
    pub twist: f64,
    pub elbow: f64,
    pub wrist: f64,
}

impl Arm {
    pub fn deg(azimuth: f64, elevation: f64, twist: f64, elbow: f64) -> Arm {
        let r = f64::to_radians;
        Arm { azimuth: r(azimuth), elevation: r(elevation), twist: r(twist), elbow: r(elbow), wrist: 0.0 }
    }

    pub fn wrist_deg(self, wrist: f64) -> Arm {
        Arm { wrist: wrist.to_radians(), ..self }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Leg {
    pub hip_flexion: f64,
    pub hip_abduction: f64,
    pub knee: f64,
    pub ankle: f64,
}

impl Leg {
    pub fn deg(hip_flexion: f64, knee: f64, ankle: f64) -> Leg {
        let r = f64::to_radians;
        Leg { hip_flexion: r(hip_flexion), hip_abduction: r(4.0), knee: r(knee), ankle: r(ankle) }
    }
}

/// Full-body pose. `root_lift` raises the whole body above floor contact (the flight phase of a jump or jog).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Pose {
    pub trunk_pitch: f64,
    pub trunk_roll: f64,
    pub trunk_yaw: f64,
    pub right_arm: Arm,
    pub left_arm: Arm,
    pub right_leg: Leg,
    pub left_leg: Leg,
    pub root_lift: f64,
}

/// Number of pose parameters.
pub const DOF: usize = 22;

impl Pose {
    /// Standing upright, arms hanging relaxed.
    pub fn rest() -> Pose {
        let arm = Arm::deg(0.0, 6.0, 0.0, 12.0);
        let leg = Leg::deg(0.0, 3.0, 0.0);
        Pose { right_arm: arm, left_arm: arm, right_leg: leg, left_leg: leg, ..Pose::default() }
    }

    pub fn right(self, arm: Arm) -> Pose {
        Pose { right_arm: arm, ..self }
    }

    pub fn left(self, arm: Arm) -> Pose {
        Pose { left_arm: arm, ..self }
    }

    /// Both arms in mirror-symmetric poses.
    pub fn arms(self, arm: Arm) -> Pose {
        Pose { right_arm: arm, left_arm: arm, ..self }
    }

    pub fn legs(self, right: Leg, left: Leg) -> Pose {
        Pose { right_leg: right, left_leg: left, ..self }
    }

    pub fn both_legs(self, leg: Leg) -> Pose {
        self.legs(leg, leg)
    }

    pub fn trunk_deg(self, pitch: f64, roll: f64, yaw: f64) -> Pose {
        Pose { trunk_pitch: pitch.to_radians(), trunk_roll: roll.to_radians(), trunk_yaw: yaw.to_radians(), ..self }
    }

    pub fn lift(self, metres: f64) -> Pose {
        Pose { root_lift: metres, ..self }
    }

    #[rustfmt::skip]
    pub fn to_array(self) -> [f64; DOF] {
        let (ra, la, rl, ll) = (self.right_arm, self.left_arm, self.right_leg, self.left_leg);
        [
            self.trunk_pitch, self.trunk_roll, self.trunk_yaw,
            ra.azimuth, ra.elevation, ra.twist, ra.elbow, ra.wrist,
            la.azimuth, la.elevation, la.twist, la.elbow, la.wrist,
            rl.hip_flexion, rl.hip_abduction, rl.knee, rl.ankle,
            ll.hip_flexion, ll.hip_abduction, ll.knee, ll.ankle,
            self.root_lift,
        ]
    }

    #[rustfmt::skip]
    pub fn from_array(a: [f64; DOF]) -> Pose {
        let arm = |i: usize| Arm { azimuth: a[i], elevation: a[i + 1], twist: a[i + 2], elbow: a[i + 3], wrist: a[i + 4] };
        let leg = |i: usize| Leg { hip_flexion: a[i], hip_abduction: a[i + 1], knee: a[i + 2], ankle: a[i + 3] };
        Pose {
            trunk_pitch: a[0], trunk_roll: a[1], trunk_yaw: a[2],
            right_arm: arm(3), left_arm: arm(8), right_leg: leg(13), left_leg: leg(17),
            root_lift: a[21],
        }
    }

    /// Straight-line blend in joint-angle space, s = 0 gives self, s = 1 gives `to`.
    pub fn lerp(&self, to: &Pose, s: f64) -> Pose {
        *self + (*to - *self) * s
    }
}

impl Add for Pose {
    type Output = Pose;
    fn add(self, other: Pose) -> Pose {
        let (a, b) = (self.to_array(), other.to_array());
        Pose::from_array(std::array::from_fn(|i| a[i] + b[i]))
    }
}

impl Sub for Pose {
    type Output = Pose;
    fn sub(self, other: Pose) -> Pose {
        let (a, b) = (self.to_array(), other.to_array());
        Pose::from_array(std::array::from_fn(|i| a[i] - b[i]))
    }
}

impl Mul<f64> for Pose {
    type Output = Pose;
    fn mul(self, s: f64) -> Pose {
        Pose::from_array(self.to_array().map(|x| x * s))
    }
}

/// Minimum-jerk profile from 0 to 1 over x in [0, 1]: the speed profile of a human point-to-point reach,
/// with zero velocity and acceleration at both ends.
pub fn minimum_jerk(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * x * (10.0 - 15.0 * x + 6.0 * x * x)
}

/// Point-to-point movements through keyframes `(phase, pose)` sorted by phase; the body comes to a stop at every
/// keyframe and holds the first/last pose outside their range.
pub fn keyframes(u: f64, keys: &[(f64, Pose)]) -> Pose {
    let Some(&(first_u, first)) = keys.first() else {
        return Pose::rest();
    };
    if u <= first_u {
        return first;
    }
    for pair in keys.windows(2) {
        let ((u0, p0), (u1, p1)) = (pair[0], pair[1]);
        if u <= u1 {
            return p0.lerp(&p1, minimum_jerk((u - u0) / (u1 - u0)));
        }
    }
    keys[keys.len() - 1].1
}

/// Smooth gate that is 1 inside [start, end] and fades to 0 over `ramp` at both edges.
pub fn window(u: f64, start: f64, end: f64, ramp: f64) -> f64 {
    minimum_jerk((u - start) / ramp) * minimum_jerk((end - u) / ramp)
}

/// `cycles` sine periods over [start, end], faded in and out by `window`.
pub fn oscillation(u: f64, start: f64, end: f64, cycles: f64, ramp: f64) -> f64 {
    window(u, start, end, ramp) * (TAU * cycles * (u - start) / (end - start)).sin()
}
