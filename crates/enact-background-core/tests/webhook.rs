//! Standard Webhooks verification: the published vector, tampering, the
//! signature-list rules, missing headers, the timestamp window, secret
//! parsing and the replay guard.

use enact_background_core::webhook::*;

// The Standard Webhooks project's published vector: the "sign function works"
// test in github.com/standard-webhooks/standard-webhooks,
// libraries/javascript/src/webhook.test.ts (the same values appear in its other
// language libraries). Cross-checked locally with Python's hmac module.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP: i64 = 1614265330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const TOLERANCE: i64 = 300;

fn secret() -> WebhookSecret {
    WebhookSecret::parse(SECRET).unwrap()
}

fn headers<'a>(id: &'a str, timestamp: &'a str, signature: &'a str) -> WebhookHeaders<'a> {
    WebhookHeaders { id: Some(id), timestamp: Some(timestamp), signature: Some(signature) }
}

fn verify_vector(signature: &str, now: i64) -> Result<(), String> {
    secret().verify(&headers(MSG_ID, &TIMESTAMP.to_string(), signature), BODY, now, TOLERANCE)
}

fn no_match() -> Result<(), String> {
    Err("no valid v1 signature".to_owned())
}

#[test]
fn webhook_signs_the_published_vector() {
    assert_eq!(secret().sign(MSG_ID, TIMESTAMP, BODY), EXPECTED);
}

#[test]
fn webhook_verifies_the_published_vector() {
    assert_eq!(verify_vector(EXPECTED, TIMESTAMP), Ok(()));
}

#[test]
fn webhook_sign_then_verify_round_trips() {
    let s = WebhookSecret::parse("whsec_c2VjcmV0LWtleS1ieXRlcy1mb3ItdGVzdHM=").unwrap();
    let body = "{\"ünïcode\":\"✓\",\"n\":1}\n".as_bytes();
    let sig = s.sign("msg_round_trip", 1_700_000_000, body);
    assert!(sig.starts_with("v1,"));
    let h = headers("msg_round_trip", "1700000000", &sig);
    assert_eq!(s.verify(&h, body, 1_700_000_000, TOLERANCE), Ok(()));
    // An empty body is signed and verified like any other.
    let sig = s.sign("m", 5, b"");
    assert_eq!(s.verify(&headers("m", "5", &sig), b"", 5, TOLERANCE), Ok(()));
}

#[test]
fn webhook_wrong_secret_fails() {
    let other = WebhookSecret::parse("whsec_b3RoZXItc2VjcmV0LWtleQ==").unwrap();
    let h = headers(MSG_ID, "1614265330", EXPECTED);
    assert_eq!(other.verify(&h, BODY, TIMESTAMP, TOLERANCE), no_match());
}

