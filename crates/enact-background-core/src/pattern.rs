//! Event patterns: compiled matchers over dotted paths in event data.
//!
//! A trigger's `condition.eventPattern` is a JSON object. Each key is a
//! dotted path into the event's `data`; each value says what the data at
//! that path must look like. **Every key must match.** An empty pattern
//! `{}` matches every event.
//!
//! ```
//! use enact_background_core::pattern::EventPattern;
//! use serde_json::json;
//!
//! let p = EventPattern::compile(
//!     &json!({"status": "completed", "order.items.sku": {"$prefix": "BK-"}, "amount": {"$gte": 10, "$lt": 100}}),
//!     "condition.eventPattern",
//! ).unwrap();
//! assert!(p.matches(&json!({"status": "completed", "order": {"items": [{"sku": "CD-1"}, {"sku": "BK-7"}]}, "amount": 25})));
//! assert!(!p.matches(&json!({"status": "failed", "order": {"items": [{"sku": "BK-7"}]}, "amount": 25})));
//! ```
//!
//! # Paths
//!
//! - A key such as `user.plan` is split on `.`; each segment is an object
//!   key. Segments never index arrays: `items.0.sku` looks for a key named
//!   `"0"`. An empty key or an empty segment (`a..b`, `.a`, `a.`) is an
//!   error. Keys cannot contain a literal `.`.
//! - When an array is met *in the middle* of a path, the walk fans out over
//!   its elements (nested arrays are flattened), EventBridge style. So
//!   `order.items.sku` resolves to the `sku` of every item that has one.
//!   A path therefore resolves to zero or more values; it is **absent** when
//!   it resolves to none (no object along the way had the key).
//! - The value at the end of the path is taken as is. If it is an array,
//!   the matchers below see the array itself *and* each of its direct
//!   elements (the "candidates").
//!
//! # Values
//!
//! - A plain value (string, number, boolean, `null`, array, or an object
//!   with no `$` keys) means deep equality with some candidate. Numbers
//!   compare by value (`1` equals `1.0`); objects compare regardless of key
//!   order. So `{"tags": "vip"}` matches `{"tags": ["new", "vip"]}`, and
//!   `{"tags": ["new", "vip"]}` matches that exact array. `null` matches a
//!   present `null`, never an absent field (use `$exists: false` for that).
//!   Nested objects are literal values: write nesting as dotted keys.
//! - An object whose keys all start with `$` is a set of operators, all of
//!   which must hold; mixing `$` keys and plain keys is an error, as is an
//!   unknown operator. Operands are plain values (operators do not nest).
//!
//! # Operators
//!
//! | operator | holds when |
//! |---|---|
//! | `$in: [v, …]` | some candidate equals some listed value (an empty list never holds) |
//! | `$prefix: "s"` / `$suffix: "s"` | some candidate is a string starting / ending with `s` |
//! | `$gt`, `$gte`, `$lt`, `$lte`: number | some candidate is a number with that ordering; non-numbers never hold |
//! | `$exists: true` / `false` | the path is present (even as `null`) / absent |
//! | `$ne: v` | no candidate equals `v`; an absent path holds (MongoDB) |
//! | `$anythingBut: v` or `[v, …]` | the path is present and no candidate equals any listed value (EventBridge); an absent path does **not** hold |
//!
//! Plain equality, `$in`, `$prefix`, `$suffix` and the comparisons are the
//! *positive* matchers: they need a present path, and **all positive
//! matchers of one key must hold for the same candidate**, so
//! `{"$gte": 1, "$lt": 5}` on `[0, 10]` does not match (no element lies in
//! the range) while on `[0, 3]` it does. `$ne` and `$anythingBut` are
//! *negative*: they fail if **any** candidate equals a listed value.
//! `$exists` looks only at presence.
//!
//! Comparisons use `f64`, so integers beyond 2^53 compare approximately;
//! equality between integers is exact.
//!
//! Matching allocates nothing: paths are split and operands parsed once, in
//! [`EventPattern::compile`].
//!
//! # Why a pattern did not match
//!
//! [`EventPattern::explain`] answers the first key that failed (keys in the
//! pattern object's order), which operator failed, what it expected and
//! what the path resolved to. It asks [`EventPattern::matches`]' own test
//! of each key first, so it finds a miss exactly when `matches` is false.
//!
//! ```
//! use enact_background_core::pattern::EventPattern;
//! use serde_json::json;
//!
//! let p = EventPattern::compile(&json!({"total": {"$gte": 100}}), "condition.eventPattern").unwrap();
//! let miss = p.explain(&json!({"total": 50})).unwrap();
//! assert_eq!(miss.to_string(), "pattern field \"total\" failed $gte 100 (got 50)");
//! assert!(p.explain(&json!({"total": 150})).is_none());
//! ```

