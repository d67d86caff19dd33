//! Payload templates (`Parameters`, `ResultSelector`, `ItemSelector`, `Assign` in JSONPath
//! states; `Arguments`, `Output`, `Assign` in JSONata states), compiled once from the definition
//! and evaluated against an [`Env`].

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::Arc;

use asl_expr::ExprError;
use asl_expr::intrinsics::Intrinsic;
use asl_expr::jsonata::Jsonata;
use serde_json::{Map, Value};

use crate::path::{JsonPath, Root, Selected};

/// Assign variables visible to a state: its own scope plus, read-only, the enclosing ones
/// (a Map iteration or Parallel branch sees the variables of the state that started it).
#[derive(Debug, Clone, Default)]
pub(crate) struct Vars {
    /// `None` until the scope assigns something (most Map iterations never do).
    local: Option<Arc<HashMap<String, Value>>>,
    outer: Option<Arc<Vars>>,
}

impl Vars {
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        match self.local.as_ref().and_then(|l| l.get(name)) {
            Some(v) => Some(v),
            None => self.outer.as_ref().and_then(|o| o.get(name)),
        }
    }

    /// A nested scope for a branch or iteration.
    pub(crate) fn child(&self) -> Vars {
        Vars::child_of(&Arc::new(self.clone()))
    }

    /// A nested scope under an already shared parent (one `Arc` for all iterations of a Map).
    pub(crate) fn child_of(outer: &Arc<Vars>) -> Vars {
        Vars { local: None, outer: Some(Arc::clone(outer)) }
    }

    pub(crate) fn assign(&mut self, values: Map<String, Value>) {
        if values.is_empty() {
            return;
        }
        let local = Arc::make_mut(self.local.get_or_insert_with(Arc::default));
        for (k, v) in values {
            local.insert(k, v);
        }
    }
}

/// Everything an expression can see while a state runs.
pub(crate) struct Env<'a> {
    pub input: &'a Value,
    pub vars: &'a Vars,
    pub result: Option<&'a Value>,
    pub error_output: Option<&'a Value>,
    context: &'a dyn Fn() -> Value,
    ctx_cache: OnceCell<Value>,
    states_cache: OnceCell<Value>,
}

impl<'a> Env<'a> {
    pub(crate) fn new(input: &'a Value, vars: &'a Vars, context: &'a dyn Fn() -> Value) -> Self {
        Env {
            input,
            vars,
            result: None,
            error_output: None,
            context,
            ctx_cache: OnceCell::new(),
            states_cache: OnceCell::new(),
        }
    }

    pub(crate) fn with_result(mut self, result: Option<&'a Value>) -> Self {
        self.result = result;
        self
    }

    pub(crate) fn with_error_output(mut self, e: Option<&'a Value>) -> Self {
        self.error_output = e;
        self
    }

    /// The context object (`$$`), built on first use.
    pub(crate) fn context(&self) -> &Value {
        self.ctx_cache.get_or_init(|| (self.context)())
    }

    /// `$states` for JSONata.
    pub(crate) fn states(&self) -> &Value {
        self.states_cache.get_or_init(|| {
            let mut m = Map::new();
            m.insert("input".into(), self.input.clone());
            if let Some(r) = self.result {
                m.insert("result".into(), r.clone());
            }
            if let Some(e) = self.error_output {
                m.insert("errorOutput".into(), e.clone());
            }
            m.insert("context".into(), self.context().clone());
            Value::Object(m)
        })
    }

    /// Resolves a path against its root document; `None` when a definite path matches nothing
    /// or the variable does not exist.
    pub(crate) fn resolve<'s>(&'s self, p: &JsonPath) -> Option<Cow<'s, Value>> {
        let doc: &Value = match p.root() {
            Root::Input => self.input,
            Root::Context => self.context(),
            Root::Var(name) => self.vars.get(name)?,
        };
        match p.select(doc) {
            Selected::One(v) => Some(Cow::Borrowed(v)),
            Selected::Missing => None,
            Selected::Many(vs) => Some(Cow::Owned(Value::Array(vs.into_iter().cloned().collect()))),
            Selected::Computed(v) => Some(Cow::Owned(v)),
        }
    }

    /// The JSONata variable lookup.
    pub(crate) fn var_lookup(&self) -> impl Fn(&str) -> Option<Value> + '_ {
        move |name: &str| self.vars.get(name).cloned()
    }
}

