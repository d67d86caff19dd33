//! The `filter` language of `vector_search`, compiled to a Milvus boolean expression.
//!
//! A filter is a JSON object whose keys address the chunk's `metadata` (never the other fields:
//! `{"tenant": ...}` filters a metadata key named `tenant`, which the function never writes):
//!
//! ```json
//! {"lang": "en", "page": {"$gte": 2, "$lt": 10}, "kind": {"$in": ["faq", "doc"]},
//!  "draft": {"$ne": true}, "$or": [{"team": "a"}, {"team": "b"}]}
//! ```
//!
//! - A key is a path of 1 to 4 identifiers joined by `.` (`a.b` is `metadata["a"]["b"]`), each
//!   `[A-Za-z_][A-Za-z0-9_]*` of at most 64 characters.
//! - A plain value is `$eq`. Operators: `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte` (a string,
//!   a finite number or a boolean; ordering operators take numbers or strings), `$in` / `$nin`
//!   (a non-empty array of at most 100 such values), `$exists` (`true` or `false`).
//! - Conditions are ANDed. `$or` takes an array of 1 to 16 filters of the same kind, without a
//!   nested `$or` (one level: nothing here recurses on input).
//! - At most 64 conditions in all; `null`, arrays and objects as values are refused.
//!
//! **Safety.** No user text is spliced into the expression as syntax: keys are validated
//! identifiers, and values are written as literals the expression parser reads back as exactly
//! that value (strings double-quoted with `\\` and `"` escaped, control characters refused;
//! numbers as serde_json prints them; booleans as `true`/`false`). Milvus has expression
//! templates (`{name}` placeholders with bound values), but milvus-lite rejects them (`unexpected
//! character '{'`), so the literals are what keeps a value a value; the tests run hostile values
//! (`x" || 1 == 1 || tenant == "b`) against a real server. `$in` is compiled to `==` alternatives
//! because milvus-lite's `in` accepts only a top-level field on its left, not a JSON path.
//!
//! The function then ANDs its own `tenant == "<tenant>"` around whatever this produces:
//! `(tenant == "t") && (<filter>)`, so a filter can narrow a search, never widen it.

use serde_json::{Map, Value};

/// The most conditions one filter may hold (each operator on each key counts once).
pub const MAX_CONDITIONS: usize = 64;
/// The most values of one `$in` / `$nin`.
pub const MAX_IN_VALUES: usize = 100;
/// The most alternatives of `$or`.
pub const MAX_OR: usize = 16;
const MAX_PATH: usize = 4;
const MAX_IDENT: usize = 64;

/// Why a filter was refused (the function reports it as `Vector.InvalidFilter`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

fn err(msg: impl Into<String>) -> FilterError {
    FilterError(msg.into())
}

/// `filter` as a Milvus expression over the `metadata` JSON field, or `None` for an empty filter.
pub fn compile(filter: &Value) -> Result<Option<String>, FilterError> {
    let Value::Object(map) = filter else {
        return Err(err("the filter must be an object of metadata keys (e.g. {\"lang\": \"en\"})"));
    };
    let mut budget = MAX_CONDITIONS;
    let mut parts = Vec::new();
    for (key, value) in map {
        if key == "$or" {
            let Value::Array(alternatives) = value else {
                return Err(err("`$or` takes an array of filters"));
            };
            if alternatives.is_empty() || alternatives.len() > MAX_OR {
                return Err(err(format!("`$or` takes 1 to {MAX_OR} filters")));
            }
            let mut ors = Vec::with_capacity(alternatives.len());
            for alternative in alternatives {
                let Value::Object(inner) = alternative else {
                    return Err(err("each `$or` alternative must be an object of metadata keys"));
                };
                if inner.is_empty() {
                    return Err(err("an `$or` alternative must not be empty"));
                }
                ors.push(conjunction(inner, &mut budget)?);
            }
            parts.push(format!("({})", ors.join(" || ")));
        } else {
            parts.push(key_conditions(key, value, &mut budget)?);
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join(" && ")))
}

