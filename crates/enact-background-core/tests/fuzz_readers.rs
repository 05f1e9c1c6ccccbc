//! Fuzz (proptest): the readers of untrusted input — cron expressions, event
//! patterns, submit requests and trigger definitions — never panic, and
//! answer either a value or an error that says where the fault is.
//!
//! A few hundred cases per property keep `cargo test` fast; raise them for a
//! longer hunt with `PROPTEST_CASES=100000 cargo test --release -p
//! enact-background-core --test fuzz_readers`.

use chrono::{DateTime, Utc};
use enact_background_core::cron::{parse_timezone, CronSchedule};
use enact_background_core::error::ErrorCode;
use enact_background_core::pattern::EventPattern;
use enact_background_core::validate;
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

fn config(cases: u32) -> ProptestConfig {
    // PROPTEST_CASES, when set, overrides the default case count.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ---- cron ----------------------------------------------------------------

/// One cron field: tokens of the cron alphabet, so that a good share parse.
fn cron_field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        Just("?".to_string()),
        Just("L".to_string()),
        (0u32..70).prop_map(|n| n.to_string()),
        (0u32..70, 0u32..70).prop_map(|(a, b)| format!("{a}-{b}")),
        (0u32..70, 0u32..40).prop_map(|(a, n)| format!("{a}/{n}")),
        (0u32..40).prop_map(|n| format!("*/{n}")),
        (0u32..9, 0u32..7).prop_map(|(d, n)| format!("{d}#{n}")),
        (0u32..9).prop_map(|d| format!("{d}L")),
        "(SUN|MON|fri|JAN|dec|FUN)(-(SAT|wed|NOV))?(/[0-9])?",
        (1970u32..2210).prop_map(|y| y.to_string()),
        "[0-9*?,/#LW-]{1,6}",
    ]
}

fn cron_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Anything at all, control characters and non-ASCII included.
        any::<String>(),
        "[ \t]*@[a-zA-Z]{0,9}( [0-9])?",
        // Well-formed ones, so that many cases reach next_after.
        prop::sample::select(&[
            "* * * * *", "0 0 * * *", "*/7 * * * * *", "0 0 0 29 2 * *", "0 0 30 2 *", "@hourly", "@yearly",
            "0 0 * * 1/2", "30 2 * * *", "10,35 2 * * *", "0 0 0 1 1 * 2199", "0 0 0 1 1 * 1970", "0 0 * * 5L",
        ][..]).prop_map(str::to_owned),
        // 4 to 8 fields of cron tokens, some joined into lists.
        prop::collection::vec(prop::collection::vec(cron_field(), 1..3).prop_map(|items| items.join(",")), 4..9)
            .prop_map(|fields| fields.join(" ")),
    ]
}

const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "America/Santiago",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
];

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let max = DateTime::<Utc>::MAX_UTC.timestamp();
    let min = DateTime::<Utc>::MIN_UTC.timestamp();
    prop_oneof![
        // Around the schedulable years, and anywhere chrono can represent.
        4 => (-2_300_000_000i64..7_800_000_000).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
        2 => (min..=max).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
        1 => prop_oneof![Just(DateTime::<Utc>::MAX_UTC), Just(DateTime::<Utc>::MIN_UTC)],
    ]
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn fuzz_cron_parse_never_panics_and_next_is_after(text in cron_text(), after in instant(), zone in prop::sample::select(ZONES)) {
        match CronSchedule::parse(&text) {
            Err(message) => prop_assert!(!message.is_empty(), "{text:?}: empty error"),
            Ok(schedule) => {
                let zone = parse_timezone(zone).unwrap();
                if let Some(next) = schedule.next_after(after, zone) {
                    prop_assert!(next > after, "{text:?} in {zone}: {next} not after {after}");
                    // Without gaps (UTC, fixed offsets) the tick is a matching time: asking again
                    // from just before it finds it again. (A gap's tick is a moved time, which need
                    // not match.)
                    if matches!(zone.name(), "UTC" | "Etc/GMT+12") {
                        let again = schedule.next_after(next - chrono::TimeDelta::seconds(1), zone);
                        prop_assert_eq!(again, Some(next), "{:?} in {}", text, zone);
                    }
                }
            }
        }
    }
}

// ---- JSON ----------------------------------------------------------------

/// Field names the readers know, operators, and odd keys, so that generated
/// objects get past the unknown-field check and into the readers below.
const KEYS: &[&str] = &[
    "executionId", "tenantId", "callableName", "input", "context", "config", "metadata", "priority", "timeoutMs",
    "retry", "maxAttempts", "backoffMs", "backoffMultiplier", "targetBinding", "targetType", "targetId", "mode",
    "transform", "type", "delayMs", "triggerId", "name", "description", "status", "condition", "action", "startAt",
    "endAt", "maxFires", "fireCount", "cooldownMs", "lastFiredAt", "createdAt", "updatedAt", "webhookSecret",
    "allowUnsigned", "eventType", "eventPattern", "cronExpression", "intervalSeconds", "timezone", "metricName", "thresholdValue",
    "thresholdOperator", "systemPrompt", "background", "$in", "$ne", "$exists", "$prefix", "$suffix", "$gt", "$gte",
    "$lt", "$lte", "$anythingBut", "$nope", "a", "a.b", "a..b", ".", "", "$", "data.0",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(&[0.0, -0.0, 0.5, 1e300, -1e300, 9007199254740993.0, 255.0, 256.0][..]).prop_map(Value::from),
        prop::sample::select(&[
            "", "active", "schedule", "event", "threshold", "webhook", "manual", "lifecycle", "gt", "neq", "fixed",
            "exponential", "2026-01-01T00:00:00Z", "not a date", "0 9 * * MON-FRI", "Europe/Berlin", "whsec_x", "*",
        ][..])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object of arbitrary pairs, keys mostly known names.
fn request() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), json()), 0..8).prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
}

