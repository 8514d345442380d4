//! The 27 UTD-MHAD actions as joint-angle trajectories over a phase u in [0, 1].
//!
//! Each trajectory starts and ends in its resting pose (standing with arms hanging, except sit-to-stand and
//! stand-to-sit, which start or end seated). Goal-directed movements are minimum-jerk transitions between
//! keyframes; repetitive ones (waving, knocking, jogging, ...) are windowed oscillations. Right-handed actions
//! use the right hand; drawing happens in the (azimuth, elevation) plane of the right arm.

use super::pose::{keyframes, minimum_jerk, oscillation, window, Arm, Leg, Pose};
use std::f64::consts::{PI, TAU};

#[rustfmt::skip]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SwipeLeft, SwipeRight, Wave, Clap, Throw, ArmCross, BasketballShoot, DrawX, DrawCircleCw, DrawCircleCcw,
    DrawTriangle, Bowling, Boxing, BaseballSwing, TennisSwing, ArmCurl, TennisServe, Push, Knock, Catch,
    PickupThrow, Jog, Walk, Sit2Stand, Stand2Sit, Lunge, Squat,
}

use Action::*;

impl Action {
    /// In UTD-MHAD label order (label = index + 1).
    #[rustfmt::skip]
    pub const ALL: [Action; 27] = [
        SwipeLeft, SwipeRight, Wave, Clap, Throw, ArmCross, BasketballShoot, DrawX, DrawCircleCw, DrawCircleCcw,
        DrawTriangle, Bowling, Boxing, BaseballSwing, TennisSwing, ArmCurl, TennisServe, Push, Knock, Catch,
        PickupThrow, Jog, Walk, Sit2Stand, Stand2Sit, Lunge, Squat,
    ];

    /// Action for a 1-based UTD-MHAD label; out-of-range labels are clamped into 1..=27.
    pub fn from_label(label: usize) -> Action {
        Self::ALL[label.clamp(1, Self::ALL.len()) - 1]
    }

    pub fn label(self) -> usize {
        self as usize + 1
    }

    /// UTD-MHAD straps the inertial sensor to the right thigh for the leg actions 22-27, to the right wrist otherwise.
    pub fn uses_thigh_sensor(self) -> bool {
        self.label() >= 22
    }

    /// Nominal duration of the movement itself (without the rest before and after), seconds.
    pub fn active_duration_s(self) -> f64 {
        match self {
            SwipeLeft | SwipeRight | Push | Catch | Sit2Stand | Stand2Sit => 2.3,
            Throw | TennisSwing | BaseballSwing | ArmCross | Knock => 2.6,
            Clap | BasketballShoot | Wave | Bowling | TennisServe => 3.0,
            DrawCircleCw | DrawCircleCcw | Squat | Lunge => 3.0,
            DrawX | DrawTriangle | Boxing | PickupThrow => 3.3,
            ArmCurl | Jog | Walk => 3.4,
        }
    }

    /// Joint angles at phase u (clamped to [0, 1]).
    pub fn pose(self, u: f64) -> Pose {
        let u = u.clamp(0.0, 1.0);
        match self {
            SwipeLeft => swipe(1.0, u),
            SwipeRight => swipe(-1.0, u),
            Wave => wave(u),
            Clap => clap(u),
            Throw => throw(u),
            ArmCross => arm_cross(u),
            BasketballShoot => basketball_shoot(u),
            DrawX => draw_x(u),
            DrawCircleCw => draw_circle_cw(u),
            DrawCircleCcw => draw_circle_cw(1.0 - u),
            DrawTriangle => draw_triangle(u),
            Bowling => bowling(u),
            Boxing => boxing(u),
            BaseballSwing => baseball_swing(u),
            TennisSwing => tennis_swing(u),
            ArmCurl => arm_curl(u),
            TennisServe => tennis_serve(u),
            Push => push(u),
            Knock => knock(u),
            Catch => catch(u),
            PickupThrow => pickup_throw(u),
            Jog => gait(u, &JOG),
            Walk => gait(u, &WALK),
            Sit2Stand => sit_to_stand(u),
            Stand2Sit => sit_to_stand(1.0 - u),
            Lunge => lunge(u),
            Squat => squat(u),
        }
    }
}

