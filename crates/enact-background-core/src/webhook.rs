//! Standard Webhooks signature verification (<https://www.standardwebhooks.com/>).
//!
//! A sender signs `"{webhook-id}.{webhook-timestamp}.{raw body}"` with
//! HMAC-SHA256 under a shared `whsec_<base64>` secret and sends three
//! headers: `webhook-id`, `webhook-timestamp` (unix seconds) and
//! `webhook-signature` (space-separated `v1,<base64>` entries). A receiver
//! checks that all three are present, that the timestamp lies within a
//! tolerance of its own clock, and that at least one `v1` entry matches —
//! comparing bytes in constant time. [`ReplayGuard`] then makes sure a
//! verified message id is acted on once.
//!
//! ```
//! use enact_background_core::webhook::{ReplayGuard, Sight, WebhookHeaders, WebhookSecret};
//!
//! let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! let body = br#"{"hello":"world"}"#;
//! let sig = secret.sign("msg_1", 1_700_000_000, body);
//! let pairs = [("Webhook-Id", "msg_1"), ("Webhook-Timestamp", "1700000000"), ("Webhook-Signature", sig.as_str())];
//! let headers = WebhookHeaders::from_pairs(pairs);
//! assert_eq!(secret.verify(&headers, body, 1_700_000_010, 300), Ok(()));
//! assert_eq!(secret.verify(&headers, b"tampered", 1_700_000_010, 300), Err("no valid v1 signature".to_owned()));
//!
//! // Only after a message verifies, remember its id so a replay is dropped.
//! let mut guard = ReplayGuard::new(600, 100_000);
//! assert_eq!(guard.first_sight("trigger-1", "msg_1", 1_700_000_010), Sight::First);
//! assert_eq!(guard.first_sight("trigger-1", "msg_1", 1_700_000_020), Sight::Replay);
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

const SECRET_PREFIX: &str = "whsec_";