type Field = (&'static str, f64, BoxedStrategy<Value>);

/// An object with each of `fields` present (as null, too) with its probability, and now and then
/// an extra key, so that generated input gets past the unknown-field and required-field checks.
fn object(fields: Vec<Field>) -> BoxedStrategy<Value> {
    let present: Vec<_> = fields
        .into_iter()
        .map(|(k, p, value)| prop::option::weighted(p, value).prop_map(move |v| v.map(|v| (k.to_owned(), v))))
        .collect();
    (present, prop::option::weighted(0.05, (key(), json())))
        .prop_map(|(present, extra)| Value::Object(present.into_iter().flatten().chain(extra).collect()))
        .boxed()
}

/// Mostly `valid`, sometimes any JSON at all.
fn mostly(valid: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![6 => valid, 1 => json()].boxed()
}

fn one_of(choices: &'static [&'static str]) -> BoxedStrategy<Value> {
    mostly(prop::sample::select(choices).prop_map(Value::from))
}

fn int(lo: i64, hi: i64) -> BoxedStrategy<Value> {
    mostly((lo..=hi).prop_map(Value::from))
}

fn text() -> BoxedStrategy<Value> {
    one_of(&["x", "", "thread_1", "a long enough string to be described only as a string"])
}

/// A required name: mostly fine, now and then empty or of the wrong type.
fn id() -> BoxedStrategy<Value> {
    prop_oneof![12 => Just(Value::from("t1")), 1 => Just(Value::from("")), 1 => json()].boxed()
}

fn time() -> BoxedStrategy<Value> {
    one_of(&["2026-01-01T00:00:00Z", "2026-06-01T12:00:00+02:00", "2025-12-31T23:59:59.999Z", "2026-13-01T00:00:00Z", "yesterday"])
}

fn string_map() -> BoxedStrategy<Value> {
    mostly(prop::collection::btree_map(key(), prop_oneof![4 => any::<String>().prop_map(Value::from), 1 => leaf()], 0..3)
        .prop_map(|m| Value::Object(m.into_iter().collect())))
}

fn retry() -> BoxedStrategy<Value> {
    mostly(object(vec![
        ("maxAttempts", 0.4, int(0, 1002)),
        ("backoffMs", 0.4, int(-1, 86_400_001)),
        ("backoffMultiplier", 0.4, mostly((0.0..200.0f64).prop_map(Value::from))),
    ]))
}

fn target_binding() -> BoxedStrategy<Value> {
    mostly(object(vec![
        ("targetType", 0.97, one_of(&["thread.title", "thread.summary", "execution.summary", "message.metadata", "artifact.create", "memory.write", "custom", "bogus"])),
        ("targetPath", 0.4, text()),
        ("transform", 0.4, one_of(&["none", "first_line", "truncate", "json_extract", "uppercase"])),
        ("maxLength", 0.4, int(-1, 5000)),
        ("jsonPath", 0.4, one_of(&["$.a", "", "a.b"])),
        ("threadId", 0.4, text()),
        ("executionId", 0.4, text()),
    ]))
}

fn submit() -> BoxedStrategy<Value> {
    let config = mostly(object(vec![
        ("mode", 0.4, one_of(&["fire_and_forget", "silent", "deferred", "later"])),
        ("priority", 0.4, int(-1, 300)),
        ("timeoutMs", 0.4, int(0, 1000)),
        ("targetBinding", 0.4, target_binding()),
        ("callbackUrl", 0.4, one_of(&["https://example.com/cb", "http://x", "ftp://x", ""])),
        ("retry", 0.4, retry()),
        ("runAt", 0.4, time()),
        ("delayMs", 0.4, int(-1, 1000)),
    ]));
    object(vec![
        ("executionId", 0.4, text()),
        ("tenantId", 0.97, id()),
        ("callableName", 0.97, id()),
        ("input", 0.4, text()),
        ("context", 0.4, string_map()),
        ("config", 0.4, config),
        ("metadata", 0.4, json().boxed()),
    ])
}

