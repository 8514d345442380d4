//! Who performs an action and how: per-subject body, habits and sensor strap, and per-trial variation.
//!
//! Subjects differ in body size and proportions, general tempo and amplitude, and - per action - in style
//! (angle offsets, amplitude, tempo, speed profile). Trials of the same subject differ a little in all of these,
//! in the rest before and after the movement, and in where the subject stands. The magnitudes below are the
//! difficulty knobs: they were calibrated so that a 1-nearest-neighbour classifier on either modality scores
//! well inside 40-90% cross-subject accuracy (generator v1, seeds 0/1/2: inertial 68/73/67%,
//! skeleton 69/80/73%; gallery subjects 1,3,5, queries 2,4,6,8).

use super::actions::Action;
use super::body::BodyDims;
use super::imu::ImuNoise;
use super::kinect::Placement;
use super::math::{mul, rot_x, rot_y, rot_z, Mat3, Vec3};
use super::pose::{window, Pose, DOF};
use crate::rng::{index_of, stream, Stream};
use rand::Rng;
use rand_distr::StandardNormal;

/// Per subject and action: sd of the style offset of each joint angle (degrees), of amplitude and tempo
/// (relative) and of the speed-profile warp coefficients.
const STYLE_ANGLE_DEG: f64 = 10.0;
const STYLE_AMPLITUDE: f64 = 0.12;
const STYLE_TEMPO: f64 = 0.08;
const STYLE_WARP: f64 = 0.2;
/// The same per trial, on top of the subject's style.
const TRIAL_ANGLE_DEG: f64 = 3.0;
const TRIAL_AMPLITUDE: f64 = 0.05;
const TRIAL_TEMPO: f64 = 0.06;
const TRIAL_WARP: f64 = 0.1;
const TRIAL_REST_S: f64 = 0.12;
/// Per subject: sd of the systematic Kinect joint-position error, metres.
const TRACKING_BIAS_M: f64 = 0.015;
/// Fraction of the movement over which the style offset fades in (and out).
const STYLE_FADE: f64 = 0.2;
/// Bound on |a1| + |a2| of the time warp: keeps it monotonic and the local speed-up below 1.5x.
const MAX_WARP: f64 = 0.35;

/// Relative weight of the style offset per pose parameter (see `Pose::to_array`): trunk, right arm (the acting
/// one), left arm, legs, root lift.
#[rustfmt::skip]
const STYLE_WEIGHTS: [f64; DOF] = [
    0.4, 0.3, 0.4, 1.0, 1.0, 1.0, 1.0, 1.0, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.2, 0.6, 0.4, 0.6, 0.2, 0.6, 0.4, 0.0,
];

fn gaussian(rng: &mut Stream) -> f64 {
    rng.sample(StandardNormal)
}

fn log_normal(rng: &mut Stream, sd: f64) -> f64 {
    (sd * gaussian(rng)).exp()
}

/// Small random rotation with independent angles of standard deviation `sd` (radians) about each axis.
fn small_rotation(rng: &mut Stream, sd: f64) -> Mat3 {
    let (x, y, z) = (sd * gaussian(rng), sd * gaussian(rng), sd * gaussian(rng));
    mul(&mul(&rot_z(z), &rot_y(y)), &rot_x(x))
}

/// Style offset: a random pose displacement with the given sd (degrees) weighted per parameter.
fn style_offset(rng: &mut Stream, sd_deg: f64) -> Pose {
    Pose::from_array(STYLE_WEIGHTS.map(|w| w * sd_deg.to_radians() * gaussian(rng)))
}

/// A person: body and the traits that are the same in all their recordings.
#[derive(Clone, Debug)]
pub struct Subject {
    pub body: BodyDims,
    tempo: f64,
    amplitude: f64,
    rest_before_s: f64,
    rest_after_s: f64,
    depth: f64,
    lateral: f64,
    /// The direction this subject tends to face, and the tilt of the camera in their session.
    yaw: f64,
    camera_tilt: f64,
    /// How the wrist and thigh sensors sit on this person's segments.
    pub wrist_mounting: Mat3,
    pub thigh_mounting: Mat3,
    pub imu_noise: ImuNoise,
    /// Systematic Kinect skeleton-fitting error for this person (body shape, clothing), metres per joint.
    pub tracking_bias: [Vec3; 20],
}

