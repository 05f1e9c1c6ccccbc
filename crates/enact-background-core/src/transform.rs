//! Result transforms applied before target binding.
//!
//! Lengths count characters (Unicode scalar values), never bytes, so
//! multi-byte text is never split or cut short.
//!
//! ```
//! use enact_background_core::{model::TransformType, transform::apply_transform};
//! let t = apply_transform("Hello\nworld", TransformType::FirstLine, None, None).unwrap();
//! assert_eq!(t, "Hello");
//! let j = apply_transform(r#"{"items":[{"id":1},{"id":2}]}"#, TransformType::JsonExtract, None, Some("$.items[*].id")).unwrap();
//! assert_eq!(j, "[1,2]");
//! ```

use serde_json::Value;

use crate::model::TransformType;

/// Why a transform could not produce a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransformError(pub String);

/// Applies `transform` to `value`.
pub fn apply_transform(
    value: &str,
    transform: TransformType,
    max_length: Option<usize>,
    json_path: Option<&str>,
) -> Result<String, TransformError> {
    match transform {
        TransformType::None => Ok(value.to_owned()),
        TransformType::FirstLine => {
            let line = value.lines().next().unwrap_or("").trim();
            Ok(match max_length {
                Some(max) => truncate_chars(line, max),
                None => line.to_owned(),
            })
        }
        TransformType::Truncate => Ok(match max_length {
            Some(max) => truncate_chars(value, max),
            None => value.to_owned(),
        }),
        TransformType::JsonExtract => {
            let path = json_path
                .filter(|p| !p.is_empty())
                .ok_or_else(|| TransformError("jsonPath: json_extract needs a jsonPath".into()))?;
            let doc: Value = serde_json::from_str(value)
                .map_err(|e| TransformError(format!("value: not valid JSON ({e})")))?;
            let found = json_extract(&doc, path)?;
            Ok(match found {
                Value::String(s) => s,
                other => other.to_string(),
            })
        }
    }
}

/// At most `max` characters; when cut and `max > 3`, the last three are `...`.
pub fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(), // no more than `max` characters
        Some(_) if max <= 3 => s.chars().take(max).collect(),
        Some(_) => {
            let cut = s.char_indices().nth(max - 3).map(|(i, _)| i).unwrap_or(s.len());
            let mut out = String::with_capacity(cut + 3);
            out.push_str(&s[..cut]);
            out.push_str("...");
            out
        }
    }
}

#[derive(Debug, PartialEq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
    Wildcard,
}

fn parse_path(path: &str) -> Result<Vec<Segment<'_>>, TransformError> {
    let bad = |why: &str| TransformError(format!("jsonPath: {why} in {path:?}"));
    let rest = path.strip_prefix('$').ok_or_else(|| bad("must start with '$'"))?;
    let mut segs = Vec::new();
    let mut rest = rest;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() {
                return Err(bad("empty key"));
            }
            segs.push(if key == "*" { Segment::Wildcard } else { Segment::Key(key) });
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad("unclosed '['"))?;
            let inner = &r[..end];
            segs.push(if inner == "*" {
                Segment::Wildcard
            } else if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                Segment::Key(q)
            } else {
                Segment::Index(inner.parse().map_err(|_| bad("index must be a number or '*'"))?)
            });
            rest = &r[end + 1..];
        } else {
            return Err(bad("expected '.' or '['"));
        }
    }
    Ok(segs)
}

/// The value at `path` (`$.a.b`, `$.a[0]`, `$.a[*].b`) in `doc`. A path with
/// a wildcard yields a JSON array of every match.
pub fn json_extract(doc: &Value, path: &str) -> Result<Value, TransformError> {
    let segs = parse_path(path)?;
    let wildcard = segs.contains(&Segment::Wildcard);
    let mut current: Vec<&Value> = vec![doc];
    for seg in &segs {
        let mut next = Vec::with_capacity(current.len());
        for v in current {
            match (seg, v) {
                (Segment::Key(k), Value::Object(m)) => next.extend(m.get(*k)),
                (Segment::Index(i), Value::Array(a)) => next.extend(a.get(*i)),
                (Segment::Wildcard, Value::Array(a)) => next.extend(a.iter()),
                (Segment::Wildcard, Value::Object(m)) => next.extend(m.values()),
                _ => {}
            }
        }
        if next.is_empty() && !wildcard {
            return Err(TransformError(format!("jsonPath: {path} matched nothing")));
        }
        current = next;
    }
    if wildcard {
        Ok(Value::Array(current.into_iter().cloned().collect()))
    } else {
        Ok(current[0].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_counts_characters_not_bytes() {
        assert_eq!(truncate_chars("héllo wörld", 8), "héllo...");
        assert_eq!(truncate_chars("日本語のテキスト", 5), "日本...");
        assert_eq!(truncate_chars("日本語", 3), "日本語");
        assert_eq!(truncate_chars("🎉🎉🎉🎉", 2), "🎉🎉");
    }

    #[test]
    fn first_line_never_splits_multibyte_text() {
        let out = apply_transform("çà et là\nsuite", TransformType::FirstLine, Some(7), None).unwrap();
        assert_eq!(out, "çà e...");
    }

    #[test]
    fn wildcard_yields_each_element() {
        let doc: Value = serde_json::from_str(r#"{"items":[{"id":"a"},{"id":"b"},{"x":1}]}"#).unwrap();
        assert_eq!(json_extract(&doc, "$.items[*].id").unwrap(), serde_json::json!(["a", "b"]));
    }

    #[test]
    fn malformed_paths_are_errors() {
        let doc = serde_json::json!({"a": 1});
        assert!(json_extract(&doc, "a").is_err());
        assert!(json_extract(&doc, "$.a[x]").is_err());
        assert!(json_extract(&doc, "$..a").is_err());
    }
}