fn rest() -> Pose {
    Pose::rest()
}

/// Right hand sweeps across the chest: direction +1 goes right-to-left (swipe_left), -1 follows the mirrored
/// keyframe path left-to-right (swipe_right).
fn swipe(direction: f64, u: f64) -> Pose {
    const CENTRE_AZIMUTH: f64 = 7.0;
    const HALF_SWEEP: f64 = 48.0;
    let at = |side: f64| {
        let arm = Arm::deg(CENTRE_AZIMUTH + side * direction * HALF_SWEEP, 72.0, 0.0, 30.0);
        rest().right(arm).trunk_deg(0.0, 0.0, side * direction * 8.0)
    };
    keyframes(u, &[(0.0, rest()), (0.35, at(1.0)), (0.62, at(-1.0)), (1.0, rest())])
}

fn wave(u: f64) -> Pose {
    let raised = rest().right(Arm::deg(65.0, 85.0, 0.0, 100.0));
    let mut pose = keyframes(u, &[(0.0, rest()), (0.22, raised), (0.78, raised), (1.0, rest())]);
    pose.right_arm.twist += 25f64.to_radians() * oscillation(u, 0.22, 0.78, 3.0, 0.06);
    pose
}

#[rustfmt::skip]
fn clap(u: f64) -> Pose {
    let open = rest().arms(Arm::deg(25.0, 65.0, 0.0, 60.0));
    let together = rest().arms(Arm::deg(-14.0, 65.0, 0.0, 50.0));
    keyframes(u, &[
        (0.0, rest()), (0.2, open), (0.3, together), (0.4, open), (0.5, together), (0.6, open),
        (0.7, together), (0.8, open), (1.0, rest()),
    ])
}

/// Overhand throw: cocked behind the head, released in front, follow-through across the body.
fn throw_poses() -> [Pose; 3] {
    let cocked = rest().right(Arm::deg(80.0, 100.0, 40.0, 110.0).wrist_deg(-30.0)).left(Arm::deg(-10.0, 50.0, 0.0, 30.0)).trunk_deg(-5.0, 0.0, 25.0);
    let released = rest().right(Arm::deg(10.0, 80.0, 0.0, 15.0).wrist_deg(30.0)).left(Arm::deg(0.0, 20.0, 0.0, 20.0)).trunk_deg(15.0, 0.0, -15.0);
    let follow_through = rest().right(Arm::deg(-25.0, 25.0, 0.0, 20.0)).trunk_deg(20.0, 0.0, -20.0);
    [cocked, released, follow_through]
}

#[rustfmt::skip]
fn throw(u: f64) -> Pose {
    let [cocked, released, follow] = throw_poses();
    keyframes(u, &[
        (0.0, rest()), (0.3, cocked), (0.38, cocked), (0.56, released), (0.74, follow), (1.0, rest()),
    ])
}

fn arm_cross(u: f64) -> Pose {
    let crossed = rest().arms(Arm::deg(-55.0, 80.0, 0.0, 65.0));
    keyframes(u, &[(0.0, rest()), (0.3, crossed), (0.7, crossed), (1.0, rest())])
}

#[rustfmt::skip]
fn basketball_shoot(u: f64) -> Pose {
    let gather = rest()
        .right(Arm::deg(15.0, 45.0, 0.0, 125.0).wrist_deg(-40.0))
        .left(Arm::deg(30.0, 50.0, 0.0, 110.0))
        .both_legs(Leg::deg(20.0, 35.0, 0.0));
    let shoot = rest()
        .right(Arm::deg(10.0, 155.0, 0.0, 15.0).wrist_deg(45.0))
        .left(Arm::deg(25.0, 130.0, 0.0, 35.0))
        .both_legs(Leg::deg(0.0, 3.0, 20.0))
        .lift(0.03);
    keyframes(u, &[
        (0.0, rest()), (0.35, gather), (0.48, gather), (0.6, shoot), (0.72, shoot), (1.0, rest()),
    ])
}

