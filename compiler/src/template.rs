//! `{{ path }}` templates in node data, and their translation to JSONPath payload templates.
//!
//! A path is `input`, `nodes.<id>` (or `nodes["<id>"]` / `nodes['<id>']` for an id that is not an
//! identifier, such as `node-1` or `1`), `item` or `index`, followed by `.key`
//! (`[A-Za-z_][A-Za-z0-9_]*`), `["key"]` (letters, digits, `_` and `-`) and `[n]` segments; or
//! `secrets.NAME`, which is never resolved by the state machine (the node
//! function resolves it, so secret values stay out of execution state). A string that is exactly
//! one template takes the raw JSON value (`"url.$": "$.input.url"`); any other string with
//! templates is interpolated with `States.Format`; an array with templates becomes `States.Array`.

use serde_json::{Map, Value};

/// Where a path starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    Input,
    Node(String),
    Item,
    Index,
    /// The arguments the model gave an agent's tool call (only in a tool's config).
    Args,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(u64),
}

/// A parsed template path such as `nodes.fetch.body.items[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub root: Root,
    pub segments: Vec<Segment>,
}

impl Path {
    /// The JSONPath of this path given the JSONPath of its root (e.g. `$.nodes.fetch`).
    pub fn to_jsonpath(&self, root: &str) -> String {
        let mut out = String::with_capacity(root.len() + 16);
        out.push_str(root);
        for segment in &self.segments {
            match segment {
                // Keys are identifiers or node-id characters (see `quoted_key`): no escaping.
                Segment::Key(key) if is_identifier(key) => {
                    out.push('.');
                    out.push_str(key);
                }
                Segment::Key(key) => {
                    out.push_str("['");
                    out.push_str(key);
                    out.push_str("']");
                }
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

/// One piece of a string with templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Path(Path),
    /// `{{ secrets.NAME }}`, kept verbatim (the original text is stored).
    Secret(String),
}

/// `[A-Za-z_][A-Za-z0-9_]*`: the keys (and node ids) a path may use in dot notation, which is
/// also what JSONPath's member-name shorthand accepts without brackets.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Node ids are 1 to 64 of `[A-Za-z0-9_-]`: what React Flow editors produce (`1`, `node-1`,
/// `dndnode_0`, UUIDs) and what every place that uses an id accepts (ASL state names, quoted
/// JSONPath member names, JavaScript string keys), with no character that needs escaping.
pub const MAX_NODE_ID: usize = 64;

/// Whether `s` is a valid node id (see [`MAX_NODE_ID`]).
pub fn is_node_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NODE_ID && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The JSONPath of node `id`'s stored output: `$.nodes.fetch`, or bracket notation
/// (`$.nodes['node-1']`) when the id is not an identifier, since the dot shorthand only takes
/// identifiers. Valid ids hold no quote or backslash, so the bracket needs no escaping.
pub fn node_jsonpath(id: &str) -> String {
    if is_identifier(id) { format!("$.nodes.{id}") } else { format!("$.nodes['{id}']") }
}

/// How a template names node `id`, for messages: `nodes.fetch` or `nodes["node-1"]`.
pub fn node_ref(id: &str) -> String {
    if is_identifier(id) { format!("nodes.{id}") } else { format!("nodes[{id:?}]") }
}

/// Splits a string into text and templates. `Ok(None)` when it has no `{{`.
pub fn parse_string(s: &str) -> Result<Option<Vec<Part>>, String> {
    if !s.contains("{{") {
        return Ok(None);
    }
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            return Err(format!("`{{{{` without a closing `}}}}` in {s:?}"));
        };
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_owned()));
        }
        let inner = &rest[start + 2..start + 2 + len];
        let full = &rest[start..start + 4 + len];
        parts.push(parse_inner(inner.trim(), full)?);
        rest = &rest[start + 4 + len..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(Some(parts))
}

fn parse_inner(inner: &str, full: &str) -> Result<Part, String> {
    if let Some(name) = inner.strip_prefix("secrets.") {
        if is_identifier(name) {
            return Ok(Part::Secret(full.to_owned()));
        }
        return Err(format!("`{full}`: a secret name is letters, digits and `_`"));
    }
    parse_path(inner).map(Part::Path).map_err(|problem| format!("`{full}`: {problem}"))
}

