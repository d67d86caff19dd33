//! Structured output: the reply parsed as JSON and, with a schema, validated; the repair request
//! sent when it is not.

use jsonschema::{PatternOptions, Validator};
use model_client::Message;
use serde_json::Value;

/// The most validation problems quoted (to the model in a repair request, and in the error).
const MAX_PROBLEMS: usize = 10;
/// The most characters of one problem kept (a problem can quote a large part of the reply).
const MAX_PROBLEM_CHARS: usize = 300;

/// A compiled JSON Schema.
pub struct Schema {
    source: Value,
    validator: Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

impl Schema {
    /// Compiles `schema`. `pattern`s use the `regex` crate (linear time: a tenant's pattern cannot
    /// backtrack for ever on the model's reply); a `$ref` to another document fails, since the
    /// crate is built without its HTTP and file resolvers.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let validator = jsonschema::options()
            .with_pattern_options(PatternOptions::regex().size_limit(1 << 20))
            .build(schema)
            .map_err(|e| format!("is not a usable JSON Schema: {}", clip(&e.to_string())))?;
        Ok(Self { source: schema.clone(), validator })
    }

    pub fn source(&self) -> &Value {
        &self.source
    }

    /// What is wrong with `value` under the schema (at most 10 problems, each clipped); empty
    /// when it is valid.
    pub fn problems(&self, value: &Value) -> Vec<String> {
        self.validator
            .iter_errors(value)
            .take(MAX_PROBLEMS)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                format!("at {at}: {}", clip(&e.to_string()))
            })
            .collect()
    }
}

/// The reply as JSON: `Ok(value)`, or what is wrong with it (sentences for the repair request).
pub fn check(text: &str, schema: Option<&Schema>) -> Result<Value, Vec<String>> {
    let value: Value =
        serde_json::from_str(unfenced(text)).map_err(|e| vec![format!("the reply is not valid JSON: {e}")])?;
    match schema {
        None => Ok(value),
        Some(s) => {
            let problems = s.problems(&value);
            if problems.is_empty() { Ok(value) } else { Err(problems) }
        }
    }
}

/// The text inside a Markdown code fence (```json ... ```), which models often wrap JSON in
/// even when asked not to; otherwise the text trimmed.
fn unfenced(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else { return t };
    let Some(inner) = rest.strip_suffix("```") else { return t };
    // The info string (`json`) runs to the end of the first line.
    match inner.split_once('\n') {
        Some((info, body)) if !info.contains(['{', '[', '"']) => body.trim(),
        _ => inner.trim(),
    }
}

/// The messages of the repair request: the conversation, the invalid reply, and what is wrong.
pub fn repair_messages(mut messages: Vec<Message>, reply: &str, problems: &[String], schema: bool) -> Vec<Message> {
    messages.push(Message::assistant(reply));
    let wanted = if schema { "JSON valid under the requested JSON Schema" } else { "valid JSON" };
    messages.push(Message::user(format!(
        "Your reply is not {wanted}:\n- {}\nReply again with only the corrected JSON, nothing else.",
        problems.join("\n- ")
    )));
    messages
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_PROBLEM_CHARS) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fences_and_validation() {
        assert_eq!(check("```json\n{\"a\": 1}\n```", None).unwrap(), json!({"a": 1}));
        assert_eq!(check("  [1]  ", None).unwrap(), json!([1]));
        assert!(check("not json", None).unwrap_err()[0].contains("not valid JSON"));
        let s =
            Schema::compile(&json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}))
                .unwrap();
        assert_eq!(check(r#"{"n": 3}"#, Some(&s)).unwrap(), json!({"n": 3}));
        let problems = check(r#"{"n": "x"}"#, Some(&s)).unwrap_err();
        assert!(problems[0].starts_with("at /n: "), "{problems:?}");
        assert!(check("{}", Some(&s)).unwrap_err()[0].contains("required"));
    }

    #[test]
    fn remote_refs_and_bad_schemas_are_refused() {
        assert!(Schema::compile(&json!({"$ref": "http://169.254.169.254/schema.json"})).is_err());
        assert!(Schema::compile(&json!({"$ref": "file:///etc/passwd"})).is_err());
        assert!(Schema::compile(&json!({"type": 12})).is_err());
        assert!(Schema::compile(&json!({"type": "string", "pattern": "(a+)+$"})).is_ok());
    }
}