/// A decoded `whsec_…` secret.
///
/// Its `Debug` output is `WebhookSecret(..)`: the key never reaches logs.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (standard alphabet, padded).
    ///
    /// The prefix is required so the field is unambiguous; the error text has
    /// no field prefix: `expected a "whsec_" prefix`,
    /// `not valid base64 after "whsec_"` or `key is empty`.
    pub fn parse(s: &str) -> Result<WebhookSecret, String> {
        let encoded = s.strip_prefix(SECRET_PREFIX).ok_or_else(|| format!("expected a {SECRET_PREFIX:?} prefix"))?;
        let key = STANDARD.decode(encoded).map_err(|_| format!("not valid base64 after {SECRET_PREFIX:?}"))?;
        if key.is_empty() {
            return Err("key is empty".to_owned());
        }
        Ok(WebhookSecret { key })
    }

    /// Returns the `webhook-signature` header value for a message:
    /// `v1,<base64 HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}")>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.tag(msg_id, &timestamp.to_string(), body);
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Verifies the three headers against the raw `body` at `now_secs` (unix
    /// seconds), accepting timestamps at most `tolerance_secs` away from it in
    /// either direction.
    ///
    /// Checks run in this order and the first failure is the reason:
    /// `missing webhook-id header`, `missing webhook-timestamp header`,
    /// `missing webhook-signature header` (an empty value counts as missing),
    /// `webhook-timestamp is not an integer`,
    /// `webhook-timestamp is too old (more than {tolerance_secs} s)`,
    /// `webhook-timestamp is too far in the future`, and
    /// `no valid v1 signature` when no `v1` entry matches. Entries of other
    /// versions and entries whose base64 does not decode are skipped. The
    /// signed content uses the timestamp text exactly as received.
    pub fn verify(&self, headers: &WebhookHeaders<'_>, body: &[u8], now_secs: i64, tolerance_secs: i64) -> Result<(), String> {
        let id = present(headers.id).ok_or("missing webhook-id header")?;
        let timestamp = present(headers.timestamp).ok_or("missing webhook-timestamp header")?;
        let signature = present(headers.signature).ok_or("missing webhook-signature header")?;

        let sent: i64 = timestamp.parse().map_err(|_| "webhook-timestamp is not an integer")?;
        if now_secs.saturating_sub(sent) > tolerance_secs {
            return Err(format!("webhook-timestamp is too old (more than {tolerance_secs} s)"));
        }
        if sent.saturating_sub(now_secs) > tolerance_secs {
            return Err("webhook-timestamp is too far in the future".to_owned());
        }

        let expected = self.tag(id, timestamp, body);
        let mut matched = false;
        for entry in signature.split_ascii_whitespace() {
            let Some(("v1", encoded)) = entry.split_once(',') else { continue };
            let Ok(candidate) = STANDARD.decode(encoded) else { continue };
            // Constant time over the contents; only the (public) length may short-circuit.
            matched |= bool::from(candidate.as_slice().ct_eq(expected.as_slice()));
        }
        if matched {
            Ok(())
        } else {
            Err("no valid v1 signature".to_owned())
        }
    }

    /// HMAC-SHA256 over `"{msg_id}.{timestamp}.{body}"`, fed piecewise so the
    /// body is never copied.
    fn tag(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// The three Standard Webhooks headers as looked up from a request (header
/// names are case-insensitive; the caller resolves them, or uses
/// [`WebhookHeaders::from_pairs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookHeaders<'a> {
    /// The `webhook-id` header: the message id, stable across redeliveries.
    pub id: Option<&'a str>,
    /// The `webhook-timestamp` header: unix seconds, as text.
    pub timestamp: Option<&'a str>,
    /// The `webhook-signature` header: space-separated `version,base64` entries.
    pub signature: Option<&'a str>,
}

impl<'a> WebhookHeaders<'a> {
    /// Looks the three headers up case-insensitively in any (name, value)
    /// iterator; when a name repeats, the first occurrence wins.
    pub fn from_pairs<I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> Self {
        let mut headers = WebhookHeaders::default();
        for (name, value) in pairs {
            let slot = if name.eq_ignore_ascii_case("webhook-id") {
                &mut headers.id
            } else if name.eq_ignore_ascii_case("webhook-timestamp") {
                &mut headers.timestamp
            } else if name.eq_ignore_ascii_case("webhook-signature") {
                &mut headers.signature
            } else {
                continue;
            };
            slot.get_or_insert(value);
        }
        headers
    }
}

/// What a [`ReplayGuard`] answers for a message id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sight {
    /// Not remembered, and there is room to remember it.
    First,
    /// Remembered: a replay.
    Replay,
    /// Not remembered, but the guard holds `capacity` ids that have not
    /// expired yet: it refuses new ids rather than forget one early. The
    /// oldest of them expires at `until_secs` (Unix seconds).
    Full {
        /// When the oldest remembered id expires, freeing room.
        until_secs: i64,
    },
}

/// Remembers accepted webhook-ids for a window so a replayed message is
/// accepted once.
///
/// Keys are `(scope, msg_id)`, so two scopes may receive the same message
/// id independently (the memory store keeps one guard per trigger).
/// Entries expire `window_secs` after they were first seen (the engine uses
/// twice the timestamp tolerance, so a message old enough to have been
/// forgotten is already rejected as too old). Memory is bounded, and ids
/// are forgotten only by time: at `capacity` unexpired ids the guard
/// answers [`Sight::Full`] and refuses new ids until the oldest expires,
/// so replay protection holds for the whole window, flood or not. Record
/// ids only after [`WebhookSecret::verify`] succeeds, so unauthenticated
/// requests cannot fill the guard.
///
/// Expired entries are pruned lazily from the front of an insertion-ordered
/// queue, so each call is O(1) amortized (a clock that steps back can leave
/// expired entries behind an unexpired one; a full guard sweeps them, at
/// most once per second).
#[derive(Debug)]
pub struct ReplayGuard {
    window_secs: i64,
    capacity: usize,
    /// Key → expiry (exclusive: the entry is gone at `now >= expiry`).
    seen: HashMap<Box<str>, i64>,
    /// (expiry, key) in insertion order. A key may appear twice if it was
    /// re-recorded after expiring while an older entry was still queued (a
    /// clock that steps back); the stale entry is recognised by its expiry
    /// no longer matching `seen`.
    order: VecDeque<(i64, Box<str>)>,
    /// When a full guard last swept the whole queue for expired entries.
    swept_at: Option<i64>,
}