/// Parses `input.a[0].b`, `nodes.<id>...`, `nodes["<id>"]...`, `item...` or `index`.
pub fn parse_path(text: &str) -> Result<Path, String> {
    let mut segments = Vec::new();
    let mut rest = text;
    let mut first = true;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            if first {
                return Err("a path starts with `input`, `nodes.<id>`, `item` or `index`".to_owned());
            }
            let inner = after.trim_start();
            let (segment, tail) = match inner.chars().next() {
                Some(quote @ ('"' | '\'')) => quoted_key(&inner[1..], quote)?,
                _ => {
                    let Some(end) = after.find(']') else {
                        return Err("`[` without `]`".to_owned());
                    };
                    let index = after[..end].trim().parse::<u64>().map_err(|_| {
                        format!("`[{}]` is neither an array index nor a quoted key like `[\"node-1\"]`", &after[..end])
                    })?;
                    (Segment::Index(index), &after[end + 1..])
                }
            };
            segments.push(segment);
            rest = tail;
        } else {
            let body =
                if first { rest } else { rest.strip_prefix('.').ok_or_else(|| format!("unexpected `{rest}`"))? };
            let end = body.find(['.', '[']).unwrap_or(body.len());
            let key = &body[..end];
            if !is_identifier(key) {
                return Err(format!(
                    "`{key}` is not a key of letters, digits and `_` (write `nodes[\"{key}\"]` or `[\"{key}\"]` for a key with `-` or a leading digit)"
                ));
            }
            segments.push(Segment::Key(key.to_owned()));
            rest = &body[end..];
        }
        first = false;
    }
    path_from_segments(segments)
}

/// Parses the rest of `["key"]` or `['key']` after the opening quote: the key (a node id's
/// characters, so that it never needs escaping in JSONPath) and what follows the `]`.
fn quoted_key(body: &str, quote: char) -> Result<(Segment, &str), String> {
    let Some(end) = body.find(quote) else {
        return Err(format!("`[{quote}` without a closing `{quote}`"));
    };
    let key = &body[..end];
    if !is_node_id(key) {
        return Err(format!("{key:?} is not a quoted key of 1 to {MAX_NODE_ID} letters, digits, `_` and `-`"));
    }
    let Some(tail) = body[end + 1..].trim_start().strip_prefix(']') else {
        return Err(format!("`[{quote}{key}{quote}` without `]`"));
    };
    Ok((Segment::Key(key.to_owned()), tail))
}

fn path_from_segments(segments: Vec<Segment>) -> Result<Path, String> {
    let mut iter = segments.into_iter();
    let root = match iter.next() {
        Some(Segment::Key(k)) if k == "input" => Root::Input,
        Some(Segment::Key(k)) if k == "item" => Root::Item,
        Some(Segment::Key(k)) if k == "index" => Root::Index,
        Some(Segment::Key(k)) if k == "args" => Root::Args,
        Some(Segment::Key(k)) if k == "nodes" => match iter.next() {
            Some(Segment::Key(id)) => Root::Node(id),
            _ => {
                return Err("`nodes` must be followed by `.<node id>` or `[\"<node id>\"]`".to_owned());
            }
        },
        Some(Segment::Key(k)) => {
            return Err(format!(
                "unknown root `{k}`: a path starts with `input`, `nodes.<id>`, `item`, `index`, `args` (in an agent tool) or `secrets.`"
            ));
        }
        _ => return Err("empty template".to_owned()),
    };
    let segments: Vec<Segment> = iter.collect();
    if root == Root::Index && !segments.is_empty() {
        return Err("`index` is a number and has no fields".to_owned());
    }
    Ok(Path { root, segments })
}

