//! Event patterns (DESIGN §2): plain equality, every operator, array
//! fan-out, missing fields, and the exact compile-error messages. Every
//! case also checks that `explain` finds a miss exactly when `matches` is
//! false (`ok`), so the explanation shares the matcher's semantics over
//! the whole table.

use enact_background_core::pattern::EventPattern;
use serde_json::{json, Value};

const P: &str = "condition.eventPattern";

fn pat(p: Value) -> EventPattern {
    EventPattern::compile(&p, P).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// `p.matches(data)`, after checking that `p.explain(data)` agrees: no
/// miss exactly when it matches, and a miss names a key of the pattern.
fn ok(p: &EventPattern, data: &Value) -> bool {
    let matched = p.matches(data);
    let miss = p.explain(data);
    assert_eq!(miss.is_none(), matched, "explain {miss:?} disagrees with matches ({matched}) on {data}");
    matched
}

fn m(p: Value, data: Value) -> bool {
    ok(&pat(p), &data)
}

fn err(p: Value) -> String {
    match EventPattern::compile(&p, P) {
        Ok(_) => panic!("{p} compiled"),
        Err(e) => e,
    }
}

// ---- plain equality ----------------------------------------------------

#[test]
fn pattern_fixture_status_completed() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/enact-core-0.0.2/trigger_event.json");
    let trigger: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let pattern = &trigger["condition"]["eventPattern"];
    assert_eq!(pattern, &json!({"status": "completed"}));
    let p = EventPattern::compile(pattern, P).unwrap();
    assert!(ok(&p, &json!({"status": "completed"})));
    assert!(!ok(&p, &json!({"status": "failed"})));
    assert!(!ok(&p, &json!({})));
}

#[test]
fn pattern_empty_matches_everything() {
    let p = pat(json!({}));
    for data in [json!({}), json!({"a": 1}), json!(null), json!([1, 2]), json!("x")] {
        assert!(ok(&p, &data), "{data}");
    }
}

#[test]
fn pattern_plain_scalars() {
    assert!(m(json!({"s": "a"}), json!({"s": "a"})));
    assert!(!m(json!({"s": "a"}), json!({"s": "b"})));
    assert!(!m(json!({"s": "1"}), json!({"s": 1})));
    assert!(m(json!({"b": true}), json!({"b": true})));
    assert!(!m(json!({"b": true}), json!({"b": "true"})));
    assert!(!m(json!({"s": "a"}), json!({"other": "a"})));
    assert!(!m(json!({"s": "a"}), json!("a")));
}

#[test]
fn pattern_numbers_compare_by_value() {
    assert!(m(json!({"n": 1}), json!({"n": 1.0})));
    assert!(m(json!({"n": 1.0}), json!({"n": 1})));
    assert!(m(json!({"n": -2}), json!({"n": -2.0})));
    assert!(!m(json!({"n": 1}), json!({"n": 1.5})));
    assert!(m(json!({"n": {"$in": [3.0]}}), json!({"n": 3})));
    assert!(m(json!({"n": {"a": [1.0]}}), json!({"n": {"a": [1]}})));
}

#[test]
fn pattern_null_equality_and_exists() {
    assert!(m(json!({"x": null}), json!({"x": null})));
    assert!(!m(json!({"x": null}), json!({})), "null does not match an absent field");
    assert!(!m(json!({"x": null}), json!({"x": 0})));
    assert!(m(json!({"x": {"$exists": true}}), json!({"x": null})));
    assert!(!m(json!({"x": {"$exists": false}}), json!({"x": null})));
}

#[test]
fn pattern_deep_equality_objects_and_arrays() {
    let obj = json!({"a": 1, "b": {"c": [1, "two", null]}});
    assert!(m(json!({"o": obj}), json!({"o": {"b": {"c": [1, "two", null]}, "a": 1}})));
    assert!(!m(json!({"o": obj}), json!({"o": {"a": 1, "b": {"c": [1, "two"]}}})));
    assert!(!m(json!({"o": obj}), json!({"o": {"a": 1, "b": {"c": [1, "two", null]}, "extra": 0}})));
    assert!(!m(json!({"o": {"a": 1}}), json!({"o": {}})));
    assert!(m(json!({"o": {}}), json!({"o": {}})));
    assert!(!m(json!({"o": {}}), json!({"o": {"a": 1}})));
    // Arrays: exact equality, order matters.
    assert!(m(json!({"t": [1, 2]}), json!({"t": [1, 2]})));
    assert!(!m(json!({"t": [1, 2]}), json!({"t": [2, 1]})));
    assert!(!m(json!({"t": [1, 2]}), json!({"t": [1, 2, 3]})));
    // A nested object in a pattern value is literal, not a nested pattern.
    assert!(!m(json!({"a": {"b": 1}}), json!({"a": {"b": 1, "c": 2}})));
}