impl ReplayGuard {
    /// New guard remembering ids for `window_secs`, holding at most `capacity`
    /// entries (a capacity of 0 is treated as 1).
    pub fn new(window_secs: i64, capacity: usize) -> Self {
        ReplayGuard { window_secs, capacity: capacity.max(1), seen: HashMap::new(), order: VecDeque::new(), swept_at: None }
    }

    /// Records `(scope, msg_id)` at `now_secs` when it is [`Sight::First`];
    /// answers what [`ReplayGuard::check`] answers. A replay does not
    /// extend the window; a full guard records nothing.
    pub fn first_sight(&mut self, scope: &str, msg_id: &str, now_secs: i64) -> Sight {
        let sight = self.check(scope, msg_id, now_secs);
        if sight == Sight::First {
            let key = scoped_key(scope, msg_id);
            let expiry = now_secs.saturating_add(self.window_secs);
            self.seen.insert(key.clone(), expiry);
            self.order.push_back((expiry, key));
        }
        sight
    }

    /// Whether `(scope, msg_id)` would be accepted at `now_secs`, without
    /// recording it: a replay, no room, or first. Drops expired ids.
    pub fn check(&mut self, scope: &str, msg_id: &str, now_secs: i64) -> Sight {
        while self.order.front().is_some_and(|(expiry, _)| *expiry <= now_secs) {
            self.pop_oldest();
        }
        if self.seen(scope, msg_id, now_secs) {
            return Sight::Replay;
        }
        if self.order.len() >= self.capacity && self.swept_at != Some(now_secs) {
            self.sweep(now_secs);
        }
        if self.order.len() >= self.capacity {
            let until_secs = self.order.front().map_or(now_secs, |(expiry, _)| *expiry);
            return Sight::Full { until_secs };
        }
        Sight::First
    }

    /// Whether `(scope, msg_id)` is remembered at `now_secs` (a replay),
    /// without recording it.
    pub fn seen(&self, scope: &str, msg_id: &str, now_secs: i64) -> bool {
        self.seen.get(&scoped_key(scope, msg_id)).is_some_and(|expiry| *expiry > now_secs)
    }

    /// How many ids are currently remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// The most ids remembered at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn pop_oldest(&mut self) {
        if let Some((expiry, key)) = self.order.pop_front() {
            if self.seen.get(&key) == Some(&expiry) {
                self.seen.remove(&key);
            }
        }
    }

    /// Drops every expired or stale entry, wherever it is queued, and
    /// orders the rest by expiry (a clock that stepped back leaves the
    /// queue out of order).
    fn sweep(&mut self, now_secs: i64) {
        self.swept_at = Some(now_secs);
        let seen = &self.seen;
        self.order.retain(|(expiry, key)| *expiry > now_secs && seen.get(key) == Some(expiry));
        self.seen.retain(|_, expiry| *expiry > now_secs);
        self.order.make_contiguous().sort_unstable();
    }
}