#[test]
fn webhook_tampered_body_fails() {
    let h = headers(MSG_ID, "1614265330", EXPECTED);
    let r = secret().verify(&h, br#"{"test": 2432232315}"#, TIMESTAMP, TOLERANCE);
    assert_eq!(r, no_match());
}

#[test]
fn webhook_tampered_id_fails() {
    let h = headers("msg_p5jXN8AQM9LWM0D4loKWxJeK", "1614265330", EXPECTED);
    assert_eq!(secret().verify(&h, BODY, TIMESTAMP, TOLERANCE), no_match());
}

#[test]
fn webhook_tampered_timestamp_fails() {
    let h = headers(MSG_ID, "1614265331", EXPECTED);
    assert_eq!(secret().verify(&h, BODY, TIMESTAMP, TOLERANCE), no_match());
}

#[test]
fn webhook_signs_the_timestamp_text_as_received() {
    // "+1614265330" parses to the same integer, but the sender signed the
    // text "1614265330", so the received text must be what is verified.
    let h = headers(MSG_ID, "+1614265330", EXPECTED);
    assert_eq!(secret().verify(&h, BODY, TIMESTAMP, TOLERANCE), no_match());
}

#[test]
fn webhook_second_of_several_signatures_suffices() {
    let list = format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {EXPECTED}");
    assert_eq!(verify_vector(&list, TIMESTAMP), Ok(()));
    let list = format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=  {EXPECTED} v2,abc=");
    assert_eq!(verify_vector(&list, TIMESTAMP), Ok(()));
}

#[test]
fn webhook_non_v1_entries_are_ignored() {
    // The right bytes under another version label do not count.
    let v1a = EXPECTED.replacen("v1,", "v1a,", 1);
    assert_eq!(verify_vector(&v1a, TIMESTAMP), no_match());
    let v2 = EXPECTED.replacen("v1,", "v2,", 1);
    assert_eq!(verify_vector(&v2, TIMESTAMP), no_match());
    let unversioned = EXPECTED.trim_start_matches("v1,");
    assert_eq!(verify_vector(unversioned, TIMESTAMP), no_match());
    // ...and do not stop a valid v1 entry after them.
    assert_eq!(verify_vector(&format!("{v1a} {EXPECTED}"), TIMESTAMP), Ok(()));
}

#[test]
fn webhook_malformed_base64_entry_is_a_non_match() {
    for bad in ["v1,dawfeoifkpqwoekfpqoekf", "v1,", "v1,!!!notbase64!!!", "v1,g0hM9SsE", "v1"] {
        assert_eq!(verify_vector(bad, TIMESTAMP), no_match(), "{bad:?}");
        assert_eq!(verify_vector(&format!("{bad} {EXPECTED}"), TIMESTAMP), Ok(()), "{bad:?} then valid");
    }
    // A truncated copy of the valid signature is still a non-match.
    assert_eq!(verify_vector(&EXPECTED[..EXPECTED.len() - 4], TIMESTAMP), no_match());
}

#[test]
fn webhook_missing_headers_are_named() {
    let s = secret();
    let ts = TIMESTAMP.to_string();
    let full = headers(MSG_ID, &ts, EXPECTED);
    let cases = [
        (WebhookHeaders { id: None, ..full }, "missing webhook-id header"),
        (WebhookHeaders { timestamp: None, ..full }, "missing webhook-timestamp header"),
        (WebhookHeaders { signature: None, ..full }, "missing webhook-signature header"),
        (WebhookHeaders { id: Some(""), ..full }, "missing webhook-id header"),
        (WebhookHeaders { id: None, timestamp: None, signature: None }, "missing webhook-id header"),
    ];
    for (h, reason) in cases {
        assert_eq!(s.verify(&h, BODY, TIMESTAMP, TOLERANCE), Err(reason.to_owned()), "{h:?}");
    }
}

#[test]
fn webhook_non_integer_timestamp_fails() {
    for ts in ["hello", "1614265330.5", " 1614265330", "1e9", "99999999999999999999"] {
        let h = headers(MSG_ID, ts, EXPECTED);
        assert_eq!(secret().verify(&h, BODY, TIMESTAMP, TOLERANCE), Err("webhook-timestamp is not an integer".to_owned()), "{ts:?}");
    }
}

#[test]
fn webhook_timestamp_window_is_inclusive_of_the_tolerance() {
    assert_eq!(verify_vector(EXPECTED, TIMESTAMP + 299), Ok(()));
    assert_eq!(verify_vector(EXPECTED, TIMESTAMP + 300), Ok(()));
    assert_eq!(verify_vector(EXPECTED, TIMESTAMP + 301), Err("webhook-timestamp is too old (more than 300 s)".to_owned()));
    assert_eq!(verify_vector(EXPECTED, TIMESTAMP - 299), Ok(()));
    assert_eq!(verify_vector(EXPECTED, TIMESTAMP - 300), Ok(()));
    assert_eq!(verify_vector(EXPECTED, TIMESTAMP - 301), Err("webhook-timestamp is too far in the future".to_owned()));
}

#[test]
fn webhook_timestamp_is_checked_before_the_signature() {
    // A stale message is reported as stale even when its signature is also wrong.
    let r = verify_vector("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", TIMESTAMP + 10_000);
    assert_eq!(r, Err("webhook-timestamp is too old (more than 300 s)".to_owned()));
}

#[test]
fn webhook_headers_are_found_case_insensitively() {
    let ts = TIMESTAMP.to_string();
    let pairs = [
        ("content-type", "application/json"),
        ("WEBHOOK-ID", MSG_ID),
        ("Webhook-Timestamp", ts.as_str()),
        ("webhook-signature", EXPECTED),
        ("webhook-id", "a-later-duplicate"),
    ];
    let h = WebhookHeaders::from_pairs(pairs);
    assert_eq!(h, headers(MSG_ID, &ts, EXPECTED));
    assert_eq!(secret().verify(&h, BODY, TIMESTAMP, TOLERANCE), Ok(()));
    assert_eq!(WebhookHeaders::from_pairs([("x-webhook-id", "nope")]), WebhookHeaders { id: None, timestamp: None, signature: None });
}

#[test]
fn webhook_secret_parse_errors() {
    let err = |s: &str| WebhookSecret::parse(s).unwrap_err();
    assert_eq!(err("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), r#"expected a "whsec_" prefix"#);
    assert_eq!(err("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), r#"expected a "whsec_" prefix"#);
    assert_eq!(err(""), r#"expected a "whsec_" prefix"#);
    assert_eq!(err("whsec_not base64!"), r#"not valid base64 after "whsec_""#);
    assert_eq!(err("whsec_abc"), r#"not valid base64 after "whsec_""#);
    assert_eq!(err("whsec_"), "key is empty");
    assert!(WebhookSecret::parse(SECRET).is_ok());
}

#[test]
fn webhook_secret_debug_does_not_leak_the_key() {
    let s = secret();
    let shown = format!("{s:?} {s:#?} {:?}", Some(s.clone()));
    assert!(shown.contains("WebhookSecret(..)"), "{shown}");
    assert!(!shown.contains("MfKQ"), "{shown}");
    // The decoded key bytes must not appear as a byte list either.
    assert!(!shown.contains('['), "{shown}");
    assert_eq!(format!("{s:?}"), "WebhookSecret(..)");
}

/// Records and answers whether the id was new.
fn fresh(g: &mut ReplayGuard, scope: &str, msg_id: &str, now_secs: i64) -> bool {
    g.first_sight(scope, msg_id, now_secs) == Sight::First
}

#[test]
fn replay_guard_first_sight_then_replay() {
    let mut g = ReplayGuard::new(600, 100_000);
    assert!(fresh(&mut g, "trigger-1", "msg_1", 1_000));
    assert_eq!(g.first_sight("trigger-1", "msg_1", 1_000), Sight::Replay);
    assert_eq!(g.first_sight("trigger-1", "msg_1", 1_599), Sight::Replay);
    assert!(fresh(&mut g, "trigger-1", "msg_2", 1_000));
}

#[test]
fn replay_guard_scopes_are_independent() {
    let mut g = ReplayGuard::new(600, 100_000);
    assert!(fresh(&mut g, "trigger-1", "msg_1", 1_000));
    assert!(fresh(&mut g, "trigger-2", "msg_1", 1_000));
    assert!(!fresh(&mut g, "trigger-2", "msg_1", 1_001));
}

#[test]
fn replay_guard_forgets_after_the_window() {
    let mut g = ReplayGuard::new(600, 100_000);
    assert!(fresh(&mut g, "t", "m", 1_000));
    assert!(!fresh(&mut g, "t", "m", 1_599), "a replay does not extend the window");
    assert!(fresh(&mut g, "t", "m", 1_600));
    assert!(!fresh(&mut g, "t", "m", 1_601));
    assert_eq!(g.len(), 1);
    // Expired ids are pruned as time moves on, not kept forever.
    assert!(fresh(&mut g, "t", "other", 10_000));
    assert_eq!(g.len(), 1);
}

/// At capacity the guard refuses new ids until the oldest expires; it
/// never forgets an unexpired id to make room (issue 10 item 5).
#[test]
fn replay_guard_at_capacity_refuses_new_ids_and_forgets_none() {
    let mut g = ReplayGuard::new(600, 3);
    for (id, at) in [("a", 1_000), ("b", 1_010), ("c", 1_020)] {
        assert!(fresh(&mut g, "t", id, at));
    }
    assert_eq!(g.first_sight("t", "d", 1_030), Sight::Full { until_secs: 1_600 });
    assert_eq!(g.check("t", "d", 1_599), Sight::Full { until_secs: 1_600 }, "checking records nothing either");
    assert_eq!(g.len(), 3);
    for id in ["a", "b", "c"] {
        assert_eq!(g.first_sight("t", id, 1_599), Sight::Replay, "{id} is still remembered");
    }
    // The oldest expires: room for exactly one.
    assert!(fresh(&mut g, "t", "d", 1_600));
    assert_eq!(g.first_sight("t", "e", 1_600), Sight::Full { until_secs: 1_610 });
    assert_eq!(g.first_sight("t", "a", 1_600), Sight::Full { until_secs: 1_610 }, "an expired id is new, and there is no room");

    let mut big = ReplayGuard::new(600, 1_000);
    for i in 0..1_000 {
        assert!(fresh(&mut big, "t", &format!("msg_{i}"), 1_000));
    }
    for i in 1_000..5_000 {
        assert!(matches!(big.first_sight("t", &format!("msg_{i}"), 1_000), Sight::Full { .. }));
    }
    assert_eq!(big.len(), 1_000);
    assert_eq!(big.first_sight("t", "msg_0", 1_599), Sight::Replay, "the oldest is kept for the whole window");
    assert!(fresh(&mut big, "t", "msg_5000", 1_600));
}

#[test]
fn webhook_module_example_flow() {
    // Mirrors the module's doc example so it is exercised by this suite too.
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let body = br#"{"hello":"world"}"#;
    let sig = secret.sign("msg_1", 1_700_000_000, body);
    let pairs = [("Webhook-Id", "msg_1"), ("Webhook-Timestamp", "1700000000"), ("Webhook-Signature", sig.as_str())];
    let headers = WebhookHeaders::from_pairs(pairs);
    assert_eq!(secret.verify(&headers, body, 1_700_000_010, 300), Ok(()));
    assert_eq!(secret.verify(&headers, b"tampered", 1_700_000_010, 300), Err("no valid v1 signature".to_owned()));
    let mut guard = ReplayGuard::new(600, 100_000);
    assert_eq!(guard.first_sight("trigger-1", "msg_1", 1_700_000_010), Sight::First);
    assert_eq!(guard.first_sight("trigger-1", "msg_1", 1_700_000_020), Sight::Replay);
}
