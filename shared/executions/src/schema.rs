//! A documented subset of JSON Schema for start-node `input_schema`s, without a dependency.
//!
//! Supported keywords: `type` (a name or a list; `integer` is a number with no fraction),
//! `required`, `properties`, `additionalProperties: false` or a schema, `items` (one schema),
//! `enum`, `const`, `minimum`, `maximum`, `minLength`, `maxLength`, `minItems`, `maxItems`.
//! Other keywords are ignored (accepted), so a schema written for a full validator never
//! rejects more here than there.

use serde_json::Value;

/// Problems with `value` under `schema`, as `path: message` sentences; empty when it is valid.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check(schema, value, "$", &mut problems, 0);
    problems.truncate(20);
    problems
}

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn check(schema: &Value, v: &Value, path: &str, out: &mut Vec<String>, depth: usize) {
    let Some(s) = schema.as_object() else { return };
    if depth > 64 {
        return;
    }
    match s.get("type") {
        Some(Value::String(t)) if !type_matches(t, v) => {
            out.push(format!("{path}: expected {t}"));
            return;
        }
        Some(Value::Array(ts)) if !ts.iter().filter_map(Value::as_str).any(|t| type_matches(t, v)) => {
            out.push(format!("{path}: has none of the allowed types"));
            return;
        }
        _ => {}
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(v)
    {
        out.push(format!("{path}: not one of the allowed values"));
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        out.push(format!("{path}: must equal {c}"));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            out.push(format!("{path}: below the minimum {min}"));
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            out.push(format!("{path}: above the maximum {max}"));
        }
    }
    if let Some(text) = v.as_str() {
        let len = text.chars().count() as u64;
        if s.get("minLength").and_then(Value::as_u64).is_some_and(|m| len < m) {
            out.push(format!("{path}: too short"));
        }
        if s.get("maxLength").and_then(Value::as_u64).is_some_and(|m| len > m) {
            out.push(format!("{path}: too long"));
        }
    }
    if let Some(items) = v.as_array() {
        let len = items.len() as u64;
        if s.get("minItems").and_then(Value::as_u64).is_some_and(|m| len < m) {
            out.push(format!("{path}: too few items"));
        }
        if s.get("maxItems").and_then(Value::as_u64).is_some_and(|m| len > m) {
            out.push(format!("{path}: too many items"));
        }
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(item_schema, item, &format!("{path}[{i}]"), out, depth + 1);
            }
        }
    }
    if let Some(obj) = v.as_object() {
        if let Some(Value::Array(required)) = s.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(name) {
                    out.push(format!("{path}: missing required property `{name}`"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, child) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(child_schema) => check(child_schema, child, &format!("{path}.{k}"), out, depth + 1),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => out.push(format!("{path}: unexpected property `{k}`")),
                    Some(extra @ Value::Object(_)) => check(extra, child, &format!("{path}.{k}"), out, depth + 1),
                    _ => {}
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn required_types_and_nested_items() {
        let schema = json!({"type": "object", "required": ["lines", "region"],
            "properties": {"lines": {"type": "array", "minItems": 1, "items": {"type": "integer"}},
                           "region": {"enum": ["eu", "us"]}}});
        assert!(super::validate(&schema, &json!({"lines": [1, 2], "region": "eu"})).is_empty());
        let problems = super::validate(&schema, &json!({"lines": [1.5]}));
        assert_eq!(problems, vec!["$: missing required property `region`", "$.lines[0]: expected integer"]);
        assert_eq!(super::validate(&schema, &json!([])), vec!["$: expected object"]);
    }
}
