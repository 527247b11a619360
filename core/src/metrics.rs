//! The duration histogram of mod_wsgi 6's metrics (`*_time_buckets` in
//! `mod_wsgi.request_metrics()`): 16 octaves from 1 ms to 65.536 s, each
//! split linearly into 4 sub-buckets, plus one bucket for 65.536 s and more.

/// Number of histogram entries: 64 octave sub-buckets and the overflow one.
pub const BUCKETS: usize = 65;

/// The histogram entry of a duration of `us` microseconds: durations under
/// 1 ms land in entry 0 (with [1, 1.25) ms), 65.536 s and more in
/// entry 64.
pub fn bucket(us: u64) -> usize {
    let ms = us as f64 / 1000.0;
    if ms < 1.0 {
        return 0;
    }
    if ms >= 65536.0 {
        return BUCKETS - 1;
    }
    let octave = ms.log2().floor() as usize;
    let base = (1u64 << octave) as f64;
    let sub = (((ms - base) / base) * 4.0).floor() as usize;
    (octave * 4 + sub.min(3)).min(BUCKETS - 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_octaves_of_four() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(999), 0);
        assert_eq!(bucket(1000), 0);
        assert_eq!(bucket(1250), 1);
        assert_eq!(bucket(1999), 3);
        assert_eq!(bucket(2000), 4);
        assert_eq!(bucket(3000), 6);
        assert_eq!(bucket(65_535_000), 63);
        assert_eq!(bucket(65_536_000), 64);
        assert_eq!(bucket(u64::MAX / 2), 64);
    }
}