#[test]
fn pattern_plain_value_matches_any_array_element() {
    assert!(m(json!({"tags": "vip"}), json!({"tags": ["new", "vip"]})));
    assert!(!m(json!({"tags": "vip"}), json!({"tags": ["new"]})));
    assert!(!m(json!({"tags": "vip"}), json!({"tags": []})));
    assert!(m(json!({"tags": ["a", "b"]}), json!({"tags": ["a", "b"]})), "exact array");
    assert!(m(json!({"tags": ["a", "b"]}), json!({"tags": [["a", "b"], "c"]})), "an element equal to the array");
    assert!(!m(json!({"tags": ["a"]}), json!({"tags": ["a", "b"]})));
    assert!(m(json!({"o": {"k": 1}}), json!({"o": [{"k": 2}, {"k": 1}]})));
}

#[test]
fn pattern_nested_paths() {
    let data = json!({"user": {"plan": "pro", "org": {"id": 7}}});
    assert!(m(json!({"user.plan": "pro"}), data.clone()));
    assert!(m(json!({"user.org.id": 7}), data.clone()));
    assert!(!m(json!({"user.org.id": 8}), data.clone()));
    assert!(!m(json!({"user.org.name": "x"}), data.clone()));
    assert!(!m(json!({"user.plan.tier": "x"}), data.clone()), "walking into a string is absent");
    assert!(m(json!({"user": {"plan": "pro", "org": {"id": 7}}}), data));
}

#[test]
fn pattern_fan_out_through_arrays_of_objects() {
    let data = json!({"order": {"items": [{"sku": "A1", "qty": 1}, {"sku": "B2", "qty": 5}, {"note": "gift"}]}});
    assert!(m(json!({"order.items.sku": "B2"}), data.clone()));
    assert!(!m(json!({"order.items.sku": "C3"}), data.clone()));
    assert!(m(json!({"order.items.qty": {"$gt": 4}}), data.clone()));
    assert!(m(json!({"order.items.sku": {"$prefix": "A"}}), data.clone()));
    assert!(m(json!({"order.items.sku": {"$in": ["X", "A1"]}}), data.clone()));
    assert!(!m(json!({"order.items.sku": {"$ne": "A1"}}), data.clone()));
    assert!(m(json!({"order.items.sku": {"$ne": "C3"}}), data.clone()));
    assert!(!m(json!({"order.items.sku": {"$anythingBut": ["B2"]}}), data.clone()));
    assert!(m(json!({"order.items.sku": {"$anythingBut": ["C3"]}}), data.clone()));
    assert!(m(json!({"order.items.note": {"$exists": true}}), data.clone()));
    assert!(m(json!({"order.items.color": {"$exists": false}}), data.clone()));
    // Several levels of arrays, and nested arrays flattened.
    let deep = json!({"a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": {"c": 3}}, [{"b": {"c": 4}}]]});
    for c in [1, 2, 3, 4] {
        assert!(m(json!({"a.b.c": c}), deep.clone()), "c = {c}");
    }
    assert!(!m(json!({"a.b.c": 5}), deep.clone()));
    assert!(!m(json!({"a.b.c": {"$anythingBut": 4}}), deep.clone()));
    // Fan-out that finds nothing is absent.
    let none = json!({"a": [{"x": 1}, 2, "s"]});
    assert!(!m(json!({"a.b": {"$exists": true}}), none.clone()));
    assert!(m(json!({"a.b": {"$exists": false}}), none.clone()));
    assert!(m(json!({"a.b": {"$ne": 1}}), none.clone()));
    assert!(!m(json!({"a.b": {"$anythingBut": 1}}), none.clone()));
    assert!(!m(json!({"a": {"$exists": false}}), json!({"a": []})), "an empty array is present");
    assert!(!m(json!({"a.b": {"$exists": true}}), json!({"a": []})), "fan-out over [] is absent");
}

#[test]
fn pattern_numeric_segments_are_object_keys() {
    assert!(!m(json!({"items.0.sku": "A"}), json!({"items": [{"sku": "A"}]})));
    assert!(m(json!({"items.0.sku": "A"}), json!({"items": {"0": {"sku": "A"}}})));
}

