//! CZU-MHAD's MAT files as the fork of the reference code reads them
//! (docs/method.md, section 1): the inertial file's `sensor` cell holds ten
//! wearable sensors, each a T_i x 7 array (three accelerometer and three
//! gyroscope channels, then a time stamp); each sensor is resampled (Fourier,
//! as `scipy.signal.resample`) to the shortest one's length, the time stamps
//! dropped, and the sensors side by side: T x 60, sensor 0's six channels
//! first. The skeleton file's `skeleton` is T x 100: 25 Kinect v2 joints of
//! (x, y, z, time stamp), the time stamps dropped: T x 25 x 3.

use crate::data::formats::{mat, mat_cell};
use crate::data::resample::fourier_resample;
use anyhow::{bail, Context, Result};
use ndarray::{Array2, Array3, ArrayD};
use std::path::Path;

/// Channels per sensor after the time stamp is dropped.
pub const SENSOR_CHANNELS: usize = 6;

/// The inertial array, `T x (6 * sensors)`.
pub fn read_sensors(path: &Path, variable: &str) -> Result<ArrayD<f64>> {
    let cells = mat_cell::read_mat_cell(path, variable)?;
    sensors_side_by_side(&cells).with_context(|| format!("{}: variable '{variable}'", path.display()))
}

fn sensors_side_by_side(cells: &[mat::MatArray]) -> Result<ArrayD<f64>> {
    for (k, c) in cells.iter().enumerate() {
        if c.dims.len() != 2 || c.dims[1] != SENSOR_CHANNELS + 1 {
            bail!("sensor {} has shape {:?}; expected T x {} (six channels and a time stamp)", k + 1, c.dims, SENSOR_CHANNELS + 1);
        }
    }
    let Some(n) = cells.iter().map(|c| c.dims[0]).min() else { bail!("the sensor cell is empty") };
    if n < 2 {
        bail!("the shortest sensor has {n} time steps (need at least 2)");
    }
    let mut out = Array2::zeros((n, SENSOR_CHANNELS * cells.len()));
    for (s, cell) in cells.iter().enumerate() {
        let rows = cell.dims[0];
        for c in 0..SENSOR_CHANNELS {
            // Column-major: channel c is one contiguous run of `rows` values.
            let column = &cell.data[c * rows..(c + 1) * rows];
            let resampled = if rows > n { fourier_resample(column, n) } else { column.to_vec() };
            out.column_mut(c + SENSOR_CHANNELS * s).assign(&ndarray::ArrayView1::from(&resampled[..]));
        }
    }
    Ok(out.into_dyn())
}

/// The skeleton array, `T x joints x 3`.
pub fn read_skeleton(path: &Path, variable: &str, joints: usize) -> Result<ArrayD<f64>> {
    let m = mat::read_mat_variable(path, variable)?;
    skeleton_without_stamps(&m, joints).with_context(|| format!("{}: variable '{variable}'", path.display()))
}

fn skeleton_without_stamps(m: &mat::MatArray, joints: usize) -> Result<ArrayD<f64>> {
    if m.dims.len() != 2 || m.dims[1] != 4 * joints {
        bail!("shape {:?}; expected T x {} ({joints} joints x (x, y, z, time stamp))", m.dims, 4 * joints);
    }
    let t = m.dims[0];
    // Column-major T x 100: value (row, column) at row + T * column, and
    // column 4j + v is joint j's coordinate v.
    Ok(Array3::from_shape_fn((t, joints, 3), |(row, j, v)| m.data[row + t * (4 * j + v)]).into_dyn())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensors_are_cut_to_the_shortest_and_stamps_dropped() {
        let sensor = |rows: usize, base: f64| mat::MatArray {
            dims: vec![rows, 7],
            data: (0..7).flat_map(|c| (0..rows).map(move |r| if c == 6 { 1e15 } else { base + (10 * c + r) as f64 })).collect(),
        };
        let a = sensors_side_by_side(&[sensor(3, 0.0), sensor(3, 100.0)]).unwrap();
        assert_eq!(a.shape(), &[3, 12]);
        assert_eq!((a[[2, 1]], a[[0, 6]], a[[1, 11]]), (12.0, 100.0, 151.0));
        let b = sensors_side_by_side(&[sensor(3, 0.0), sensor(5, 100.0)]).unwrap();
        assert_eq!(b.shape(), &[3, 12], "resampled to the shortest sensor");
        assert!(sensors_side_by_side(&[mat::MatArray { dims: vec![3, 6], data: vec![0.0; 18] }]).is_err());
    }
}