fn conjunction(map: &Map<String, Value>, budget: &mut usize) -> Result<String, FilterError> {
    let mut parts = Vec::with_capacity(map.len());
    for (key, value) in map {
        if key == "$or" {
            return Err(err("`$or` cannot be nested"));
        }
        parts.push(key_conditions(key, value, budget)?);
    }
    Ok(format!("({})", parts.join(" && ")))
}

fn key_conditions(key: &str, value: &Value, budget: &mut usize) -> Result<String, FilterError> {
    let field = path(key)?;
    let ops: Vec<(&str, &Value)> = match value {
        Value::Object(ops) => {
            if ops.is_empty() {
                return Err(err(format!("`{key}`: an empty operator object")));
            }
            ops.iter().map(|(op, v)| (op.as_str(), v)).collect()
        }
        other => vec![("$eq", other)],
    };
    let mut parts = Vec::with_capacity(ops.len());
    for (op, operand) in ops {
        *budget = budget.checked_sub(1).ok_or_else(|| err(format!("more than {MAX_CONDITIONS} conditions")))?;
        parts.push(condition(key, &field, op, operand)?);
    }
    Ok(if parts.len() == 1 { parts.swap_remove(0) } else { format!("({})", parts.join(" && ")) })
}

fn condition(key: &str, field: &str, op: &str, operand: &Value) -> Result<String, FilterError> {
    let cmp = |sym: &str, ordered: bool| -> Result<String, FilterError> {
        let lit = literal(key, operand)?;
        if ordered && operand.is_boolean() {
            return Err(err(format!("`{key}`: `{op}` compares numbers or strings, not booleans")));
        }
        Ok(format!("({field} {sym} {lit})"))
    };
    match op {
        "$eq" => cmp("==", false),
        "$ne" => cmp("!=", false),
        "$gt" => cmp(">", true),
        "$gte" => cmp(">=", true),
        "$lt" => cmp("<", true),
        "$lte" => cmp("<=", true),
        "$in" | "$nin" => {
            let Value::Array(values) = operand else {
                return Err(err(format!("`{key}`: `{op}` takes an array of values")));
            };
            if values.is_empty() || values.len() > MAX_IN_VALUES {
                return Err(err(format!("`{key}`: `{op}` takes 1 to {MAX_IN_VALUES} values")));
            }
            let (sym, join) = if op == "$in" { ("==", " || ") } else { ("!=", " && ") };
            let alternatives: Result<Vec<String>, FilterError> =
                values.iter().map(|v| Ok(format!("{field} {sym} {}", literal(key, v)?))).collect();
            Ok(format!("({})", alternatives?.join(join)))
        }
        "$exists" => match operand {
            Value::Bool(true) => Ok(format!("(exists {field})")),
            Value::Bool(false) => Ok(format!("(not exists {field})")),
            _ => Err(err(format!("`{key}`: `$exists` takes true or false"))),
        },
        other => Err(err(format!(
            "`{key}`: unknown operator `{}` (use $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists)",
            shorten(other)
        ))),
    }
}

/// `metadata["a"]["b"]` for the key `a.b`.
fn path(key: &str) -> Result<String, FilterError> {
    let segments: Vec<&str> = key.split('.').collect();
    if segments.len() > MAX_PATH {
        return Err(err(format!("`{}`: a key has at most {MAX_PATH} segments", shorten(key))));
    }
    let mut out = String::from("metadata");
    for segment in segments {
        if !identifier(segment) {
            return Err(err(format!(
                "`{}`: keys are identifiers (letters, digits, `_`, not starting with a digit, at most {MAX_IDENT} characters) joined by `.`",
                shorten(key)
            )));
        }
        out.push_str("[\"");
        out.push_str(segment);
        out.push_str("\"]");
    }
    Ok(out)
}