// ---- operators ---------------------------------------------------------

#[test]
fn pattern_in() {
    let p = pat(json!({"plan": {"$in": ["pro", "team", 3]}}));
    assert!(ok(&p, &json!({"plan": "pro"})));
    assert!(ok(&p, &json!({"plan": 3.0})));
    assert!(!ok(&p, &json!({"plan": "free"})));
    assert!(!ok(&p, &json!({})));
    assert!(!ok(&p, &json!({"plan": null})));
    assert!(ok(&p, &json!({"plan": ["free", "team"]})));
    assert!(!ok(&p, &json!({"plan": ["free", "basic"]})));
    assert!(!m(json!({"x": {"$in": []}}), json!({"x": 1})), "an empty list never holds");
    assert!(m(json!({"x": {"$in": [null]}}), json!({"x": null})));
    assert!(!m(json!({"x": {"$in": [null]}}), json!({})));
    assert!(m(json!({"x": {"$in": [[1, 2]]}}), json!({"x": [1, 2]})));
}

#[test]
fn pattern_ne() {
    let p = pat(json!({"status": {"$ne": "failed"}}));
    assert!(ok(&p, &json!({"status": "completed"})));
    assert!(!ok(&p, &json!({"status": "failed"})));
    assert!(ok(&p, &json!({})), "a missing field matches $ne");
    assert!(ok(&p, &json!({"status": null})));
    assert!(ok(&p, &json!({"status": ["ok", "done"]})));
    assert!(!ok(&p, &json!({"status": ["ok", "failed"]})), "no element may equal");
    assert!(ok(&p, &json!({"status": []})));
    assert!(!m(json!({"n": {"$ne": 1}}), json!({"n": 1.0})));
    assert!(!m(json!({"n": {"$ne": null}}), json!({"n": null})));
    assert!(m(json!({"n": {"$ne": null}}), json!({})));
}

#[test]
fn pattern_exists() {
    let yes = pat(json!({"a.b": {"$exists": true}}));
    let no = pat(json!({"a.b": {"$exists": false}}));
    for data in [json!({"a": {"b": 0}}), json!({"a": {"b": null}}), json!({"a": {"b": false}}), json!({"a": {"b": []}})] {
        assert!(ok(&yes, &data), "{data}");
        assert!(!ok(&no, &data), "{data}");
    }
    for data in [json!({}), json!({"a": {}}), json!({"a": 1}), json!({"a": {"c": 1}}), json!(null)] {
        assert!(!ok(&yes, &data), "{data}");
        assert!(ok(&no, &data), "{data}");
    }
}

#[test]
fn pattern_prefix_and_suffix() {
    let pre = pat(json!({"email": {"$prefix": "admin@"}}));
    assert!(ok(&pre, &json!({"email": "admin@x.io"})));
    assert!(ok(&pre, &json!({"email": "admin@"})));
    assert!(!ok(&pre, &json!({"email": "user@x.io"})));
    assert!(!ok(&pre, &json!({})));
    assert!(!ok(&pre, &json!({"email": 5})));
    assert!(!ok(&pre, &json!({"email": null})));
    assert!(ok(&pre, &json!({"email": ["a@b", "admin@c"]})));
    assert!(!ok(&pre, &json!({"email": ["a@b", "c@d"]})));
    let suf = pat(json!({"file": {"$suffix": ".pdf"}}));
    assert!(ok(&suf, &json!({"file": "report.pdf"})));
    assert!(!ok(&suf, &json!({"file": "report.pdf.zip"})));
    assert!(!ok(&suf, &json!({})));
    assert!(!ok(&suf, &json!({"file": true})));
    assert!(ok(&suf, &json!({"file": ["a.txt", "b.pdf"]})));
    assert!(!ok(&suf, &json!({"file": ["a.txt"]})));
    assert!(m(json!({"s": {"$prefix": ""}}), json!({"s": "anything"})));
    assert!(m(json!({"s": {"$prefix": "ab", "$suffix": "yz"}}), json!({"s": "abxyz"})));
    assert!(!m(json!({"s": {"$prefix": "ab", "$suffix": "yz"}}), json!({"s": ["ab", "yz"]})), "one element must satisfy both");
}

