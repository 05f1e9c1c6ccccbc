//! Result transforms: enact-core's own vectors (transforms.json), then the
//! character-counting and JSON-path cases DESIGN §3 asks for.

use enact_background_core::model::TransformType;
use enact_background_core::transform::{apply_transform, json_extract, truncate_chars};
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/enact-core-0.0.2/").to_owned() + name;
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))).unwrap()
}

fn t(value: &str, transform: TransformType, max: Option<usize>, path: Option<&str>) -> String {
    apply_transform(value, transform, max, path).unwrap_or_else(|e| panic!("{value:?} {transform:?}: {e}"))
}

#[test]
fn transforms_match_every_enact_core_vector() {
    let cases = fixture("transforms.json");
    let cases = cases.as_array().expect("an array");
    assert_eq!(cases.len(), 18);
    for (i, c) in cases.iter().enumerate() {
        let transform: TransformType = serde_json::from_value(c["transform"].clone()).unwrap();
        let value = c["value"].as_str().unwrap();
        let max = c["maxLength"].as_u64().map(|n| n as usize);
        let path = c["jsonPath"].as_str();
        let got = apply_transform(value, transform, max, path);
        if c["error"].as_bool().unwrap() {
            assert!(got.is_err(), "case {i} ({c}): expected an error, got {got:?}");
            assert!(!got.unwrap_err().0.is_empty(), "case {i}: error has a message");
        } else {
            assert_eq!(got.as_deref(), Ok(c["result"].as_str().unwrap()), "case {i} ({c})");
        }
    }
}

#[test]
fn transforms_truncate_counts_characters_not_bytes() {
    // 11 characters, 13 bytes.
    assert_eq!(t("héllo wörld", TransformType::Truncate, Some(11), None), "héllo wörld");
    assert_eq!(t("héllo wörld", TransformType::Truncate, Some(8), None), "héllo...");
    // 7 characters, 21 bytes: within a 10-character limit, untouched.
    assert_eq!(t("日本語テキスト", TransformType::Truncate, Some(10), None), "日本語テキスト");
    assert_eq!(t("日本語テキスト", TransformType::Truncate, Some(7), None), "日本語テキスト");
    assert_eq!(t("日本語テキスト", TransformType::Truncate, Some(6), None), "日本語...");
    // Four-byte scalars.
    assert_eq!(t("🎉🎉🎉🎉🎉", TransformType::Truncate, Some(4), None), "🎉...");
    assert_eq!(t("🎉🎉🎉🎉🎉", TransformType::Truncate, Some(5), None), "🎉🎉🎉🎉🎉");
    assert_eq!(t("🎉🎉🎉🎉🎉", TransformType::Truncate, Some(3), None), "🎉🎉🎉");
    assert_eq!(t("🎉🎉🎉🎉🎉", TransformType::Truncate, Some(0), None), "");
    assert_eq!(t("", TransformType::Truncate, Some(0), None), "");
    // No limit: unchanged.
    assert_eq!(t("日本語テキスト", TransformType::Truncate, None, None), "日本語テキスト");
    // The result never exceeds the limit, in characters, and is valid text.
    let text = "añb🎉c日d".repeat(20);
    for max in 0..=text.chars().count() + 2 {
        let out = truncate_chars(&text, max);
        assert!(out.chars().count() <= max, "max {max}: {out:?}");
        if max >= text.chars().count() {
            assert_eq!(out, text);
        } else if max > 3 {
            assert!(out.ends_with("..."));
            assert!(text.starts_with(&out[..out.len() - 3]));
            assert_eq!(out.chars().count(), max);
        }
    }
}

#[test]
fn transforms_first_line_counts_characters_and_trims() {
    assert_eq!(t("  Überschrift  \nmehr", TransformType::FirstLine, None, None), "Überschrift");
    assert_eq!(t("çà et là\nsuite", TransformType::FirstLine, Some(7), None), "çà e...");
    assert_eq!(t("çà et là\nsuite", TransformType::FirstLine, Some(8), None), "çà et là");
    assert_eq!(t("日本語\r\n二行目", TransformType::FirstLine, None, None), "日本語");
    assert_eq!(t("\nsecond", TransformType::FirstLine, None, None), "");
    assert_eq!(t("only line", TransformType::FirstLine, None, None), "only line");
}

#[test]
fn transforms_none_is_identity() {
    let s = "  multi\nline 🎉 ";
    assert_eq!(t(s, TransformType::None, Some(2), Some("$.x")), s);
}

#[test]
fn transforms_json_extract_paths() {
    let doc = r#"{"items":[{"id":1,"tag":"a"},{"id":2},{"id":"三"}],"a":{"b":{"c":true}},"s":"text","n":null,"k":{"x y":5}}"#;
    let j = |p: &str| apply_transform(doc, TransformType::JsonExtract, None, Some(p));
    assert_eq!(j("$.items[*].id").as_deref(), Ok(r#"[1,2,"三"]"#));
    assert_eq!(j("$.items[*].tag").as_deref(), Ok(r#"["a"]"#));
    assert_eq!(j("$.items[0].id").as_deref(), Ok("1"));
    assert_eq!(j("$.items[2].id").as_deref(), Ok("三"), "strings are unquoted");
    assert_eq!(j("$.a.b.c").as_deref(), Ok("true"));
    assert_eq!(j("$.a.b").as_deref(), Ok(r#"{"c":true}"#));
    assert_eq!(j("$.s").as_deref(), Ok("text"));
    assert_eq!(j("$.n").as_deref(), Ok("null"));
    assert_eq!(j("$['k']['x y']").as_deref(), Ok("5"));
    assert_eq!(j("$").as_deref(), Ok(serde_json::to_string(&serde_json::from_str::<Value>(doc).unwrap()).unwrap().as_str()));
    // A wildcard that matches nothing is an empty list, not an error.
    assert_eq!(j("$.items[*].missing").as_deref(), Ok("[]"));
    // Misses and malformed paths are errors.
    for bad in ["$.missing", "$.items[9]", "$.a.b.c.d", "items", "$.items[x]", "$..id", "$.items[0", ""] {
        assert!(j(bad).is_err(), "{bad:?} should fail");
    }
    // Missing path, or a value that is not JSON.
    assert!(apply_transform(doc, TransformType::JsonExtract, None, None).is_err());
    assert!(apply_transform("plain text", TransformType::JsonExtract, None, Some("$.a")).is_err());
    // Works on a top-level array too.
    assert_eq!(apply_transform("[[1,2],[3]]", TransformType::JsonExtract, None, Some("$[1][0]")).as_deref(), Ok("3"));
    assert_eq!(apply_transform("[{\"a\":1},{\"a\":2}]", TransformType::JsonExtract, None, Some("$[*].a")).as_deref(), Ok("[1,2]"));
}

#[test]
fn transforms_json_extract_wildcard_on_objects() {
    let doc = json!({"m": {"x": {"v": 1}, "y": {"v": 2}}});
    assert_eq!(json_extract(&doc, "$.m.*.v").unwrap(), json!([1, 2]));
    assert_eq!(json_extract(&doc, "$.m[*].v").unwrap(), json!([1, 2]));
}