/// `"{len(scope)}:{scope}{msg_id}"`: the length prefix keeps
/// ("a", "bc") and ("ab", "c") apart whatever characters either contains.
fn scoped_key(scope: &str, msg_id: &str) -> Box<str> {
    format!("{}:{scope}{msg_id}", scope.len()).into_boxed_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records and answers whether the id was new.
    fn fresh(guard: &mut ReplayGuard, scope: &str, msg_id: &str, now_secs: i64) -> bool {
        guard.first_sight(scope, msg_id, now_secs) == Sight::First
    }

    #[test]
    fn scope_boundary_is_unambiguous() {
        let mut guard = ReplayGuard::new(600, 10);
        assert!(fresh(&mut guard, "a", "bc", 0));
        assert!(fresh(&mut guard, "ab", "c", 0));
        assert!(fresh(&mut guard, "1:a", "b", 0));
        assert_eq!(guard.len(), 3);
    }

    #[test]
    fn clock_stepping_back_keeps_map_and_queue_consistent() {
        let mut guard = ReplayGuard::new(10, 4);
        assert!(fresh(&mut guard, "s", "late", 100)); // expires at 110
        assert!(fresh(&mut guard, "s", "x", 0)); // expires at 10, queued behind "late"
        // At 50 the front ("late") has not expired, so "x" stays queued but is expired in the map.
        assert!(fresh(&mut guard, "s", "x", 50));
        assert_eq!(guard.order.len(), 3);
        assert_eq!(guard.len(), 2);
        assert!(!fresh(&mut guard, "s", "x", 55));
        // Once the clock passes every expiry, the whole queue (stale entry included) drains.
        assert!(fresh(&mut guard, "s", "y", 200));
        assert_eq!((guard.order.len(), guard.len()), (1, 1));
    }

    #[test]
    fn stale_queue_entry_does_not_evict_live_key() {
        let mut guard = ReplayGuard::new(10, 8);
        assert!(fresh(&mut guard, "s", "late", 100));
        assert!(fresh(&mut guard, "s", "x", 0));
        assert!(fresh(&mut guard, "s", "x", 50)); // re-recorded, expiry 60
        // Evicting in order pops "late" and then the stale "x" (expiry 10); the live "x" stays.
        guard.pop_oldest();
        guard.pop_oldest();
        assert_eq!(guard.len(), 1);
        assert!(!fresh(&mut guard, "s", "x", 55));
    }

    #[test]
    fn capacity_bounds_the_queue_too() {
        let mut guard = ReplayGuard::new(1_000, 3);
        for (i, now) in [(0, 500), (1, 0), (2, 0)] {
            assert!(fresh(&mut guard, "s", &i.to_string(), now));
        }
        for (i, now) in [(3, 0), (4, 0)] {
            assert_eq!(guard.first_sight("s", &i.to_string(), now), Sight::Full { until_secs: 1_000 });
            assert!(guard.order.len() <= 3 && guard.len() <= 3);
        }
    }

    /// A clock that stepped back leaves expired ids behind an unexpired
    /// one; a full guard finds them (once per second) instead of refusing.
    #[test]
    fn a_full_guard_sweeps_expired_ids_queued_out_of_order() {
        let mut guard = ReplayGuard::new(10, 3);
        assert!(fresh(&mut guard, "s", "late", 100)); // expires at 110
        assert!(fresh(&mut guard, "s", "a", 0)); // expires at 10, behind "late"
        assert!(fresh(&mut guard, "s", "b", 0));
        assert!(fresh(&mut guard, "s", "c", 15), "a and b expired behind late: swept, room again");
        assert_eq!((guard.order.len(), guard.len()), (2, 2));
        assert_eq!(guard.first_sight("s", "late", 15), Sight::Replay);
        assert!(fresh(&mut guard, "s", "d", 15));
        assert_eq!(guard.first_sight("s", "e", 16), Sight::Full { until_secs: 25 }, "sorted by the sweep: c expires first");
        assert_eq!(guard.first_sight("s", "a", 25), Sight::First, "c and d expired at 25");
    }

    #[test]
    fn huge_timestamps_do_not_overflow() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let min = i64::MIN.to_string();
        let max = i64::MAX.to_string();
        let sig = "v1,AAAA";
        let old = WebhookHeaders { id: Some("m"), timestamp: Some(&min), signature: Some(sig) };
        let future = WebhookHeaders { id: Some("m"), timestamp: Some(&max), signature: Some(sig) };
        assert!(secret.verify(&old, b"", i64::MAX, 300).unwrap_err().contains("too old"));
        assert!(secret.verify(&future, b"", i64::MIN, 300).unwrap_err().contains("future"));
        let mut guard = ReplayGuard::new(i64::MAX, 2);
        assert!(fresh(&mut guard, "s", "m", i64::MAX - 5)); // expiry saturates at i64::MAX
        assert!(!fresh(&mut guard, "s", "m", i64::MAX - 5));
    }
}