#[test]
fn pattern_comparisons() {
    let cases = [
        ("$gt", 5, [(6.0, true), (5.0, false), (4.0, false)]),
        ("$gte", 5, [(6.0, true), (5.0, true), (4.0, false)]),
        ("$lt", 5, [(6.0, false), (5.0, false), (4.0, true)]),
        ("$lte", 5, [(6.0, false), (5.0, true), (4.0, true)]),
    ];
    for (op, bound, rows) in cases {
        let p = pat(json!({"n": {op: bound}}));
        for (value, want) in rows {
            assert_eq!(ok(&p, &json!({"n": value})), want, "{op} {bound} on {value}");
        }
        assert!(!ok(&p, &json!({})), "{op}: missing");
        for non_number in [json!("6"), json!("4"), json!(null), json!(true), json!({"n": 6})] {
            assert!(!ok(&p, &json!({"n": non_number})), "{op} on {non_number}");
        }
    }
    assert!(m(json!({"n": {"$gt": 1.5}}), json!({"n": 2})));
    assert!(m(json!({"n": {"$lt": -1}}), json!({"n": -1.5})));
    assert!(m(json!({"n": {"$gt": 10}}), json!({"n": [1, 20]})));
    assert!(!m(json!({"n": {"$gt": 10}}), json!({"n": [1, 2]})));
}

#[test]
fn pattern_combined_range() {
    let p = pat(json!({"amount": {"$gte": 1, "$lt": 5}}));
    assert!(ok(&p, &json!({"amount": 1})));
    assert!(ok(&p, &json!({"amount": 4.99})));
    assert!(!ok(&p, &json!({"amount": 5})));
    assert!(!ok(&p, &json!({"amount": 0.5})));
    assert!(!ok(&p, &json!({})));
    assert!(ok(&p, &json!({"amount": [0, 3, 10]})), "one element in range");
    assert!(!ok(&p, &json!({"amount": [0, 10]})), "no single element in range");
    // Positive and negative together.
    let q = pat(json!({"n": {"$gte": 0, "$ne": 3}}));
    assert!(ok(&q, &json!({"n": 2})));
    assert!(!ok(&q, &json!({"n": 3})));
    assert!(!ok(&q, &json!({"n": -1})));
    assert!(!ok(&q, &json!({})));
    assert!(!ok(&q, &json!({"n": [1, 3]})));
}

#[test]
fn pattern_anything_but() {
    let single = pat(json!({"state": {"$anythingBut": "deleted"}}));
    assert!(ok(&single, &json!({"state": "active"})));
    assert!(!ok(&single, &json!({"state": "deleted"})));
    assert!(!ok(&single, &json!({})), "a missing field does not match $anythingBut");
    assert!(ok(&single, &json!({"state": null})));
    let list = pat(json!({"state": {"$anythingBut": ["deleted", "archived", 0]}}));
    assert!(ok(&list, &json!({"state": "active"})));
    assert!(!ok(&list, &json!({"state": "archived"})));
    assert!(!ok(&list, &json!({"state": 0.0})));
    assert!(!ok(&list, &json!({})));
    assert!(ok(&list, &json!({"state": ["active", "new"]})));
    assert!(!ok(&list, &json!({"state": ["active", "deleted"]})), "no element may be listed");
    assert!(ok(&list, &json!({"state": []})), "present, nothing listed");
    assert!(m(json!({"x": {"$anythingBut": []}}), json!({"x": 1})));
    assert!(!m(json!({"x": {"$anythingBut": []}}), json!({})));
    assert!(!m(json!({"x": {"$anythingBut": null}}), json!({"x": null})));
}

#[test]
fn pattern_exists_combined_with_other_operators() {
    assert!(m(json!({"x": {"$exists": true, "$ne": 1}}), json!({"x": 2})));
    assert!(!m(json!({"x": {"$exists": true, "$ne": 1}}), json!({})));
    assert!(m(json!({"x": {"$exists": false, "$ne": 1}}), json!({})));
    assert!(!m(json!({"x": {"$exists": false, "$gt": 1}}), json!({"x": 2})));
}

#[test]
fn pattern_all_keys_required() {
    let p = pat(json!({"type": "order", "amount": {"$gt": 100}, "user.plan": {"$in": ["pro", "team"]}}));
    assert!(ok(&p, &json!({"type": "order", "amount": 150, "user": {"plan": "team"}})));
    assert!(!ok(&p, &json!({"type": "refund", "amount": 150, "user": {"plan": "team"}})));
    assert!(!ok(&p, &json!({"type": "order", "amount": 50, "user": {"plan": "team"}})));
    assert!(!ok(&p, &json!({"type": "order", "amount": 150, "user": {"plan": "free"}})));
    assert!(!ok(&p, &json!({"type": "order", "amount": 150})));
}