fn definition() -> BoxedStrategy<Value> {
    const TYPES: &[&str] = &["event", "schedule", "webhook", "threshold", "manual", "lifecycle", "cron"];
    prop::sample::select(TYPES)
        .prop_flat_map(|t| {
            // The condition fields of the trigger's type are likely, the others rare.
            let w = |types: &[&str]| if types.contains(&t) { 0.7 } else { 0.03 };
            let (event, schedule, threshold) = (w(&["event", "lifecycle"]), w(&["schedule"]), w(&["threshold"]));
            let condition = mostly(object(vec![
                ("eventType", event, one_of(&["execution.*", "*", "user.signup", ""])),
                ("eventPattern", event, json().boxed()),
                ("cronExpression", schedule, one_of(&["0 9 * * MON-FRI", "61 * * * *", "@hourly", ""])),
                ("intervalSeconds", schedule / 2.0, int(-1, 100)),
                ("timezone", schedule / 2.0, one_of(&["Europe/Berlin", "Mars/Olympus", "UTC"])),
                ("metricName", threshold, id()),
                ("thresholdValue", threshold, mostly(any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)))),
                ("thresholdOperator", threshold, one_of(&["gt", "gte", "lt", "lte", "eq", "neq", "between"])),
            ]));
            let action = mostly(object(vec![
                ("callableName", 0.97, id()),
                ("input", 0.3, text()),
                ("context", 0.3, string_map()),
                ("systemPrompt", 0.3, text()),
                ("targetBinding", 0.3, target_binding()),
                ("background", 0.3, mostly(any::<bool>().prop_map(Value::Bool))),
                ("retry", 0.3, retry()),
            ]));
            object(vec![
                ("triggerId", 0.3, text()),
                ("tenantId", 0.97, id()),
                ("name", 0.3, text()),
                ("description", 0.3, text()),
                ("type", 0.97, mostly(Just(Value::from(t)))),
                ("status", 0.3, one_of(&["active", "paused", "disabled", "fired", "expired", "gone"])),
                ("condition", 0.9, condition),
                ("action", 0.97, action),
                ("startAt", 0.2, time()),
                ("endAt", 0.2, time()),
                ("maxFires", 0.2, int(-1, 10)),
                ("fireCount", 0.2, int(-1, 10)),
                ("cooldownMs", 0.2, int(-1, 10)),
                ("lastFiredAt", 0.2, time()),
                ("createdAt", 0.2, time()),
                ("updatedAt", 0.2, time()),
                ("webhookSecret", if t == "webhook" { 0.5 } else { 0.03 }, one_of(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secret"])),
                ("allowUnsigned", if t == "webhook" { 0.5 } else { 0.03 }, mostly(any::<bool>().prop_map(Value::from))),
            ])
        })
        .boxed()
}

/// Whether `message` starts with a path that names a field of `input`
/// (or the whole input, as `root`): `root: ...`, `key: ...` or `key.sub...: ...`.
fn names_a_field(message: &str, input: &Value, root: &str) -> bool {
    if message.starts_with(&format!("{root}: ")) {
        return true;
    }
    let keys: Vec<&String> = input.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    keys.iter().any(|k| message.starts_with(&format!("{k}: ")) || message.starts_with(&format!("{k}.")))
        || ["tenantId", "callableName", "type", "action", "condition.", "definition", "webhookSecret"].iter().any(|k| message.starts_with(k))
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn fuzz_pattern_compile_match_and_explain_never_panic_and_agree(pattern in prop_oneof![request(), json()], data in prop_oneof![request(), json()]) {
        match EventPattern::compile(&pattern, "condition.eventPattern") {
            Ok(compiled) => {
                // `explain` finds a miss exactly when `matches` is false.
                for d in [&data, &pattern] {
                    let miss = compiled.explain(d);
                    prop_assert_eq!(miss.is_none(), compiled.matches(d), "{:?} on {}", miss, d);
                }
            }
            Err(message) => prop_assert!(message.starts_with("condition.eventPattern"), "{message}"),
        }
    }

    #[test]
    fn fuzz_pattern_plain_value_matches_itself(k in "[a-z]{1,3}", v in leaf()) {
        // A plain (non-object) value means deep equality, so data holding that value matches.
        let pattern = Value::Object([(k.clone(), v.clone())].into_iter().collect());
        let compiled = EventPattern::compile(&pattern, "p").map_err(TestCaseError::fail)?;
        prop_assert!(compiled.matches(&pattern), "{pattern}");
    }

    #[test]
    fn fuzz_submit_request_answers_a_coded_error_naming_a_field(v in prop_oneof![6 => submit(), 1 => request(), 1 => json()]) {
        if let Err(e) = validate::submit_request(&v) {
            prop_assert_eq!(e.code, ErrorCode::InvalidExecution, "{}", e.message);
            prop_assert!(names_a_field(&e.message, &v, "request"), "{}", e.message);
        }
    }

    #[test]
    fn fuzz_trigger_definition_answers_a_coded_error_naming_a_field(v in prop_oneof![6 => definition(), 1 => request(), 1 => json()], now in instant()) {
        if let Err(e) = validate::trigger_definition(&v, now) {
            prop_assert_eq!(e.code, ErrorCode::InvalidTrigger, "{}", e.message);
            prop_assert!(names_a_field(&e.message, &v, "definition"), "{}", e.message);
        }
    }
}