/// The text of a value as AWS quotes it in causes (compact JSON).
pub(crate) fn to_json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A compiled template.
#[derive(Debug, Clone)]
pub(crate) enum Tpl {
    /// A subtree without any expression: cloned as is.
    Lit(Value),
    Obj(Vec<(String, Tpl)>),
    Arr(Vec<Tpl>),
    /// `"key.$": "$.path"`; `field` is the original key, for error messages.
    Path {
        path: JsonPath,
        field: String,
    },
    Intrinsic {
        call: Box<Intrinsic>,
        field: String,
    },
    /// `"{% expr %}"`; `src` is the whole string and `field` AWS's name for where it sits
    /// (`Output/a/b[0]`), both for error causes.
    Jsonata {
        expr: Box<Jsonata>,
        src: Box<str>,
        field: Box<str>,
    },
}

/// A template that failed to compile: where and why.
#[derive(Debug, Clone)]
pub(crate) struct TplError {
    /// JSON pointer suffix inside the template (e.g. `/a/b.$`).
    pub at: String,
    pub message: String,
}

fn escape_ptr(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Compiles a `.$` value: a path, a context path, a variable path or an intrinsic call.
pub(crate) fn compile_dollar(s: &str, field: &str) -> Result<Tpl, String> {
    let t = s.trim();
    if t.starts_with("States.") {
        return asl_expr::intrinsics::parse(t)
            .map(|call| Tpl::Intrinsic { call: Box::new(call), field: field.to_owned() })
            .map_err(|e| format!("the value of '{field}' is not a valid intrinsic function call: {}", e.cause));
    }
    if t.starts_with('$') {
        return JsonPath::parse(t)
            .map(|path| Tpl::Path { path, field: field.to_owned() })
            .map_err(|e| format!("the value of '{field}' is not a valid JSONPath: {}", e.reason));
    }
    Err(format!("the value of '{field}' must be a JSONPath or an intrinsic function, got '{s}'"))
}

/// Compiles a JSONPath-mode payload template.
pub(crate) fn compile_jsonpath(v: &Value) -> Result<Tpl, Vec<TplError>> {
    let mut errs = Vec::new();
    let t = jp(v, "", &mut errs);
    if errs.is_empty() { Ok(t) } else { Err(errs) }
}

fn has_dollar_keys(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| k.ends_with(".$") || has_dollar_keys(v)),
        Value::Array(a) => a.iter().any(has_dollar_keys),
        _ => false,
    }
}

fn jp(v: &Value, at: &str, errs: &mut Vec<TplError>) -> Tpl {
    if !has_dollar_keys(v) {
        return Tpl::Lit(v.clone());
    }
    match v {
        Value::Object(m) => {
            let mut fields = Vec::with_capacity(m.len());
            for (k, val) in m {
                let here = format!("{at}/{}", escape_ptr(k));
                if let Some(name) = k.strip_suffix(".$") {
                    match val {
                        Value::String(s) => match compile_dollar(s, k) {
                            Ok(t) => fields.push((name.to_owned(), t)),
                            Err(message) => errs.push(TplError { at: here, message }),
                        },
                        _ => errs.push(TplError {
                            at: here,
                            message: format!(
                                "the value of '{k}' must be a string (a JSONPath or an intrinsic function)"
                            ),
                        }),
                    }
                } else {
                    fields.push((k.clone(), jp(val, &here, errs)));
                }
            }
            Tpl::Obj(fields)
        }
        Value::Array(a) => Tpl::Arr(a.iter().enumerate().map(|(i, x)| jp(x, &format!("{at}/{i}"), errs)).collect()),
        other => Tpl::Lit(other.clone()),
    }
}

/// If `s` is a `{% ... %}` expression, its inside.
pub(crate) fn jsonata_inner(s: &str) -> Option<&str> {
    // AWS only treats the string as an expression when `{%` and `%}` are its very first and
    // last characters; " {% x %} " is a plain string.
    s.strip_prefix("{%").and_then(|r| r.strip_suffix("%}"))
}

/// Compiles a JSONata-mode template (any JSON whose strings may be `{% %}` expressions).
/// `field` is where it sits in the state (`Output`, `Choices/0/Condition`).
pub(crate) fn compile_jsonata(v: &Value, field: &str) -> Result<Tpl, Vec<TplError>> {
    let mut errs = Vec::new();
    let t = jn(v, "", field, &mut errs);
    if errs.is_empty() { Ok(t) } else { Err(errs) }
}

/// `Choices/1/Condition` -> `Choices[1]/Condition`, `Output/a/0` -> `Output/a[0]`: the way AWS
/// names a field in JSONata causes.
fn aws_field(pointer: &str) -> String {
    let mut out = String::new();
    for (i, part) in pointer.split('/').enumerate() {
        if i > 0 && !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if i > 0 {
                out.push('/');
            }
            out.push_str(&part.replace("~1", "/").replace("~0", "~"));
        }
    }
    out
}