/// Right hand pointing at (azimuth, elevation) in the drawing plane.
fn drawing(azimuth: f64, elevation: f64) -> Pose {
    rest().right(Arm::deg(azimuth, elevation, 0.0, 25.0))
}

#[rustfmt::skip]
fn draw_x(u: f64) -> Pose {
    keyframes(u, &[
        (0.0, rest()), (0.2, drawing(-5.0, 125.0)), (0.4, drawing(45.0, 70.0)), (0.5, drawing(45.0, 125.0)),
        (0.7, drawing(-5.0, 70.0)), (1.0, rest()),
    ])
}

/// One clockwise circle as the subject sees it: from the top, to the right, down, to the left, back to the top.
fn draw_circle_cw(u: f64) -> Pose {
    const CENTRE: (f64, f64) = (20.0, 100.0);
    const RADIUS: f64 = 28.0;
    let on_circle = |angle: f64| drawing(CENTRE.0 + RADIUS * angle.sin(), CENTRE.1 + RADIUS * angle.cos());
    match u {
        u if u < 0.2 => keyframes(u, &[(0.0, rest()), (0.2, on_circle(0.0))]),
        u if u <= 0.8 => on_circle(TAU * minimum_jerk((u - 0.2) / 0.6)),
        u => keyframes(u, &[(0.8, on_circle(0.0)), (1.0, rest())]),
    }
}

#[rustfmt::skip]
fn draw_triangle(u: f64) -> Pose {
    let (top, bottom_right, bottom_left) = (drawing(20.0, 130.0), drawing(50.0, 75.0), drawing(-10.0, 75.0));
    keyframes(u, &[
        (0.0, rest()), (0.2, top), (0.4, bottom_right), (0.6, bottom_left), (0.8, top), (1.0, rest()),
    ])
}

#[rustfmt::skip]
fn bowling(u: f64) -> Pose {
    let stride = (Leg::deg(-5.0, 25.0, 0.0), Leg::deg(45.0, 55.0, 0.0));
    let ready = rest()
        .right(Arm::deg(5.0, 45.0, 0.0, 80.0))
        .left(Arm::deg(10.0, 40.0, 0.0, 70.0));
    let back_swing = rest()
        .right(Arm::deg(5.0, -45.0, 0.0, 10.0))
        .left(Arm::deg(40.0, 40.0, 0.0, 20.0))
        .trunk_deg(25.0, 0.0, 10.0)
        .legs(stride.0, stride.1);
    let release = back_swing
        .right(Arm::deg(0.0, 75.0, 0.0, 10.0))
        .trunk_deg(30.0, 0.0, -5.0);
    keyframes(u, &[
        (0.0, rest()), (0.2, ready), (0.42, back_swing), (0.58, release), (0.7, release), (1.0, rest()),
    ])
}

#[rustfmt::skip]
fn boxing(u: f64) -> Pose {
    let guard = rest().arms(Arm::deg(25.0, 35.0, 0.0, 125.0));
    let punch = Arm::deg(5.0, 85.0, 0.0, 10.0);
    let right = guard.right(punch).trunk_deg(0.0, 0.0, -12.0);
    let left = guard.left(punch).trunk_deg(0.0, 0.0, 12.0);
    keyframes(u, &[
        (0.0, rest()), (0.15, guard), (0.24, right), (0.32, guard), (0.41, left), (0.49, guard),
        (0.58, right), (0.66, guard), (0.75, left), (0.83, guard), (1.0, rest()),
    ])
}

