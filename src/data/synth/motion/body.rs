//! Body model: segment lengths of one subject and forward kinematics from a `Pose` to the 20 Kinect v1 joints.
//!
//! Body frame: origin below the hip centre on the floor, x = subject's right, y = up, z = forward. The trunk
//! pivots at the hip centre, the arms hang from the shoulders and the legs from the pelvis; the whole body is
//! then lifted so that the lowest point of the feet touches the floor (which makes sitting, squats, lunges and
//! walking in place come out right without solving for the root).

use super::math::{add, mul, mul_vec, rot_x, rot_y, rot_z, Mat3, Vec3};
use super::pose::{Arm, Leg, Pose};

/// Segment lengths in metres.
#[derive(Clone, Debug, PartialEq)]
pub struct BodyDims {
    pub lumbar: f64,
    pub thorax: f64,
    pub neck: f64,
    pub shoulder_half_width: f64,
    pub shoulder_drop: f64,
    pub hip_half_width: f64,
    pub hip_drop: f64,
    pub upper_arm: f64,
    pub forearm: f64,
    pub hand: f64,
    pub thigh: f64,
    pub shank: f64,
    pub ankle_height: f64,
    pub foot: f64,
}

impl BodyDims {
    /// Average anthropometric proportions (fractions of body height) for a person `height` metres tall.
    pub fn proportional(height: f64) -> BodyDims {
        BodyDims {
            lumbar: 0.100 * height,
            thorax: 0.190 * height,
            neck: 0.100 * height,
            shoulder_half_width: 0.100 * height,
            shoulder_drop: 0.015 * height,
            hip_half_width: 0.052 * height,
            hip_drop: 0.035 * height,
            upper_arm: 0.172 * height,
            forearm: 0.150 * height,
            hand: 0.050 * height,
            thigh: 0.245 * height,
            shank: 0.246 * height,
            ankle_height: 0.039 * height,
            foot: 0.070 * height,
        }
    }

    /// Individual proportions: every length scaled by its own factor from `factor()`.
    #[rustfmt::skip]
    pub fn individual(self, mut factor: impl FnMut() -> f64) -> BodyDims {
        let mut f = |x: f64| x * factor();
        BodyDims {
            lumbar: f(self.lumbar), thorax: f(self.thorax), neck: f(self.neck),
            shoulder_half_width: f(self.shoulder_half_width), shoulder_drop: f(self.shoulder_drop),
            hip_half_width: f(self.hip_half_width), hip_drop: f(self.hip_drop),
            upper_arm: f(self.upper_arm), forearm: f(self.forearm), hand: f(self.hand),
            thigh: f(self.thigh), shank: f(self.shank), ankle_height: f(self.ankle_height), foot: f(self.foot),
        }
    }
}

/// A rigid body segment: its proximal joint, its orientation (columns = segment axes in the body frame; the
/// segment points along its local -y) and its length.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub origin: Vec3,
    pub frame: Mat3,
    pub length: f64,
}

/// Everything forward kinematics produces for one instant.
#[derive(Clone, Debug)]
pub struct Kinematics {
    /// Kinect v1 joint order, body frame.
    pub joints: [Vec3; 20],
    pub right_forearm: Segment,
    pub right_thigh: Segment,
}