use serde_json::Value;

use crate::validate::describe;

const OPERATORS: &str = "$in, $ne, $exists, $prefix, $suffix, $gt, $gte, $lt, $lte, $anythingBut";

/// A compiled `eventPattern`: one matcher per dotted path, all of which must hold.
#[derive(Clone, Debug)]
pub struct EventPattern {
    keys: Box<[Key]>,
}

/// One pattern key: its path segments and what the resolved values must satisfy.
#[derive(Clone, Debug)]
struct Key {
    path: Box<[Box<str>]>,
    test: Test,
    /// The key's value as the pattern wrote it (operands as written, for
    /// [`EventPattern::explain`]).
    spec: Value,
}

/// Why an [`EventPattern`] did not match some data: the first key that
/// failed, as [`EventPattern::explain`] finds it. Its `Display` is the
/// sentence `pattern field "total" failed $gte 100 (got 50)`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatternMiss {
    /// The pattern key (a dotted path into the event's data).
    pub field: String,
    /// The operator that failed: `$eq` for a plain value (deep equality),
    /// else the operator as written (`$gte`, `$in`, `$exists`, …). Positive
    /// operators of one key that each hold for some value, but not all
    /// for the same one, are named together: `$gte & $lt`.
    pub operator: String,
    /// The operand as the pattern wrote it (for operators named together,
    /// an object of them).
    pub expected: Value,
    /// What the path resolved to: its value, or an array of its values
    /// when the path fanned out over arrays. `None` when it is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub got: Option<Value>,
    /// True when the path resolved to nothing (absent from the data).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
}

impl std::fmt::Display for PatternMiss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pattern field {:?} failed {} {}", self.field, self.operator, brief(&self.expected))?;
        match &self.got {
            Some(got) => write!(f, " (got {})", brief(got)),
            None => f.write_str(" (field missing)"),
        }
    }
}

