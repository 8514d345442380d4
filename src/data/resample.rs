//! Fourier resampling, numerically the same as `scipy.signal.resample`:
//! real FFT, keep or zero-pad the lowest frequencies, split or join the
//! Nyquist bin as scipy does, inverse FFT, scale by new/old length.

use realfft::num_complex::Complex;
use realfft::RealFftPlanner;
use std::cell::RefCell;

thread_local! {
    static PLANNER: RefCell<RealFftPlanner<f64>> = RefCell::new(RealFftPlanner::new());
}

/// Resamples `x` to `num` samples with the Fourier method.
///
/// Assumes the signal is periodic, exactly like scipy; `num == x.len()`
/// returns the input unchanged.
pub fn fourier_resample(x: &[f64], num: usize) -> Vec<f64> {
    let nx = x.len();
    if nx == num || nx == 0 || num == 0 {
        return if nx == num { x.to_vec() } else { vec![0.0; num] };
    }
    PLANNER.with(|planner| {
        let mut planner = planner.borrow_mut();
        let forward = planner.plan_fft_forward(nx);
        let inverse = planner.plan_fft_inverse(num);
        let mut input = x.to_vec();
        let mut spectrum = forward.make_output_vec();
        // Lengths match the plan, so processing cannot fail.
        let _ = forward.process(&mut input, &mut spectrum);

        let n = num.min(nx);
        let mut out_spectrum = vec![Complex::new(0.0, 0.0); num / 2 + 1];
        let kept = n / 2 + 1; // includes the Nyquist bin when n is even
        out_spectrum[..kept].copy_from_slice(&spectrum[..kept]);
        if n.is_multiple_of(2) {
            if num < nx {
                out_spectrum[n / 2] *= 2.0; // fold the dropped -N/2 bin in
            } else {
                out_spectrum[n / 2] *= 0.5; // split +N/2 between +-N/2
            }
        }
        // An inverse real FFT ignores the imaginary part of DC and Nyquist.
        out_spectrum[0].im = 0.0;
        if num.is_multiple_of(2) {
            out_spectrum[num / 2].im = 0.0;
        }
        let mut out = inverse.make_output_vec();
        let _ = inverse.process(&mut out_spectrum, &mut out);
        let scale = 1.0 / nx as f64; // 1/num for the unnormalised inverse, times num/nx
        out.iter_mut().for_each(|v| *v *= scale);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_constant() {
        let x = [1.0, 2.0, 3.0];
        assert_eq!(fourier_resample(&x, 3), x.to_vec());
        let y = fourier_resample(&[2.5; 7], 12);
        assert!(y.iter().all(|v| (v - 2.5).abs() < 1e-12));
    }

    #[test]
    fn band_limited_sine_is_preserved() {
        // A sine with 3 periods over the window is band-limited for both lengths.
        let sine = |n: usize| -> Vec<f64> { (0..n).map(|i| (2.0 * std::f64::consts::PI * 3.0 * i as f64 / n as f64).sin()).collect() };
        let y = fourier_resample(&sine(40), 50);
        for (a, b) in y.iter().zip(sine(50)) {
            assert!((a - b).abs() < 1e-9);
        }
    }
}