/// Joint pairs connected by a rigid bone (Kinect v1 indices).
#[cfg(test)]
#[rustfmt::skip]
pub const BONES: [(usize, usize); 19] = [
    (0, 1), (1, 2), (2, 3), (1, 4), (4, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (10, 11),
    (3, 12), (12, 13), (13, 14), (14, 15), (3, 16), (16, 17), (17, 18), (18, 19),
];

/// How much of the trunk yaw the pelvis follows.
const PELVIS_YAW_SHARE: f64 = 0.3;
/// Softness of the floor contact (m): a smooth minimum over the sole points keeps the root height
/// differentiable when the supporting foot changes, so the IMU sees no impulses.
const FLOOR_SOFTNESS: f64 = 0.01;

/// Upper-arm orientation: the hanging arm turned by twist, raised by elevation, swung by azimuth.
/// `side` is +1 for the right arm and -1 for the left, which mirrors the chain through the sagittal plane.
fn upper_arm_rotation(arm: &Arm, side: f64) -> Mat3 {
    mul(&mul(&rot_y(side * arm.azimuth), &rot_x(-arm.elevation)), &rot_y(side * arm.twist))
}

fn thigh_rotation(leg: &Leg, side: f64) -> Mat3 {
    mul(&rot_z(side * leg.hip_abduction), &rot_x(-leg.hip_flexion))
}

fn along(segment: &Mat3, length: f64) -> Vec3 {
    mul_vec(segment, [0.0, -length, 0.0])
}

/// Shoulder, elbow, wrist and hand positions and the forearm orientation of one arm.
fn arm_chain(body: &BodyDims, trunk: &Mat3, shoulder_centre: Vec3, arm: &Arm, side: f64) -> ([Vec3; 4], Mat3) {
    let upper = mul(trunk, &upper_arm_rotation(arm, side));
    let forearm = mul(&upper, &rot_x(-arm.elbow));
    let hand = mul(&forearm, &rot_x(-arm.wrist));
    let shoulder = add(shoulder_centre, mul_vec(trunk, [side * body.shoulder_half_width, -body.shoulder_drop, 0.0]));
    let elbow = add(shoulder, along(&upper, body.upper_arm));
    let wrist = add(elbow, along(&forearm, body.forearm));
    ([shoulder, elbow, wrist, add(wrist, along(&hand, body.hand))], forearm)
}

/// Hip, knee, ankle and foot positions, the thigh orientation and the heights of heel and toe of one leg.
fn leg_chain(body: &BodyDims, pelvis: &Mat3, leg: &Leg, side: f64) -> ([Vec3; 4], Mat3, [f64; 2]) {
    let thigh = mul(pelvis, &thigh_rotation(leg, side));
    let shank = mul(&thigh, &rot_x(leg.knee));
    let foot = mul(pelvis, &rot_x(leg.ankle));
    let hip = mul_vec(pelvis, [side * body.hip_half_width, -body.hip_drop, 0.0]);
    let knee = add(hip, along(&thigh, body.thigh));
    let ankle = add(knee, along(&shank, body.shank));
    let foot_joint = add(ankle, mul_vec(&foot, [0.0, -0.5 * body.ankle_height, body.foot]));
    let heel = add(ankle, mul_vec(&foot, [0.0, -body.ankle_height, 0.0]));
    let toe = add(ankle, mul_vec(&foot, [0.0, -body.ankle_height, 1.3 * body.foot]));
    ([hip, knee, ankle, foot_joint], thigh, [heel[1], toe[1]])
}

pub fn forward_kinematics(body: &BodyDims, pose: &Pose) -> Kinematics {
    let trunk = mul(&mul(&rot_y(pose.trunk_yaw), &rot_x(pose.trunk_pitch)), &rot_z(pose.trunk_roll));
    let up = |length: f64| mul_vec(&trunk, [0.0, length, 0.0]);
    let hip_centre = [0.0; 3];
    let spine = up(body.lumbar);
    let shoulder_centre = up(body.lumbar + body.thorax);
    let head = add(shoulder_centre, up(body.neck));
    let (right_arm, right_forearm) = arm_chain(body, &trunk, shoulder_centre, &pose.right_arm, 1.0);
    let (left_arm, _) = arm_chain(body, &trunk, shoulder_centre, &pose.left_arm, -1.0);
    let pelvis = rot_y(PELVIS_YAW_SHARE * pose.trunk_yaw);
    let (right_leg, right_thigh, right_soles) = leg_chain(body, &pelvis, &pose.right_leg, 1.0);
    let (left_leg, _, left_soles) = leg_chain(body, &pelvis, &pose.left_leg, -1.0);

    let mut joints = [[0.0; 3]; 20];
    joints[..4].copy_from_slice(&[head, shoulder_centre, spine, hip_centre]);
    joints[4..8].copy_from_slice(&left_arm);
    joints[8..12].copy_from_slice(&right_arm);
    joints[12..16].copy_from_slice(&left_leg);
    joints[16..20].copy_from_slice(&right_leg);

    let soles = [right_soles[0], right_soles[1], left_soles[0], left_soles[1]];
    let lowest_sole = -FLOOR_SOFTNESS * soles.iter().map(|h| (-h / FLOOR_SOFTNESS).exp()).sum::<f64>().ln();
    let lift = [0.0, pose.root_lift - lowest_sole, 0.0];
    Kinematics {
        joints: joints.map(|p| add(p, lift)),
        right_forearm: Segment { origin: add(right_arm[1], lift), frame: right_forearm, length: body.forearm },
        right_thigh: Segment { origin: add(right_leg[0], lift), frame: right_thigh, length: body.thigh },
    }
}