/// A value as compact JSON text for a sentence, cut to about 80
/// characters.
pub fn brief(v: &Value) -> String {
    const MAX: usize = 80;
    let text = v.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The matchers of one key.
#[derive(Clone, Debug, Default)]
struct Test {
    /// All must hold for one candidate.
    positive: Box<[Positive]>,
    /// `$ne`: no candidate may equal it.
    ne: Option<Value>,
    /// `$anythingBut`: present, and no candidate may equal any of these.
    anything_but: Option<Box<[Value]>>,
    /// `$exists`.
    exists: Option<bool>,
}

#[derive(Clone, Debug)]
enum Positive {
    Eq(Value),
    In(Box<[Value]>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Cmp(Cmp, f64),
}

#[derive(Clone, Copy, Debug)]
enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl EventPattern {
    /// Compiles a pattern object. `path` is the field path used in error messages, e.g. "condition.eventPattern".
    ///
    /// Errors are complete messages starting with the full path of the
    /// field at fault, e.g. `condition.eventPattern.amount.$gt: expected a
    /// number, got "ten"`.
    pub fn compile(pattern: &Value, path: &str) -> Result<EventPattern, String> {
        let Value::Object(map) = pattern else {
            return Err(format!("{path}: expected an object, got {}", describe(pattern)));
        };
        let keys = map
            .iter()
            .map(|(key, value)| {
                let path_segments = split_key(key, path)?;
                let test = Test::compile(value, &join(path, key))?;
                Ok(Key { path: path_segments, test, spec: value.clone() })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(EventPattern { keys: keys.into_boxed_slice() })
    }

    /// True when every key matches `data`.
    pub fn matches(&self, data: &Value) -> bool {
        self.keys.iter().all(|k| k.test.matches(data, &k.path))
    }

    /// Why the pattern does not match `data`: the first key (in the
    /// pattern's order) whose test fails, with the operator at fault;
    /// `None` exactly when [`EventPattern::matches`] is true (each key is
    /// judged by the same test first, then taken apart to name why).
    pub fn explain(&self, data: &Value) -> Option<PatternMiss> {
        self.keys.iter().find(|k| !k.test.matches(data, &k.path)).map(|k| k.miss(data))
    }
}

impl Key {
    /// Why this key's test fails on `data` (it must fail). The checks are
    /// the matcher's, read one by one: `$exists`, then an absent path
    /// (`$anythingBut`, a positive matcher), then the negative matchers on
    /// any candidate, then the positive ones that no candidate satisfies.
    fn miss(&self, data: &Value) -> PatternMiss {
        let test = &self.test;
        let mut values: Vec<&Value> = Vec::new();
        resolve(data, &self.path, &mut |v| {
            values.push(v);
            true
        });
        let present = !values.is_empty();
        let got = match values.as_slice() {
            [] => None,
            [one] => Some((*one).clone()),
            many => Some(Value::Array(many.iter().map(|v| (*v).clone()).collect())),
        };
        let operand = |op: &str| self.spec.get(op).cloned().unwrap_or(Value::Null);
        let miss = |operator: &str, expected: Value| PatternMiss {
            field: self.path.join("."),
            operator: operator.to_owned(),
            expected,
            got: got.clone(),
            missing: !present,
        };
        if let Some(exists) = test.exists.filter(|e| *e != present) {
            return miss("$exists", Value::Bool(exists));
        }
        if !present {
            if test.anything_but.is_some() {
                return miss("$anythingBut", operand("$anythingBut"));
            }
            if let Some(p) = test.positive.first() {
                return miss(p.name(), self.operand_of(p));
            }
        }
        let cands: Vec<&Value> = values.iter().flat_map(|v| candidates(v)).collect();
        if let Some(ne) = test.ne.as_ref().filter(|ne| cands.iter().any(|c| json_eq(c, ne))) {
            return miss("$ne", ne.clone());
        }
        if test.anything_but.as_deref().is_some_and(|list| cands.iter().any(|c| list.iter().any(|x| json_eq(c, x)))) {
            return miss("$anythingBut", operand("$anythingBut"));
        }
        if let Some(p) = test.positive.iter().find(|p| !cands.iter().any(|c| p.holds(c))) {
            return miss(p.name(), self.operand_of(p));
        }
        // Each positive matcher holds for some candidate, none for all of
        // them together (`{"$gte": 1, "$lt": 5}` on `[0, 10]`).
        let names: Vec<&str> = test.positive.iter().map(Positive::name).collect();
        let expected = Value::Object(names.iter().map(|n| ((*n).to_owned(), operand(n))).collect());
        miss(&names.join(" & "), expected)
    }

    /// The operand of `p` as the pattern wrote it.
    fn operand_of(&self, p: &Positive) -> Value {
        match p {
            Positive::Eq(v) => v.clone(),
            other => self.spec.get(other.name()).cloned().unwrap_or(Value::Null),
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn split_key(key: &str, path: &str) -> Result<Box<[Box<str>]>, String> {
    if key.is_empty() {
        return Err(format!("{path}: empty key"));
    }
    if key.split('.').any(str::is_empty) {
        return Err(format!("{path}: empty segment in key {key:?}"));
    }
    Ok(key.split('.').map(Box::from).collect())
}

fn number(arg: &Value, at: &str) -> Result<f64, String> {
    arg.as_f64().ok_or_else(|| format!("{at}: expected a number, got {}", describe(arg)))
}

fn string(arg: &Value, at: &str) -> Result<Box<str>, String> {
    arg.as_str().map(Box::from).ok_or_else(|| format!("{at}: expected a string, got {}", describe(arg)))
}

impl Test {
    fn compile(value: &Value, field: &str) -> Result<Test, String> {
        let ops = match value {
            Value::Object(m) if m.keys().any(|k| k.starts_with('$')) => m,
            _ => return Ok(Test { positive: Box::new([Positive::Eq(value.clone())]), ..Test::default() }),
        };
        if let Some(plain) = ops.keys().find(|k| !k.starts_with('$')) {
            let op = ops.keys().find(|k| k.starts_with('$')).map(String::as_str).unwrap_or_default();
            return Err(format!("{field}: mixes operators and plain keys ({op:?} and {plain:?})"));
        }
        let mut test = Test::default();
        let mut positive = Vec::new();
        for (op, arg) in ops {
            let at = format!("{field}.{op}");
            match op.as_str() {
                "$in" => match arg {
                    Value::Array(list) => positive.push(Positive::In(list.clone().into_boxed_slice())),
                    other => return Err(format!("{at}: expected an array, got {}", describe(other))),
                },
                "$ne" => test.ne = Some(arg.clone()),
                "$exists" => match arg {
                    Value::Bool(b) => test.exists = Some(*b),
                    other => return Err(format!("{at}: expected a boolean, got {}", describe(other))),
                },
                "$prefix" => positive.push(Positive::Prefix(string(arg, &at)?)),
                "$suffix" => positive.push(Positive::Suffix(string(arg, &at)?)),
                "$gt" => positive.push(Positive::Cmp(Cmp::Gt, number(arg, &at)?)),
                "$gte" => positive.push(Positive::Cmp(Cmp::Gte, number(arg, &at)?)),
                "$lt" => positive.push(Positive::Cmp(Cmp::Lt, number(arg, &at)?)),
                "$lte" => positive.push(Positive::Cmp(Cmp::Lte, number(arg, &at)?)),
                "$anythingBut" => {
                    let list = match arg {
                        Value::Array(list) => list.clone(),
                        single => vec![single.clone()],
                    };
                    test.anything_but = Some(list.into_boxed_slice());
                }
                _ => return Err(format!("{field}: unknown operator {op:?} (expected one of {OPERATORS})")),
            }
        }
        test.positive = positive.into_boxed_slice();
        Ok(test)
    }

    fn matches(&self, data: &Value, path: &[Box<str>]) -> bool {
        let negative = self.ne.is_some() || self.anything_but.is_some();
        let mut present = false;
        let mut positive_hit = self.positive.is_empty();
        let mut negative_hit = false;
        resolve(data, path, &mut |value| {
            present = true;
            if self.exists == Some(false) {
                return false;
            }
            for c in candidates(value) {
                if !positive_hit && self.positive.iter().all(|p| p.holds(c)) {
                    positive_hit = true;
                }
                if self.ne.as_ref().is_some_and(|ne| json_eq(c, ne))
                    || self.anything_but.as_deref().is_some_and(|list| list.iter().any(|x| json_eq(c, x)))
                {
                    negative_hit = true;
                    return false;
                }
            }
            // Keep walking only while the outcome can still change.
            !positive_hit || negative
        });
        if self.exists.is_some_and(|e| e != present) {
            return false;
        }
        if self.anything_but.is_some() && !present {
            return false;
        }
        positive_hit && !negative_hit
    }
}

impl Positive {
    /// The operator's name as a pattern writes it (`$eq`: a plain value).
    fn name(&self) -> &'static str {
        match self {
            Positive::Eq(_) => "$eq",
            Positive::In(_) => "$in",
            Positive::Prefix(_) => "$prefix",
            Positive::Suffix(_) => "$suffix",
            Positive::Cmp(Cmp::Gt, _) => "$gt",
            Positive::Cmp(Cmp::Gte, _) => "$gte",
            Positive::Cmp(Cmp::Lt, _) => "$lt",
            Positive::Cmp(Cmp::Lte, _) => "$lte",
        }
    }

    fn holds(&self, c: &Value) -> bool {
        match self {
            Positive::Eq(v) => json_eq(c, v),
            Positive::In(list) => list.iter().any(|v| json_eq(c, v)),
            Positive::Prefix(s) => c.as_str().is_some_and(|c| c.starts_with(&**s)),
            Positive::Suffix(s) => c.as_str().is_some_and(|c| c.ends_with(&**s)),
            Positive::Cmp(op, bound) => c.as_f64().is_some_and(|x| match op {
                Cmp::Gt => x > *bound,
                Cmp::Gte => x >= *bound,
                Cmp::Lt => x < *bound,
                Cmp::Lte => x <= *bound,
            }),
        }
    }
}

/// Calls `f` with every value `path` resolves to in `v`, fanning out over
/// arrays met before the path ends. Returns false once `f` asks to stop.
fn resolve<'a, F: FnMut(&'a Value) -> bool>(v: &'a Value, path: &[Box<str>], f: &mut F) -> bool {
    let Some((head, rest)) = path.split_first() else {
        return f(v);
    };
    match v {
        Value::Object(m) => match m.get(&**head) {
            Some(next) => resolve(next, rest, f),
            None => true,
        },
        Value::Array(items) => items.iter().all(|item| resolve(item, path, f)),
        _ => true,
    }
}

/// The value itself and, for an array, each of its direct elements.
fn candidates(v: &Value) -> impl Iterator<Item = &Value> {
    std::iter::once(v).chain(v.as_array().into_iter().flatten())
}

/// Deep equality where numbers compare by value (`1 == 1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pattern_json_eq_numbers_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!(-3), &json!(-3.0)));
        assert!(json_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!json_eq(&json!(u64::MAX), &json!(-1)));
        assert!(!json_eq(&json!(i64::MAX), &json!(i64::MAX - 1)));
        assert!(!json_eq(&json!(1), &json!("1")));
        assert!(json_eq(&json!({"a": [1, {"b": 2.0}]}), &json!({"a": [1.0, {"b": 2}]})));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn pattern_resolve_flattens_nested_arrays_mid_path() {
        let data = json!({"a": [[{"b": 1}], {"b": 2}, 3, {"c": 4}]});
        let path: Vec<Box<str>> = vec!["a".into(), "b".into()];
        let mut seen = Vec::new();
        resolve(&data, &path, &mut |v| {
            seen.push(v.clone());
            true
        });
        assert_eq!(seen, vec![json!(1), json!(2)]);
    }

    fn miss(field: &str, operator: &str, expected: Value, got: Option<Value>) -> Option<PatternMiss> {
        Some(PatternMiss { field: field.into(), operator: operator.into(), expected, missing: got.is_none(), got })
    }

    /// Each row: a pattern, data, and the miss `explain` must answer
    /// (`None`: it matches). `explain` answers `None` exactly when
    /// `matches` is true, on every row.
    #[test]
    fn pattern_explain_names_the_first_failing_key_and_operator() {
        let rows: Vec<(Value, Value, Option<PatternMiss>)> = vec![
            (json!({}), json!({"a": 1}), None),
            (json!({"total": {"$gte": 100}}), json!({"total": 150}), None),
            (json!({"total": {"$gte": 100}}), json!({"total": 50}), miss("total", "$gte", json!(100), Some(json!(50)))),
            (json!({"total": {"$gte": 100}}), json!({}), miss("total", "$gte", json!(100), None)),
            (json!({"total": {"$gte": 100}}), json!({"total": "150"}), miss("total", "$gte", json!(100), Some(json!("150")))),
            (json!({"status": "completed"}), json!({"status": "failed"}), miss("status", "$eq", json!("completed"), Some(json!("failed")))),
            (json!({"x": null}), json!({}), miss("x", "$eq", json!(null), None)),
            (json!({"x": null}), json!({"x": null}), None),
            // Keys in the pattern object's order (sorted here); the first that fails.
            (json!({"a": 1, "b": 2}), json!({"a": 0, "b": 0}), miss("a", "$eq", json!(1), Some(json!(0)))),
            (json!({"a": 1, "b": 2}), json!({"a": 1, "b": 0}), miss("b", "$eq", json!(2), Some(json!(0)))),
            // Fan-out: every value the path resolves to.
            (
                json!({"order.items.sku": "C3"}),
                json!({"order": {"items": [{"sku": "A1"}, {"sku": "B2"}, {"note": 1}]}}),
                miss("order.items.sku", "$eq", json!("C3"), Some(json!(["A1", "B2"]))),
            ),
            (json!({"order.items.sku": "B2"}), json!({"order": {"items": [{"sku": "A1"}, {"sku": "B2"}]}}), None),
            (json!({"a.b": {"$exists": true}}), json!({"a": []}), miss("a.b", "$exists", json!(true), None)),
            (json!({"a": {"$exists": false}}), json!({"a": 0}), miss("a", "$exists", json!(false), Some(json!(0)))),
            (json!({"a": {"$exists": false}}), json!({}), None),
            (json!({"s": {"$ne": "failed"}}), json!({}), None),
            (json!({"s": {"$ne": "failed"}}), json!({"s": ["ok", "failed"]}), miss("s", "$ne", json!("failed"), Some(json!(["ok", "failed"])))),
            (json!({"s": {"$anythingBut": ["x"]}}), json!({}), miss("s", "$anythingBut", json!(["x"]), None)),
            (json!({"s": {"$anythingBut": "x"}}), json!({"s": "x"}), miss("s", "$anythingBut", json!("x"), Some(json!("x")))),
            (json!({"p": {"$in": ["pro", "team"]}}), json!({"p": "free"}), miss("p", "$in", json!(["pro", "team"]), Some(json!("free")))),
            (json!({"e": {"$prefix": "admin@"}}), json!({"e": "u@x"}), miss("e", "$prefix", json!("admin@"), Some(json!("u@x")))),
            (json!({"f": {"$suffix": ".pdf"}}), json!({"f": 5}), miss("f", "$suffix", json!(".pdf"), Some(json!(5)))),
            // The positive matcher no candidate satisfies alone.
            (json!({"n": {"$gte": 1, "$lt": 5}}), json!({"n": 7}), miss("n", "$lt", json!(5), Some(json!(7)))),
            (json!({"n": {"$gte": 1, "$lt": 5}}), json!({"n": 0.5}), miss("n", "$gte", json!(1), Some(json!(0.5)))),
            // Each holds for some element, none for all on one element.
            (
                json!({"n": {"$gte": 1, "$lt": 5}}),
                json!({"n": [0, 10]}),
                miss("n", "$gte & $lt", json!({"$gte": 1, "$lt": 5}), Some(json!([0, 10]))),
            ),
            (json!({"n": {"$gte": 1, "$lt": 5}}), json!({"n": [0, 3]}), None),
            // Negative before positive: $ne is named though $gte fails too.
            (json!({"n": {"$gte": 10, "$ne": 3}}), json!({"n": 3}), miss("n", "$ne", json!(3), Some(json!(3)))),
            (json!({"x": {"$exists": true, "$ne": 1}}), json!({}), miss("x", "$exists", json!(true), None)),
            (json!({"x": {"$exists": false, "$gt": 1}}), json!({"x": 2}), miss("x", "$exists", json!(false), Some(json!(2)))),
            // Operands as written: 100 stays 100, 1.5 stays 1.5.
            (json!({"n": {"$gt": 1.5}}), json!({"n": 1}), miss("n", "$gt", json!(1.5), Some(json!(1)))),
        ];
        for (pattern, data, want) in rows {
            let p = EventPattern::compile(&pattern, "p").unwrap();
            let got = p.explain(&data);
            assert_eq!(got, want, "{pattern} on {data}");
            assert_eq!(got.is_none(), p.matches(&data), "explain agrees with matches: {pattern} on {data}");
        }
    }

    #[test]
    fn pattern_explain_sentences_and_json() {
        let p = EventPattern::compile(&json!({"total": {"$gte": 100}}), "p").unwrap();
        let m = p.explain(&json!({"total": 50})).unwrap();
        assert_eq!(m.to_string(), r#"pattern field "total" failed $gte 100 (got 50)"#);
        assert_eq!(serde_json::to_value(&m).unwrap(), json!({"field": "total", "operator": "$gte", "expected": 100, "got": 50}));
        let m = p.explain(&json!({})).unwrap();
        assert_eq!(m.to_string(), r#"pattern field "total" failed $gte 100 (field missing)"#);
        assert_eq!(serde_json::to_value(&m).unwrap(), json!({"field": "total", "operator": "$gte", "expected": 100, "missing": true}));
        // A present null is got: null, not missing.
        let q = EventPattern::compile(&json!({"x": 1}), "p").unwrap();
        assert_eq!(serde_json::to_value(q.explain(&json!({"x": null})).unwrap()).unwrap()["got"], json!(null));
        // Long values are cut in the sentence, not in the data.
        let long = "y".repeat(200);
        let m = q.explain(&json!({"x": long})).unwrap();
        assert!(m.to_string().ends_with("yyy…)"), "{m}");
        assert_eq!(m.got, Some(json!(long)));
        assert_eq!(brief(&json!("é".repeat(100))).chars().count(), 81);
    }
}