#[rustfmt::skip]
fn baseball_swing(u: f64) -> Pose {
    let loaded = rest()
        .right(Arm::deg(50.0, 70.0, 0.0, 110.0))
        .left(Arm::deg(-50.0, 75.0, 0.0, 90.0))
        .trunk_deg(0.0, 0.0, 35.0);
    let followed = rest()
        .right(Arm::deg(-70.0, 90.0, 0.0, 60.0))
        .left(Arm::deg(70.0, 80.0, 0.0, 30.0))
        .trunk_deg(5.0, 0.0, -45.0);
    keyframes(u, &[
        (0.0, rest()), (0.32, loaded), (0.4, loaded), (0.6, followed), (0.72, followed), (1.0, rest()),
    ])
}

#[rustfmt::skip]
fn tennis_swing(u: f64) -> Pose {
    let back = rest()
        .right(Arm::deg(100.0, 60.0, 30.0, 25.0))
        .trunk_deg(0.0, 0.0, 35.0);
    let followed = rest()
        .right(Arm::deg(-50.0, 100.0, 0.0, 70.0))
        .trunk_deg(0.0, 0.0, -30.0);
    keyframes(u, &[
        (0.0, rest()), (0.32, back), (0.4, back), (0.6, followed), (0.7, followed), (1.0, rest()),
    ])
}

#[rustfmt::skip]
fn arm_curl(u: f64) -> Pose {
    let (up, down) = (
        rest().right(Arm::deg(0.0, 15.0, 0.0, 140.0)),
        rest().right(Arm::deg(0.0, 10.0, 0.0, 15.0)),
    );
    keyframes(u, &[
        (0.0, rest()), (0.17, up), (0.33, down), (0.5, up), (0.67, down), (0.83, up), (1.0, rest()),
    ])
}

#[rustfmt::skip]
fn tennis_serve(u: f64) -> Pose {
    let knees = Leg::deg(15.0, 30.0, 0.0);
    let toss = rest()
        .right(Arm::deg(60.0, 60.0, 20.0, 60.0))
        .left(Arm::deg(10.0, 160.0, 0.0, 10.0))
        .trunk_deg(-10.0, 0.0, 20.0)
        .both_legs(knees);
    let trophy = toss
        .right(Arm::deg(80.0, 110.0, 60.0, 120.0))
        .left(Arm::deg(10.0, 150.0, 0.0, 20.0));
    let hit = rest()
        .right(Arm::deg(15.0, 160.0, 0.0, 5.0).wrist_deg(30.0))
        .left(Arm::deg(0.0, 60.0, 0.0, 40.0))
        .trunk_deg(10.0, 0.0, 0.0)
        .lift(0.04);
    let follow = rest()
        .right(Arm::deg(-30.0, 20.0, 0.0, 20.0))
        .trunk_deg(30.0, 0.0, -20.0);
    keyframes(u, &[
        (0.0, rest()), (0.28, toss), (0.42, trophy), (0.56, hit), (0.72, follow), (1.0, rest()),
    ])
}

#[rustfmt::skip]
fn push(u: f64) -> Pose {
    let chest = rest().arms(Arm::deg(15.0, 55.0, 0.0, 125.0).wrist_deg(-60.0));
    let pushed = rest().arms(Arm::deg(10.0, 85.0, 0.0, 10.0).wrist_deg(-60.0));
    keyframes(u, &[
        (0.0, rest()), (0.3, chest), (0.55, pushed), (0.7, pushed), (1.0, rest()),
    ])
}

fn knock(u: f64) -> Pose {
    let raised = rest().right(Arm::deg(15.0, 70.0, 0.0, 95.0));
    let mut pose = keyframes(u, &[(0.0, rest()), (0.3, raised), (0.75, raised), (1.0, rest())]);
    let knocking = oscillation(u, 0.32, 0.73, 3.0, 0.04);
    pose.right_arm.elbow += 10f64.to_radians() * knocking;
    pose.right_arm.wrist += 20f64.to_radians() * knocking;
    pose
}

#[rustfmt::skip]
fn catch(u: f64) -> Pose {
    let reach = rest().arms(Arm::deg(15.0, 105.0, 0.0, 30.0).wrist_deg(20.0));
    let caught = rest().arms(Arm::deg(10.0, 45.0, 0.0, 120.0)).trunk_deg(10.0, 0.0, 0.0);
    keyframes(u, &[
        (0.0, rest()), (0.3, reach), (0.42, reach), (0.55, caught), (0.7, caught), (1.0, rest()),
    ])
}