/// Calls `f` with every template path in the string values of `value` (object keys are not
/// templates). Parse problems are reported through `f` as `Err`.
pub fn visit_paths(value: &Value, f: &mut dyn FnMut(Result<&Path, String>)) {
    match value {
        Value::String(s) => match parse_string(s) {
            Ok(Some(parts)) => {
                for part in &parts {
                    if let Part::Path(p) = part {
                        f(Ok(p));
                    }
                }
            }
            Ok(None) => {}
            Err(problem) => f(Err(problem)),
        },
        Value::Array(items) => items.iter().for_each(|v| visit_paths(v, f)),
        Value::Object(map) => map.values().for_each(|v| visit_paths(v, f)),
        _ => {}
    }
}

/// How a value compiles into an ASL payload template.
#[derive(Debug, Clone, PartialEq)]
pub enum Compiled {
    /// A constant: written as is.
    Literal(Value),
    /// Written as `"key.$": "<path or intrinsic>"`.
    Dynamic(String),
}

/// Resolves a path's root to its JSONPath (`$.input`, `$.nodes.fetch`, ...).
pub type RootResolver<'a> = dyn Fn(&Root) -> Result<String, String> + 'a;

/// Compiles a data value into an ASL payload template value.
pub fn compile_value(value: &Value, resolve: &RootResolver<'_>) -> Result<Compiled, String> {
    match value {
        Value::String(s) => compile_string(s, resolve),
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, v) in map {
                if key.ends_with(".$") {
                    return Err(format!("the key `{key}` ends in `.$`, which ASL reserves for paths"));
                }
                match compile_value(v, resolve)? {
                    Compiled::Literal(lit) => {
                        out.insert(key.clone(), lit);
                    }
                    Compiled::Dynamic(expr) => {
                        out.insert(format!("{key}.$"), Value::String(expr));
                    }
                }
            }
            Ok(Compiled::Literal(Value::Object(out)))
        }
        Value::Array(items) => {
            if !has_templates(value) {
                return Ok(Compiled::Literal(value.clone()));
            }
            let mut args = Vec::with_capacity(items.len());
            for item in items {
                args.push(match item {
                    Value::String(s) => match compile_string(s, resolve)? {
                        Compiled::Literal(Value::String(lit)) => quote_intrinsic(&lit),
                        Compiled::Literal(other) => other.to_string(),
                        Compiled::Dynamic(expr) => expr,
                    },
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => "null".to_owned(),
                    Value::Array(_) | Value::Object(_) => {
                        return Err("an array that holds templates may only hold strings, numbers, booleans and null"
                            .to_owned());
                    }
                });
            }
            Ok(Compiled::Dynamic(format!("States.Array({})", args.join(", "))))
        }
        other => Ok(Compiled::Literal(other.clone())),
    }
}

fn compile_string(s: &str, resolve: &RootResolver<'_>) -> Result<Compiled, String> {
    let Some(parts) = parse_string(s)? else {
        return Ok(Compiled::Literal(Value::String(s.to_owned())));
    };
    if let [Part::Path(path)] = parts.as_slice() {
        return Ok(Compiled::Dynamic(path.to_jsonpath(&resolve(&path.root)?)));
    }
    if !parts.iter().any(|p| matches!(p, Part::Path(_))) {
        // Only secrets: the function resolves them, the state machine passes the text on.
        return Ok(Compiled::Literal(Value::String(s.to_owned())));
    }
    let mut format = String::with_capacity(s.len() + 8);
    let mut args = Vec::new();
    for part in &parts {
        match part {
            Part::Text(text) | Part::Secret(text) => format.push_str(&escape_intrinsic(text)),
            Part::Path(path) => {
                format.push_str("{}");
                args.push(path.to_jsonpath(&resolve(&path.root)?));
            }
        }
    }
    Ok(Compiled::Dynamic(format!("States.Format('{format}', {})", args.join(", "))))
}