#[test]
fn pattern_is_reusable_and_cloneable() {
    let p = pat(json!({"a": 1}));
    let q = p.clone();
    for _ in 0..3 {
        assert!(ok(&p, &json!({"a": 1})));
        assert!(!ok(&q, &json!({"a": 2})));
    }
    assert!(format!("{p:?}").contains("EventPattern"));
}

// ---- compile errors ----------------------------------------------------

#[test]
fn pattern_error_not_an_object() {
    assert_eq!(err(json!("completed")), r#"condition.eventPattern: expected an object, got "completed""#);
    assert_eq!(err(json!([1])), "condition.eventPattern: expected an object, got an array");
    assert_eq!(err(json!(null)), "condition.eventPattern: expected an object, got null");
    assert_eq!(err(json!(3)), "condition.eventPattern: expected an object, got 3");
}

#[test]
fn pattern_error_unknown_operator() {
    assert_eq!(
        err(json!({"user.plan": {"$foo": 1}})),
        r#"condition.eventPattern.user.plan: unknown operator "$foo" (expected one of $in, $ne, $exists, $prefix, $suffix, $gt, $gte, $lt, $lte, $anythingBut)"#
    );
    assert!(err(json!({"a": {"$in": [1], "$eq": 1}})).starts_with(r#"condition.eventPattern.a: unknown operator "$eq""#));
}

#[test]
fn pattern_error_operand_types() {
    assert_eq!(err(json!({"amount": {"$gt": "ten"}})), r#"condition.eventPattern.amount.$gt: expected a number, got "ten""#);
    assert_eq!(
        err(json!({"amount": {"$gte": "x".repeat(50)}})),
        "condition.eventPattern.amount.$gte: expected a number, got a string"
    );
    assert_eq!(err(json!({"amount": {"$lt": null}})), "condition.eventPattern.amount.$lt: expected a number, got null");
    assert_eq!(err(json!({"amount": {"$lte": [1]}})), "condition.eventPattern.amount.$lte: expected a number, got an array");
    assert_eq!(err(json!({"plan": {"$in": "pro"}})), r#"condition.eventPattern.plan.$in: expected an array, got "pro""#);
    assert_eq!(err(json!({"x": {"$exists": 1}})), "condition.eventPattern.x.$exists: expected a boolean, got 1");
    assert_eq!(err(json!({"x": {"$exists": "yes"}})), r#"condition.eventPattern.x.$exists: expected a boolean, got "yes""#);
    assert_eq!(err(json!({"x": {"$prefix": 1}})), "condition.eventPattern.x.$prefix: expected a string, got 1");
    assert_eq!(err(json!({"x": {"$suffix": {"a": 1}}})), "condition.eventPattern.x.$suffix: expected a string, got an object");
}

#[test]
fn pattern_error_mixed_keys() {
    assert_eq!(
        err(json!({"a.b": {"$gt": 1, "c": 2}})),
        r#"condition.eventPattern.a.b: mixes operators and plain keys ("$gt" and "c")"#
    );
}

#[test]
fn pattern_error_empty_keys() {
    assert_eq!(err(json!({"": 1})), "condition.eventPattern: empty key");
    assert_eq!(err(json!({"a..b": 1})), r#"condition.eventPattern: empty segment in key "a..b""#);
    assert_eq!(err(json!({".a": 1})), r#"condition.eventPattern: empty segment in key ".a""#);
    assert_eq!(err(json!({"a.": 1})), r#"condition.eventPattern: empty segment in key "a.""#);
}

#[test]
fn pattern_error_path_prefix_is_the_callers() {
    let e = EventPattern::compile(&json!({"x": {"$gt": true}}), "triggers[2].condition.eventPattern").unwrap_err();
    assert_eq!(e, "triggers[2].condition.eventPattern.x.$gt: expected a number, got boolean true");
}

#[test]
fn pattern_module_doc_example() {
    let p = pat(json!({"status": "completed", "order.items.sku": {"$prefix": "BK-"}, "amount": {"$gte": 10, "$lt": 100}}));
    assert!(ok(&p, &json!({"status": "completed", "order": {"items": [{"sku": "CD-1"}, {"sku": "BK-7"}]}, "amount": 25})));
    assert!(!ok(&p, &json!({"status": "failed", "order": {"items": [{"sku": "BK-7"}]}, "amount": 25})));
}