#[rustfmt::skip]
fn pickup_throw(u: f64) -> Pose {
    let bent = rest()
        .right(Arm::deg(5.0, 75.0, 0.0, 10.0))
        .left(Arm::deg(0.0, 40.0, 0.0, 20.0))
        .trunk_deg(65.0, 0.0, 0.0)
        .both_legs(Leg::deg(35.0, 55.0, 0.0));
    let holding = rest().right(Arm::deg(20.0, 40.0, 0.0, 100.0));
    let [cocked, released, follow] = throw_poses();
    keyframes(u, &[
        (0.0, rest()), (0.18, bent), (0.26, bent), (0.4, holding), (0.52, cocked), (0.67, released),
        (0.8, follow), (1.0, rest()),
    ])
}

/// Stepping in place: the legs take turns lifting the knee, the arms swing against the legs.
struct Gait {
    strides: f64,
    hip: f64,
    knee: f64,
    toe_down: f64,
    arm_swing: f64,
    elbow: f64,
    bounce: f64,
}

const JOG: Gait = Gait { strides: 4.0, hip: 55.0, knee: 85.0, toe_down: 25.0, arm_swing: 30.0, elbow: 90.0, bounce: 0.02 };
const WALK: Gait = Gait { strides: 3.0, hip: 30.0, knee: 45.0, toe_down: 10.0, arm_swing: 15.0, elbow: 25.0, bounce: 0.0 };

fn gait(u: f64, g: &Gait) -> Pose {
    let engaged = window(u, 0.06, 0.94, 0.1);
    let phase = TAU * g.strides * (u - 0.06) / 0.88;
    let leg = |offset: f64| {
        let lift = engaged * (0.5 * (1.0 + (phase + offset).sin())).powi(2);
        Leg::deg(g.hip * lift, 3.0 + g.knee * lift, g.toe_down * lift)
    };
    let arm = |offset: f64| Arm::deg(0.0, 6.0 + engaged * g.arm_swing * (phase + offset).sin(), 0.0, 12.0 + engaged * (g.elbow - 12.0));
    let bounce = engaged * g.bounce * 0.5 * (1.0 - (2.0 * phase).cos());
    rest().legs(leg(0.0), leg(PI)).right(arm(PI)).left(arm(0.0)).lift(bounce)
}

fn sit_to_stand(u: f64) -> Pose {
    let sitting = rest().arms(Arm::deg(5.0, 35.0, 0.0, 55.0)).both_legs(Leg::deg(90.0, 90.0, 0.0)).trunk_deg(10.0, 0.0, 0.0);
    let leaning = sitting.arms(Arm::deg(5.0, 55.0, 0.0, 40.0)).trunk_deg(45.0, 0.0, 0.0);
    let rising = rest().both_legs(Leg::deg(35.0, 40.0, 0.0)).trunk_deg(25.0, 0.0, 0.0);
    keyframes(u, &[(0.0, sitting), (0.35, leaning), (0.65, rising), (1.0, rest())])
}

fn lunge(u: f64) -> Pose {
    let lunged = rest().legs(Leg::deg(70.0, 85.0, 0.0), Leg::deg(-15.0, 60.0, 30.0)).arms(Arm::deg(15.0, 20.0, 0.0, 30.0)).trunk_deg(5.0, 0.0, 0.0);
    keyframes(u, &[(0.0, rest()), (0.35, lunged), (0.65, lunged), (1.0, rest())])
}

fn squat(u: f64) -> Pose {
    let down = rest().both_legs(Leg::deg(95.0, 115.0, 0.0)).trunk_deg(40.0, 0.0, 0.0).arms(Arm::deg(5.0, 85.0, 0.0, 10.0));
    keyframes(u, &[(0.0, rest()), (0.45, down), (0.55, down), (1.0, rest())])
}