impl Subject {
    pub fn new(seed: u64, subject: usize) -> Subject {
        let mut rng = stream(seed, "subject", index_of(&[subject as u64]));
        let height = rng.random_range(1.55..1.90);
        let body = BodyDims::proportional(height).individual(|| 1.0 + 0.03 * gaussian(&mut rng));
        let mut bias = |sd: f64| [sd * gaussian(&mut rng), sd * gaussian(&mut rng), sd * gaussian(&mut rng)];
        let imu_noise = ImuNoise { acc_sd_g: 0.02, gyro_sd_dps: 2.0, acc_bias_g: bias(0.03), gyro_bias_dps: bias(1.5) };
        Subject {
            body,
            imu_noise,
            tempo: log_normal(&mut rng, 0.08),
            amplitude: 1.0 + 0.08 * gaussian(&mut rng),
            rest_before_s: rng.random_range(0.25..0.6),
            rest_after_s: rng.random_range(0.25..0.6),
            depth: rng.random_range(2.6..3.3),
            lateral: 0.15 * gaussian(&mut rng),
            yaw: 8f64.to_radians() * gaussian(&mut rng),
            camera_tilt: 4f64.to_radians() * gaussian(&mut rng),
            wrist_mounting: small_rotation(&mut rng, 8f64.to_radians()),
            thigh_mounting: small_rotation(&mut rng, 8f64.to_radians()),
            tracking_bias: std::array::from_fn(|_| std::array::from_fn(|_| TRACKING_BIAS_M * gaussian(&mut rng))),
        }
    }
}

/// One trial of one action by one subject: timeline, time warp, amplitude, style and placement.
#[derive(Clone, Debug)]
pub struct Performance {
    pub action: Action,
    rest_before_s: f64,
    active_s: f64,
    rest_after_s: f64,
    /// Coefficients of the monotonic time warp u = tau + a1 sin(pi tau)/pi + a2 sin(2 pi tau)/(2 pi).
    warp: [f64; 2],
    amplitude: f64,
    offset: Pose,
    pub placement: Placement,
}

impl Performance {
    pub fn new(seed: u64, subject: &Subject, action: Action, subject_id: usize, trial: usize) -> Performance {
        let (a, s, t) = (action.label() as u64, subject_id as u64, trial as u64);
        let mut style = stream(seed, "style", index_of(&[s, a]));
        let mut take = stream(seed, "trial", index_of(&[a, s, t]));
        let warp_coefficient = |style: &mut Stream, take: &mut Stream| STYLE_WARP * gaussian(style) + TRIAL_WARP * gaussian(take);
        let mut warp = [warp_coefficient(&mut style, &mut take), warp_coefficient(&mut style, &mut take)];
        let warp_total = warp[0].abs() + warp[1].abs();
        if warp_total > MAX_WARP {
            warp = warp.map(|c| c * MAX_WARP / warp_total);
        }
        let tempo = subject.tempo * log_normal(&mut style, STYLE_TEMPO) * log_normal(&mut take, TRIAL_TEMPO);
        let amplitude = subject.amplitude * log_normal(&mut style, STYLE_AMPLITUDE) * log_normal(&mut take, TRIAL_AMPLITUDE);
        let offset = style_offset(&mut style, STYLE_ANGLE_DEG) + style_offset(&mut take, TRIAL_ANGLE_DEG);
        let rest = |mean: f64, take: &mut Stream| (mean + TRIAL_REST_S * gaussian(take)).max(0.15);
        Performance {
            action,
            rest_before_s: rest(subject.rest_before_s, &mut take),
            active_s: action.active_duration_s() / tempo,
            rest_after_s: rest(subject.rest_after_s, &mut take),
            warp,
            amplitude,
            offset,
            placement: Placement {
                yaw: subject.yaw + 5f64.to_radians() * gaussian(&mut take),
                depth: subject.depth + 0.1 * gaussian(&mut take),
                lateral: subject.lateral + 0.05 * gaussian(&mut take),
                camera_height: 0.85 + 0.03 * gaussian(&mut take),
                camera_tilt: subject.camera_tilt,
            },
        }
    }

    /// Length of the whole clip: rest, movement, rest.
    pub fn duration_s(&self) -> f64 {
        self.rest_before_s + self.active_s + self.rest_after_s
    }

    /// Phase of the movement at clip time t, through this trial's smooth monotonic time warp.
    pub fn phase_at(&self, t: f64) -> f64 {
        let tau = ((t - self.rest_before_s) / self.active_s).clamp(0.0, 1.0);
        let pi = std::f64::consts::PI;
        tau + self.warp[0] * (pi * tau).sin() / pi + self.warp[1] * (2.0 * pi * tau).sin() / (2.0 * pi)
    }

    /// Joint angles at clip time t: the action's trajectory scaled about rest by the amplitude, plus the style
    /// offset, which fades in and out over the first and last part of the movement so that every clip starts
    /// and ends exactly on the action's trajectory.
    pub fn pose_at(&self, t: f64) -> Pose {
        let u = self.phase_at(t);
        let rest = Pose::rest();
        let engagement = window(u, 0.0, 1.0, STYLE_FADE);
        rest + (self.action.pose(u) - rest) * self.amplitude + self.offset * engagement
    }
}
