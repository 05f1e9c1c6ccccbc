//! KSUID-based identifiers: a prefix (`exec_`, `trigger_`, …) and 27 base62
//! characters that sort by creation time.
//!
//! The 128-bit payload is a process-wide counter (from a random start) in
//! its high 64 bits and random bits in its low 64: ids made by one process
//! within one second also sort in the order they were made. A durable
//! store keys its rows by id, so new rows land at the end of the key's
//! B-tree instead of at random places in the current second's range (each
//! commit then dirties a page or two of that index, not one per row), while
//! 64 random bits keep ids of different processes apart.
//!
//! ```
//! let id = enact_background_core::ids::new_id("exec_");
//! assert!(id.starts_with("exec_") && id.len() == 5 + 27);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// KSUID epoch: 2014-05-13T16:53:20Z.
const KSUID_EPOCH: u64 = 1_400_000_000;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new 27-character KSUID for the current time.
pub fn ksuid() -> String {
    let mut s = String::with_capacity(27);
    push_ksuid(&mut s, now_secs(), payload());
    s
}

/// The next payload: the counter's next value over 64 random bits.
fn payload() -> u128 {
    static COUNTER: OnceLock<AtomicU64> = OnceLock::new();
    // A random start below 2^62: wrapping would take 2^62 ids.
    let n = COUNTER.get_or_init(|| AtomicU64::new(fastrand::u64(..1 << 62))).fetch_add(1, Ordering::Relaxed);
    (u128::from(n) << 64) | u128::from(fastrand::u64(..))
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The KSUID for `unix_secs` and a 128-bit random payload.
pub fn ksuid_from(unix_secs: u64, payload: u128) -> String {
    let mut s = String::with_capacity(27);
    push_ksuid(&mut s, unix_secs, payload);
    s
}

/// 62^5: five base62 digits per division round, and still below 2^32.
const BASE62_5: u64 = 62 * 62 * 62 * 62 * 62;

/// Appends the KSUID's 27 base62 digits to `out`.
fn push_ksuid(out: &mut String, unix_secs: u64, payload: u128) {
    let ts = unix_secs.saturating_sub(KSUID_EPOCH).min(u32::MAX as u64) as u32;
    // 160-bit big-endian number as five u32 words.
    let mut words = [ts, (payload >> 96) as u32, (payload >> 64) as u32, (payload >> 32) as u32, payload as u32];
    let mut digits = [b'0'; 30];
    let mut pos = digits.len();
    // Divide by 62^5 per round (a constant divisor: a multiply, not a
    // division), then split each remainder into five digits.
    while pos > 0 {
        let mut rem: u64 = 0;
        for w in words.iter_mut() {
            let acc = (rem << 32) | *w as u64;
            *w = (acc / BASE62_5) as u32;
            rem = acc % BASE62_5;
        }
        let mut r = rem as u32;
        for _ in 0..5 {
            pos -= 1;
            digits[pos] = BASE62[(r % 62) as usize];
            r /= 62;
        }
    }
    // 27 digits always suffice for 160 bits; the top three are zero.
    out.push_str(std::str::from_utf8(&digits[3..]).expect("base62 is ASCII"));
}

/// `prefix` followed by a new KSUID.
pub fn new_id(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 27);
    s.push_str(prefix);
    push_ksuid(&mut s, now_secs(), payload());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksuid_is_27_base62_chars_and_time_ordered() {
        let a = ksuid_from(1_700_000_000, u128::MAX);
        let b = ksuid_from(1_700_000_001, 0);
        assert_eq!(a.len(), 27);
        assert!(a.bytes().all(|c| BASE62.contains(&c)));
        assert!(a < b, "{a} should sort before {b}");
    }

    #[test]
    fn ksuid_extremes_match_the_spec() {
        // The KSUID spec's min and max values.
        assert_eq!(ksuid_from(KSUID_EPOCH, 0), "000000000000000000000000000");
        assert_eq!(
            ksuid_from(KSUID_EPOCH + u32::MAX as u64, u128::MAX),
            "aWgEPTl1tmebfsQzFP4bxwgy80V"
        );
    }

    /// Digit by digit, the plain way: the reference for the faster encoder.
    fn reference(unix_secs: u64, payload: u128) -> String {
        let ts = unix_secs.saturating_sub(KSUID_EPOCH).min(u32::MAX as u64) as u32;
        let mut words = [ts, (payload >> 96) as u32, (payload >> 64) as u32, (payload >> 32) as u32, payload as u32];
        let mut out = [b'0'; 27];
        for pos in (0..27).rev() {
            let mut rem: u64 = 0;
            for w in words.iter_mut() {
                let acc = (rem << 32) | *w as u64;
                *w = (acc / 62) as u32;
                rem = acc % 62;
            }
            out[pos] = BASE62[rem as usize];
        }
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn ksuid_matches_the_digit_by_digit_encoding() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..10_000 {
            let (secs, payload) = (KSUID_EPOCH + rng.u64(..=u32::MAX as u64), rng.u128(..));
            assert_eq!(ksuid_from(secs, payload), reference(secs, payload));
        }
        for payload in [0, 1, 61, 62, u64::MAX as u128, u128::MAX] {
            assert_eq!(ksuid_from(KSUID_EPOCH, payload), reference(KSUID_EPOCH, payload));
        }
    }

    #[test]
    fn ids_made_in_one_second_sort_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..10_000).map(|_| new_id("exec_")).collect();
        // Seconds may tick during the loop: each tick only raises the order.
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids out of order");
    }

    #[test]
    fn ids_are_unique() {
        let set: std::collections::HashSet<_> = (0..10_000).map(|_| new_id("exec_")).collect();
        assert_eq!(set.len(), 10_000);
    }
}