/// Whether `s` is `[A-Za-z_][A-Za-z0-9_]*`, 1 to 64 characters.
pub fn identifier(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= MAX_IDENT
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A scalar as an expression literal.
fn literal(key: &str, value: &Value) -> Result<String, FilterError> {
    match value {
        Value::String(s) => {
            string_literal(s).ok_or_else(|| err(format!("`{key}`: strings must not hold control characters")))
        }
        Value::Number(n) => {
            // serde_json never holds NaN or infinities; its Display is a plain decimal literal.
            if n.as_f64().is_some_and(f64::is_finite) {
                Ok(n.to_string())
            } else {
                Err(err(format!("`{key}`: the number is out of range")))
            }
        }
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err(err(format!("`{key}`: null is not a filter value (use {{\"$exists\": false}})"))),
        Value::Array(_) | Value::Object(_) => {
            Err(err(format!("`{key}`: values are strings, numbers or booleans (arrays only with $in / $nin)")))
        }
    }
}

/// `s` double-quoted with `\` and `"` escaped; `None` if `s` holds a control character (the
/// expression parser's escapes beyond `\\` and `\"` are not needed for text and not trusted).
pub fn string_literal(s: &str) -> Option<String> {
    if s.chars().any(char::is_control) {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '\\' | '"') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= 40 { s.to_owned() } else { format!("{}…", s.chars().take(40).collect::<String>()) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(v: Value) -> String {
        compile(&v).unwrap().unwrap()
    }

    fn refused(v: Value) -> String {
        compile(&v).unwrap_err().0
    }

    #[test]
    fn compiles_the_operators() {
        assert_eq!(ok(json!({"lang": "en"})), r#"(metadata["lang"] == "en")"#);
        assert_eq!(ok(json!({"a.b": 2})), r#"(metadata["a"]["b"] == 2)"#);
        assert_eq!(
            ok(json!({"page": {"$gte": 2, "$lt": 10.5}})),
            r#"((metadata["page"] >= 2) && (metadata["page"] < 10.5))"#
        );
        assert_eq!(
            ok(json!({"k": {"$in": ["a", "b"]}, "d": {"$ne": true}})),
            r#"(metadata["k"] == "a" || metadata["k"] == "b") && (metadata["d"] != true)"#
        );
        assert_eq!(ok(json!({"k": {"$nin": [1, 2]}})), r#"(metadata["k"] != 1 && metadata["k"] != 2)"#);
        assert_eq!(ok(json!({"k": {"$exists": false}})), r#"(not exists metadata["k"])"#);
        assert_eq!(
            ok(json!({"$or": [{"t": "a"}, {"t": "b", "n": 1}]})),
            r#"(((metadata["t"] == "a")) || ((metadata["t"] == "b") && (metadata["n"] == 1)))"#
        );
        assert_eq!(compile(&json!({})).unwrap(), None);
    }

    #[test]
    fn values_stay_values() {
        assert_eq!(
            ok(json!({"k": "x\" || 1 == 1 || tenant == \"b"})),
            r#"(metadata["k"] == "x\" || 1 == 1 || tenant == \"b")"#
        );
        assert_eq!(ok(json!({"k": "a\\\" || true"})), r#"(metadata["k"] == "a\\\" || true")"#);
        assert_eq!(ok(json!({"tenant": {"$ne": ""}})), r#"(metadata["tenant"] != "")"#);
        assert!(refused(json!({"k": "line\nbreak"})).contains("control"));
    }

    #[test]
    fn refuses_what_is_not_the_language() {
        for bad in [
            json!([1]),
            json!("tenant == \"b\""),
            json!({"tenant\"] || 1 == 1 || metadata[\"x": 1}),
            json!({"a b": 1}),
            json!({"1a": 1}),
            json!({"a..b": 1}),
            json!({"a.b.c.d.e": 1}),
            json!({"k": null}),
            json!({"k": [1]}),
            json!({"k": {"$regex": "x"}}),
            json!({"k": {}}),
            json!({"k": {"$in": []}}),
            json!({"k": {"$gt": true}}),
            json!({"k": {"$exists": 1}}),
            json!({"$or": []}),
            json!({"$or": [{"$or": [{"a": 1}]}]}),
            json!({"$and": [{"a": 1}]}),
        ] {
            refused(bad);
        }
        let many: Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(refused(Value::Object(many)).contains("64"));
    }
}