/// Escapes the characters that are special inside an intrinsic function's string literal.
pub fn escape_intrinsic(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\'' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn quote_intrinsic(text: &str) -> String {
    format!("'{}'", escape_intrinsic(text))
}

/// Whether any string in `value` contains `{{`.
pub fn has_templates(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("{{"),
        Value::Array(items) => items.iter().any(has_templates),
        Value::Object(map) => map.values().any(has_templates),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve(root: &Root) -> Result<String, String> {
        Ok(match root {
            Root::Input => "$.input".to_owned(),
            Root::Node(id) => node_jsonpath(id),
            Root::Item => "$.item".to_owned(),
            Root::Index => "$.index".to_owned(),
            Root::Args => "$.call.args".to_owned(),
        })
    }

    #[test]
    fn paths_parse() {
        let p = parse_path("nodes.fetch.body.items[2].name").unwrap();
        assert_eq!(p.root, Root::Node("fetch".into()));
        assert_eq!(p.to_jsonpath("$.nodes.fetch"), "$.nodes.fetch.body.items[2].name");
        assert!(parse_path("nodes").is_err());
        assert!(parse_path("env.x").is_err());
        assert!(parse_path("index.a").is_err());
        assert!(parse_path("input.a-b").is_err());
        assert!(parse_path("input[x]").is_err());
    }

    #[test]
    fn bracketed_node_ids_parse() {
        for (text, id) in [
            (r#"nodes["node-1"].total"#, "node-1"),
            ("nodes['1'].total", "1"),
            (r#"nodes[ "3f2b9c1e-0000-4000-8000-00000000abcd" ].total"#, "3f2b9c1e-0000-4000-8000-00000000abcd"),
            ("nodes['fetch'].total", "fetch"),
        ] {
            let p = parse_path(text).unwrap();
            assert_eq!(p.root, Root::Node(id.into()), "{text}");
            assert_eq!(p.segments, vec![Segment::Key("total".into())], "{text}");
        }
        let p = parse_path("nodes['node-1'].items[0]").unwrap();
        assert_eq!(p.to_jsonpath(&node_jsonpath("node-1")), "$.nodes['node-1'].items[0]");
        assert_eq!(parse_path("nodes['1']").unwrap().segments, vec![]);
        // Quoted keys reach fields that are not identifiers, such as a join's `{"a-1": ...}`.
        let p = parse_path(r#"nodes["j-1"]["a-1"].x"#).unwrap();
        assert_eq!(p.to_jsonpath(&node_jsonpath("j-1")), "$.nodes['j-1']['a-1'].x");
        for bad in [
            "nodes[1].x",
            "nodes['a b'].x",
            "nodes['a.b'].x",
            r#"nodes["x'].y"#,
            "nodes['x'.y",
            "nodes['x']y",
            "nodes['x'].y['a b']",
            "input['x'",
            "nodes['']",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        assert_eq!(node_jsonpath("fetch"), "$.nodes.fetch");
        assert_eq!(node_jsonpath("1"), "$.nodes['1']");
        assert!(is_node_id("dndnode_0") && is_node_id("1") && is_node_id("node-1"));
        assert!(!is_node_id("") && !is_node_id("a b") && !is_node_id("a.b") && !is_node_id(&"a".repeat(65)));
    }

    #[test]
    fn values_compile() {
        let data = json!({
            "url": "https://x/{{ input.id }}?q={{nodes.a.q}}",
            "body": "{{ nodes.a }}",
            "auth": "Bearer {{ secrets.TOKEN }}",
            "mixed": "{{ secrets.T }}:{{ input.user }} {it's}",
            "to": ["{{ input.email }}", "ops@example.com", 3],
            "plain": [1, 2],
            "n": 5
        });
        let Compiled::Literal(out) = compile_value(&data, &resolve).unwrap() else { panic!() };
        assert_eq!(
            out,
            json!({
                "url.$": "States.Format('https://x/{}?q={}', $.input.id, $.nodes.a.q)",
                "body.$": "$.nodes.a",
                "auth": "Bearer {{ secrets.TOKEN }}",
                "mixed.$": "States.Format('\\{\\{ secrets.T \\}\\}:{} \\{it\\'s\\}', $.input.user)",
                "to.$": "States.Array($.input.email, 'ops@example.com', 3)",
                "plain": [1, 2],
                "n": 5
            })
        );
    }

    #[test]
    fn bad_templates_are_errors() {
        assert!(parse_string("{{ input.a ").is_err());
        assert!(parse_string("{{ foo }}").is_err());
        assert!(compile_value(&json!({"a.$": "x"}), &resolve).is_err());
        assert!(compile_value(&json!([{"a": "{{ input }}"}]), &resolve).is_err());
    }
}