fn has_expr(v: &Value) -> bool {
    match v {
        Value::String(s) => jsonata_inner(s).is_some(),
        Value::Object(m) => m.values().any(has_expr),
        Value::Array(a) => a.iter().any(has_expr),
        _ => false,
    }
}

fn jn(v: &Value, at: &str, field: &str, errs: &mut Vec<TplError>) -> Tpl {
    if !has_expr(v) {
        return Tpl::Lit(v.clone());
    }
    match v {
        Value::String(s) => match jsonata_inner(s).map(asl_expr::jsonata::compile) {
            Some(Ok(j)) => Tpl::Jsonata {
                expr: Box::new(j),
                // AWS quotes the expression in causes without `{% %}` and the spaces inside.
                src: Box::from(jsonata_inner(s).unwrap_or(s).trim()),
                field: Box::from(aws_field(&format!("{field}{at}")).as_str()),
            },
            Some(Err(e)) => {
                errs.push(TplError {
                    at: at.to_owned(),
                    message: format!("invalid JSONata expression {s}: {}", e.cause),
                });
                Tpl::Lit(Value::Null)
            }
            None => Tpl::Lit(v.clone()),
        },
        Value::Object(m) => Tpl::Obj(
            m.iter().map(|(k, x)| (k.clone(), jn(x, &format!("{at}/{}", escape_ptr(k)), field, errs))).collect(),
        ),
        Value::Array(a) => {
            Tpl::Arr(a.iter().enumerate().map(|(i, x)| jn(x, &format!("{at}/{i}"), field, errs)).collect())
        }
        other => Tpl::Lit(other.clone()),
    }
}

/// Evaluates one JSONata expression; undefined comes back as `None`.
pub(crate) fn eval_jsonata(j: &Jsonata, env: &Env<'_>) -> Result<Option<Value>, ExprError> {
    let lookup = env.var_lookup();
    j.eval(env.states(), &lookup)
}

impl Tpl {
    /// Evaluates the template. Errors carry AWS's error name and cause (without the state prefix).
    pub(crate) fn eval(&self, env: &Env<'_>) -> Result<Value, ExprError> {
        Ok(self.eval_opt(env)?.unwrap_or(Value::Null))
    }

    fn eval_opt(&self, env: &Env<'_>) -> Result<Option<Value>, ExprError> {
        match self {
            Tpl::Lit(v) => Ok(Some(v.clone())),
            Tpl::Obj(fields) => {
                let mut m = Map::with_capacity(fields.len());
                for (k, t) in fields {
                    // JSONata fields that evaluate to undefined are left out, as JSONata does.
                    if let Some(v) = t.eval_opt(env)? {
                        m.insert(k.clone(), v);
                    }
                }
                Ok(Some(Value::Object(m)))
            }
            Tpl::Arr(items) => {
                let mut a = Vec::with_capacity(items.len());
                for t in items {
                    if let Some(v) = t.eval_opt(env)? {
                        a.push(v);
                    }
                }
                Ok(Some(Value::Array(a)))
            }
            Tpl::Path { path, field } => match env.resolve(path) {
                Some(v) => Ok(Some(v.into_owned())),
                None => Err(missing_path_error(path, field, env)),
            },
            Tpl::Intrinsic { call, field } => {
                let resolve = |p: &str| -> Result<Value, ExprError> {
                    let path = JsonPath::parse(p).map_err(|e| ExprError::runtime(e.to_string()))?;
                    env.resolve(&path).map(Cow::into_owned).ok_or_else(|| missing_path_error(&path, field, env))
                };
                call.eval(&resolve).map(Some)
            }
            Tpl::Jsonata { expr, src, field } => match eval_jsonata(expr, env) {
                Ok(Some(v)) => Ok(Some(v)),
                // AWS refuses an expression that yields nothing, wherever it sits.
                Ok(None) => Err(ExprError::query(asl_expr::jsonata::undefined_cause(src, field))),
                Err(e) if e.error == "States.QueryEvaluationError" => {
                    Err(ExprError::query(asl_expr::jsonata::eval_error_cause(src, field, &e.cause)))
                }
                Err(e) => Err(e),
            },
        }
    }
}

/// AWS's cause for a `.$` path that selects nothing.
pub(crate) fn missing_path_error(path: &JsonPath, field: &str, env: &Env<'_>) -> ExprError {
    let doc = match path.root() {
        Root::Input => to_json_text(env.input),
        Root::Context => to_json_text(env.context()),
        Root::Var(_) => {
            return ExprError::runtime(format!(
                "The JSONPath '{path}' specified for the field '{field}' could not be found in the input '{}'",
                to_json_text(env.input)
            ));
        }
    };
    ExprError::runtime(format!(
        "The JSONPath '{path}' specified for the field '{field}' could not be found in the input '{doc}'"
    ))
}
