//! Intrinsic functions (`States.Format(...)` and friends) of JSONPath states.
//!
//! [`parse`] checks the syntax only, the way AWS does when it accepts a definition: AWS accepts a
//! call with the wrong number or types of arguments, or a malformed `States.Format` template, and
//! fails the execution later with `States.Runtime`. [`Intrinsic::check`] reports those problems
//! up front for callers that want a stricter validation than AWS.
//!
//! Every run-time failure is `States.Runtime` with the cause `Invalid arguments in States.X`, the
//! text AWS uses. Where AWS's behaviour differs from the documentation it follows what the live
//! service was observed to answer (published characterisations, and the conformance corpus):
//!
//! - numbers: `States.MathAdd` rounds half up (Java's `Math.round`) and works on 32-bit integers;
//!   `ArrayRange`, `ArrayPartition`, `ArrayGetItem` and `MathRandom` truncate fractions;
//! - `States.Format` writes strings bare, arrays and objects in Java notation (`[a, b]`, `{k=v}`)
//!   and everything else as JSON (`null` included);
//! - `States.StringSplit` splits on every character of its second argument and drops empty
//!   tokens (Java's `StringTokenizer`); `States.StringToJson('')` is null;
//! - `States.Base64Decode` is lenient (skips foreign characters, stops at `=`); inputs of
//!   `Base64Encode`, `Base64Decode` and `Hash` are limited to 10,000 characters; `Hash` hashes a
//!   non-string as its JSON text;
//! - `States.ArrayContains` compares text (key order matters, `true` matches `"true"`);
//!   `States.ArrayUnique` answers in `java.util.HashSet` order with Java equality;
//!   `States.ArrayGetItem` on an empty array is null; `ArrayRange` makes at most 1,000 items;
//! - `States.JsonMerge` is shallow only: a third argument of `true` fails, anything else merges;
//! - a seeded `States.MathRandom` draws what `java.util.Random(seed)` draws.

use std::fmt;

use base64::Engine as _;
use serde_json::{Number, Value};

use crate::ExprError;

/// AWS's size limit, in UTF-16 code units, for the inputs of `Base64Encode`, `Base64Decode` and
/// `Hash`.
const MAX_STRING_INPUT: usize = 10_000;
/// How deeply calls may nest inside one another (a guard for the parser's stack).
const MAX_NESTING: usize = 100;
/// AWS's limit on the length of the array `States.ArrayRange` builds.
const MAX_RANGE_ITEMS: i64 = 1_000;

/// The intrinsic functions AWS defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Func {
    const ALL: [Func; 18] = [
        Func::Format,
        Func::StringToJson,
        Func::JsonToString,
        Func::Array,
        Func::ArrayPartition,
        Func::ArrayContains,
        Func::ArrayRange,
        Func::ArrayGetItem,
        Func::ArrayLength,
        Func::ArrayUnique,
        Func::Base64Encode,
        Func::Base64Decode,
        Func::Hash,
        Func::JsonMerge,
        Func::MathRandom,
        Func::MathAdd,
        Func::StringSplit,
        Func::Uuid,
    ];

    /// The full name, e.g. `States.Format`.
    pub fn name(self) -> &'static str {
        match self {
            Func::Format => "States.Format",
            Func::StringToJson => "States.StringToJson",
            Func::JsonToString => "States.JsonToString",
            Func::Array => "States.Array",
            Func::ArrayPartition => "States.ArrayPartition",
            Func::ArrayContains => "States.ArrayContains",
            Func::ArrayRange => "States.ArrayRange",
            Func::ArrayGetItem => "States.ArrayGetItem",
            Func::ArrayLength => "States.ArrayLength",
            Func::ArrayUnique => "States.ArrayUnique",
            Func::Base64Encode => "States.Base64Encode",
            Func::Base64Decode => "States.Base64Decode",
            Func::Hash => "States.Hash",
            Func::JsonMerge => "States.JsonMerge",
            Func::MathRandom => "States.MathRandom",
            Func::MathAdd => "States.MathAdd",
            Func::StringSplit => "States.StringSplit",
            Func::Uuid => "States.UUID",
        }
    }

    /// Looks a function up by its full name (`States.Format`); names are case-sensitive.
    pub fn from_name(name: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The accepted number of arguments: minimum and maximum (`None`: no maximum).
    pub fn arity(self) -> (usize, Option<usize>) {
        match self {
            Func::Format => (1, None),
            Func::Array => (0, None),
            Func::Uuid => (0, Some(0)),
            Func::StringToJson
            | Func::JsonToString
            | Func::ArrayLength
            | Func::ArrayUnique
            | Func::Base64Encode
            | Func::Base64Decode => (1, Some(1)),
            Func::ArrayPartition
            | Func::ArrayContains
            | Func::ArrayGetItem
            | Func::Hash
            | Func::MathAdd
            | Func::StringSplit => (2, Some(2)),
            Func::MathRandom => (2, Some(3)),
            Func::ArrayRange | Func::JsonMerge => (3, Some(3)),
        }
    }
}

/// A parsed intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub struct Intrinsic {
    func: Func,
    args: Vec<Arg>,
    /// For `States.Format` with a literal template: the template parsed once, or why it is bad.
    template: Option<Result<Template, ExprError>>,
}

/// One argument of an intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A string, number, boolean or null literal.
    Literal(Value),
    /// A path such as `$.a`, `$`, `$$.Execution.Id` or `$var.x`, resolved by the engine.
    Path(String),
    /// A nested intrinsic call.
    Call(Box<Intrinsic>),
}

/// A `States.Format` template: literal text and `{}` holes.
#[derive(Debug, Clone, PartialEq)]
struct Template {
    pieces: Vec<Piece>,
    holes: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Hole,
}

/// True when `s` is meant as an intrinsic call (a JSONPath never starts with `States.`).
pub fn is_intrinsic(s: &str) -> bool {
    s.trim_start_matches([' ', '\t', '\n']).starts_with("States.")
}

/// Parses an intrinsic call; an error means the text is not a syntactically valid call.
pub fn parse(expr: &str) -> Result<Intrinsic, ExprError> {
    let mut p = Parser { src: expr, pos: 0, last_raw: (0, 0), depth: 0 };
    p.skip_ws();
    let call = p.call()?;
    p.skip_ws();
    if p.pos != expr.len() {
        return Err(p.error("unexpected text after the closing parenthesis"));
    }
    Ok(call)
}

/// Parses and evaluates in one go.
pub fn eval(expr: &str, resolve: &dyn Fn(&str) -> Result<Value, ExprError>) -> Result<Value, ExprError> {
    parse(expr)?.eval(resolve)
}

impl Intrinsic {
    pub fn func(&self) -> Func {
        self.func
    }

    pub fn args(&self) -> &[Arg] {
        &self.args
    }

    /// Every path argument, nested calls included, in order (for validating them as JSONPath).
    pub fn paths(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a str>) {
        for arg in &self.args {
            match arg {
                Arg::Path(p) => out.push(p),
                Arg::Call(c) => c.collect_paths(out),
                Arg::Literal(_) => {}
            }
        }
    }

    /// Checks what can be known before running: the argument counts and literal argument types
    /// and `States.Format` literal templates, nested calls included. AWS itself only finds these
    /// at run time, so this is for validation stricter than AWS's.
    pub fn check(&self) -> Result<(), ExprError> {
        let (min, max) = self.func.arity();
        if self.args.len() < min || max.is_some_and(|m| self.args.len() > m) {
            return Err(ExprError::runtime(format!(
                "{} takes {} but was given {} argument(s)",
                self.func.name(),
                describe_arity(min, max),
                self.args.len()
            )));
        }
        if let Some(Err(e)) = &self.template {
            return Err(e.clone());
        }
        if let Some(Ok(t)) = &self.template
            && t.holes != self.args.len() - 1
        {
            return Err(ExprError::runtime(format!(
                "States.Format has {} placeholder(s) but {} value(s)",
                t.holes,
                self.args.len() - 1
            )));
        }
        for arg in &self.args {
            if let Arg::Call(c) = arg {
                c.check()?;
            }
        }
        Ok(())
    }

    /// Evaluates the call; `resolve` turns a path argument into its value (or AWS's error for a
    /// path that matches nothing).
    pub fn eval(&self, resolve: &dyn Fn(&str) -> Result<Value, ExprError>) -> Result<Value, ExprError> {
        self.eval_at(&|_, p| resolve(p), &mut 0)
    }

    /// Like [`Intrinsic::eval`], but `resolve` also gets the path's position in
    /// [`Intrinsic::paths`], so a caller can parse the paths once and look them up by index.
    pub fn eval_indexed(&self, resolve: &dyn Fn(usize, &str) -> Result<Value, ExprError>) -> Result<Value, ExprError> {
        self.eval_at(resolve, &mut 0)
    }

    fn eval_at(
        &self,
        resolve: &dyn Fn(usize, &str) -> Result<Value, ExprError>,
        next_path: &mut usize,
    ) -> Result<Value, ExprError> {
        let mut values = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            values.push(match arg {
                Arg::Literal(v) => v.clone(),
                Arg::Path(p) => {
                    let i = *next_path;
                    *next_path += 1;
                    resolve(i, p)?
                }
                Arg::Call(c) => c.eval_at(resolve, next_path)?,
            });
        }
        let (min, max) = self.func.arity();
        if values.len() < min || max.is_some_and(|m| values.len() > m) {
            return Err(self.invalid());
        }
        self.apply(values)
    }

    fn invalid(&self) -> ExprError {
        invalid(self.func)
    }

    fn apply(&self, mut v: Vec<Value>) -> Result<Value, ExprError> {
        let bad = || self.invalid();
        match self.func {
            Func::Array => Ok(Value::Array(v)),
            Func::Format => {
                let parsed;
                let template = match &self.template {
                    Some(Ok(t)) => t,
                    Some(Err(_)) => return Err(bad()),
                    None => {
                        let Value::String(s) = &v[0] else {
                            return Err(bad());
                        };
                        parsed = parse_template(s, false).map_err(|_| bad())?;
                        &parsed
                    }
                };
                if template.holes != v.len() - 1 {
                    return Err(bad());
                }
                let mut out = String::new();
                let mut values = v[1..].iter();
                for piece in &template.pieces {
                    match piece {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Hole => {
                            if let Some(value) = values.next() {
                                format_value(value, &mut out);
                            }
                        }
                    }
                }
                Ok(Value::String(out))
            }
            Func::StringToJson => {
                let Value::String(s) = &v[0] else {
                    return Err(bad());
                };
                // AWS answers null for an empty (or blank) string instead of failing.
                if s.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(s).map_err(|_| bad())
            }
            Func::JsonToString => Ok(Value::String(v[0].to_string())),
            Func::ArrayPartition => {
                let size = number(&v[1]).map(f64::trunc).ok_or_else(bad)?;
                let Value::Array(items) = &mut v[0] else {
                    return Err(bad());
                };
                if size < 1.0 {
                    return Err(bad());
                }
                // A size beyond usize (only possible from a huge float) means one chunk.
                let size = if size >= usize::MAX as f64 { usize::MAX } else { size as usize };
                let items = std::mem::take(items);
                Ok(Value::Array(items.chunks(size).map(|c| Value::Array(c.to_vec())).collect()))
            }
            Func::ArrayContains => {
                let Value::Array(items) = &v[0] else {
                    return Err(bad());
                };
                // AWS compares text, as observed: a string by its characters and anything else by
                // its JSON, so `true` matches "true", 1 matches "1", and objects match only with
                // their keys in the same order.
                let wanted = comparison_text(&v[1]);
                Ok(Value::Bool(items.iter().any(|item| comparison_text(item) == wanted)))
            }
            Func::ArrayRange => {
                let mut n = [0i64; 3];
                for (slot, value) in n.iter_mut().zip(&v) {
                    *slot = number(value).and_then(truncate_i64).ok_or_else(bad)?;
                }
                let [start, end, step] = n;
                if step == 0 {
                    return Err(bad());
                }
                if (step > 0 && start > end) || (step < 0 && start < end) {
                    return Ok(Value::Array(Vec::new()));
                }
                let count = (i128::from(end) - i128::from(start)) / i128::from(step) + 1;
                if count > i128::from(MAX_RANGE_ITEMS) {
                    return Err(bad());
                }
                // Every item lies between start and end, but `i * step` alone may not fit an i64.
                Ok(Value::Array(
                    (0..count).map(|i| Value::from((i128::from(start) + i * i128::from(step)) as i64)).collect(),
                ))
            }
            Func::ArrayGetItem => {
                let index = number(&v[1]).map(f64::trunc).ok_or_else(bad)?;
                let Value::Array(items) = &mut v[0] else {
                    return Err(bad());
                };
                if index < 0.0 {
                    return Err(bad());
                }
                // AWS answers null, not an error, for any index into an empty array.
                if items.is_empty() {
                    return Ok(Value::Null);
                }
                if index >= items.len() as f64 {
                    return Err(bad());
                }
                Ok(items.swap_remove(index as usize))
            }
            Func::ArrayLength => {
                let Value::Array(items) = &v[0] else {
                    return Err(bad());
                };
                Ok(Value::from(items.len()))
            }
            Func::ArrayUnique => {
                let Value::Array(items) = &mut v[0] else {
                    return Err(bad());
                };
                Ok(Value::Array(java_hash_set(std::mem::take(items))))
            }
            Func::Base64Encode => {
                let Value::String(s) = &v[0] else {
                    return Err(bad());
                };
                if utf16_len(s) > MAX_STRING_INPUT {
                    return Err(bad());
                }
                Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(s)))
            }
            Func::Base64Decode => {
                let Value::String(s) = &v[0] else {
                    return Err(bad());
                };
                if utf16_len(s) > MAX_STRING_INPUT {
                    return Err(bad());
                }
                Ok(Value::String(String::from_utf8_lossy(&lenient_base64_decode(s)).into_owned()))
            }
            Func::Hash => {
                let Value::String(algorithm) = &v[1] else {
                    return Err(bad());
                };
                // AWS hashes a non-string value as its JSON text.
                let data = match &v[0] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if utf16_len(&data) > MAX_STRING_INPUT {
                    return Err(bad());
                }
                hash_hex(&data, algorithm).map(Value::String).ok_or_else(bad)
            }
            Func::JsonMerge => {
                // AWS supports only the shallow merge; any third argument but `true` means it.
                if v[2] == Value::Bool(true) {
                    return Err(bad());
                }
                let right = match v.swap_remove(1) {
                    Value::Object(m) => m,
                    _ => return Err(bad()),
                };
                let Value::Object(mut left) = v.swap_remove(0) else {
                    return Err(bad());
                };
                for (k, value) in right {
                    left.insert(k, value);
                }
                Ok(Value::Object(left))
            }
            Func::MathRandom => {
                let start = number(&v[0]).and_then(truncate_i64).ok_or_else(bad)?;
                let end = number(&v[1]).and_then(truncate_i64).ok_or_else(bad)?;
                if start >= end {
                    return Err(bad());
                }
                let span = (i128::from(end) - i128::from(start)) as u64;
                let offset = match v.get(2) {
                    Some(seed) => {
                        let seed = number(seed).and_then(truncate_i64).ok_or_else(bad)?;
                        JavaRandom::new(seed).next_below(span)
                    }
                    None => rand::random_range(0..span),
                };
                Ok(Value::from((i128::from(start) + i128::from(offset)) as i64))
            }
            Func::MathAdd => {
                let a = number(&v[0]).and_then(java_round_i32).ok_or_else(bad)?;
                let b = number(&v[1]).and_then(java_round_i32).ok_or_else(bad)?;
                a.checked_add(b).map(Value::from).ok_or_else(bad)
            }
            Func::StringSplit => {
                let (Value::String(s), Value::String(delims)) = (&v[0], &v[1]) else {
                    return Err(bad());
                };
                // AWS splits like Java's StringTokenizer: every character of the second argument
                // is a delimiter, and empty tokens are dropped.
                Ok(Value::Array(
                    s.split(|c: char| delims.contains(c))
                        .filter(|t| !t.is_empty())
                        .map(|t| Value::String(t.to_owned()))
                        .collect(),
                ))
            }
            Func::Uuid => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
        }
    }
}

impl fmt::Display for Intrinsic {
    /// Writes the call back in intrinsic syntax (literals re-escaped).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.func.name())?;
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match arg {
                Arg::Path(p) => f.write_str(p)?,
                Arg::Call(c) => write!(f, "{c}")?,
                Arg::Literal(Value::String(s)) => {
                    f.write_str("'")?;
                    for ch in s.chars() {
                        // Braces stay bare: escaping them would change a Format template.
                        if matches!(ch, '\'' | '\\') {
                            f.write_str("\\")?;
                        }
                        write!(f, "{ch}")?;
                    }
                    f.write_str("'")?;
                }
                Arg::Literal(v) => write!(f, "{v}")?,
            }
        }
        f.write_str(")")
    }
}

fn invalid(func: Func) -> ExprError {
    ExprError::runtime(format!("Invalid arguments in {}", func.name()))
}

fn describe_arity(min: usize, max: Option<usize>) -> String {
    match max {
        None => format!("at least {min} argument(s)"),
        Some(m) if m == min => format!("exactly {min} argument(s)"),
        Some(m) => format!("{min} to {m} argument(s)"),
    }
}

/// The distinct values of `items` in the order a `java.util.HashSet` built from them iterates,
/// which is the order AWS answers `States.ArrayUnique` in: observed outputs such as
/// `[false, true]` for `[true, false, true]`, `[[2, 1], [1, 2]]` for `[[1, 2], [1, 2], [2, 1]]`
/// and `[null, 1]` for `[null, null, 1]` are exactly that order for the Java values (`Integer`,
/// `Double`, `String`, `Boolean`, `List`, `Map`, `null`) the JSON converts to. Equality is Java's
/// too: objects are equal whatever their key order, and `1` differs from `1.0`.
fn java_hash_set(items: Vec<Value>) -> Vec<Value> {
    // `new HashSet<>(collection)` sizes its table from the collection, duplicates included.
    let wanted = ((items.len() as f32 / 0.75) as usize + 1).max(16);
    let capacity = wanted.next_power_of_two();
    let mut buckets: Vec<Vec<Value>> = vec![Vec::new(); capacity];
    for item in items {
        let h = java_hash(&item);
        let spread = h ^ ((h as u32) >> 16) as i32;
        let bucket = &mut buckets[(spread as u32 as usize) & (capacity - 1)];
        if !bucket.iter().any(|b| java_equals(b, &item)) {
            bucket.push(item);
        }
    }
    buckets.into_iter().flatten().collect()
}

/// `hashCode()` of the Java value a JSON value converts to.
fn java_hash(v: &Value) -> i32 {
    fn long_hash(l: i64) -> i32 {
        (l ^ ((l as u64) >> 32) as i64) as i32
    }
    match v {
        Value::Null => 0,
        Value::Bool(true) => 1231,
        Value::Bool(false) => 1237,
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) if i32::try_from(i).is_ok() => i as i32,
            (Some(i), _) => long_hash(i),
            (None, Some(u)) => long_hash(u as i64),
            _ => long_hash(n.as_f64().unwrap_or(0.0).to_bits() as i64),
        },
        Value::String(s) => string_hash(s),
        Value::Array(items) => items.iter().fold(1i32, |h, e| h.wrapping_mul(31).wrapping_add(java_hash(e))),
        Value::Object(m) => m.iter().fold(0i32, |h, (k, e)| h.wrapping_add(string_hash(k) ^ java_hash(e))),
    }
}

fn string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// `equals()` of the Java values: integers and doubles never equal each other, maps ignore order.
fn java_equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.is_f64(), y.is_f64()) {
            (false, false) => x == y,
            (true, true) => x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| java_equals(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| java_equals(p, q)))
        }
        _ => a == b,
    }
}

fn comparison_text(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::String(s) => std::borrow::Cow::Borrowed(s),
        other => std::borrow::Cow::Owned(other.to_string()),
    }
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().filter(|f| f.is_finite())
}

fn truncate_i64(f: f64) -> Option<i64> {
    let t = f.trunc();
    (t >= i64::MIN as f64 && t < i64::MAX as f64).then_some(t as i64)
}

/// Java's `Math.round` (half up, so -1.5 becomes -1), then a check that the result is a 32-bit
/// integer as `States.MathAdd` requires.
fn java_round_i32(f: f64) -> Option<i32> {
    let r = (f + 0.5).floor();
    (r >= f64::from(i32::MIN) && r <= f64::from(i32::MAX)).then_some(r as i32)
}

/// The length Java's `String.length()` reports, which AWS's size limits count.
fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// How `States.Format` writes a value: strings bare, arrays and objects in Java's collection
/// notation (`[a, b]`, `{k=v}`), everything else as JSON.
fn format_value(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                format_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                format_value(item, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Parses a `States.Format` template. `\{`, `\}`, `\'` and `\\` stand for the character itself;
/// `{}` is a hole; any other brace is an error. `literal` is true for the raw text of a quoted
/// literal (already checked to hold only these escapes); a template read from a path keeps any
/// other backslash as it is.
fn parse_template(s: &str, literal: bool) -> Result<Template, ExprError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut holes = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('{' | '}' | '\'' | '\\')) => {
                    text.push(n);
                    chars.next();
                }
                _ if literal => {
                    return Err(ExprError::runtime("invalid escape in States.Format template"));
                }
                _ => text.push('\\'),
            },
            '{' => {
                if chars.next() != Some('}') {
                    return Err(ExprError::runtime(
                        "Invalid template in States.Format: matching '}' not found for '{'.",
                    ));
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Hole);
                holes += 1;
            }
            '}' => {
                return Err(ExprError::runtime("Invalid template in States.Format: '}' without a matching '{'."));
            }
            other => text.push(other),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(Template { pieces, holes })
}

/// Decodes Base64 as leniently as AWS: characters outside the alphabet are skipped, decoding
/// stops at the first `=`, both the standard and the URL-safe alphabets are read, and a trailing
/// partial group yields the bytes it completes.
fn lenient_base64_decode(s: &str) -> Vec<u8> {
    fn sextet(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut n = 0;
    for b in s.bytes() {
        if b == b'=' {
            break;
        }
        let Some(x) = sextet(b) else { continue };
        acc = (acc << 6) | x;
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out
}

/// The lowercase hex digest of `data` with one of AWS's algorithm names (case-sensitive).
pub(crate) fn hash_hex(data: &str, algorithm: &str) -> Option<String> {
    use sha2::Digest as _;
    let bytes = data.as_bytes();
    let digest: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(bytes).to_vec(),
        "SHA-1" => sha1::Sha1::digest(bytes).to_vec(),
        "SHA-256" => sha2::Sha256::digest(bytes).to_vec(),
        "SHA-384" => sha2::Sha384::digest(bytes).to_vec(),
        "SHA-512" => sha2::Sha512::digest(bytes).to_vec(),
        _ => return None,
    };
    let mut hex = String::with_capacity(digest.len() * 2);
    for b in digest {
        hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    Some(hex)
}

/// `java.util.Random`, so a seeded `States.MathRandom` (and JSONata `$random(seed)`) gives the
/// same sequence for the same seed, as the Java service behind AWS does.
pub(crate) struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5DEE_CE66D;
    const MASK: u64 = (1 << 48) - 1;

    pub(crate) fn new(seed: i64) -> Self {
        Self { seed: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK }
    }

    fn next(&mut self, bits: u32) -> u32 {
        self.seed = (self.seed.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.seed >> (48 - bits)) as u32
    }

    /// `nextInt(bound)` for bounds that fit an `int`; larger bounds use `nextLong` modulo.
    pub(crate) fn next_below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        if bound <= i32::MAX as u64 {
            let bound = bound as u32;
            if bound.is_power_of_two() {
                return (u64::from(bound) * u64::from(self.next(31))) >> 31;
            }
            loop {
                let bits = self.next(31) as i32;
                let val = bits % bound as i32;
                if bits.wrapping_sub(val).wrapping_add(bound as i32 - 1) >= 0 {
                    return val as u64;
                }
            }
        }
        let long = (u64::from(self.next(32)) << 32).wrapping_add(u64::from(self.next(32)) as i32 as i64 as u64);
        long % bound
    }

    /// `nextDouble()`: a number in [0, 1).
    pub(crate) fn next_double(&mut self) -> f64 {
        let hi = u64::from(self.next(26)) << 27;
        let lo = u64::from(self.next(27));
        (hi + lo) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// Byte range of the text inside the quotes of the last string literal read.
    last_raw: (usize, usize),
    /// How many calls are open, bounded so that nesting cannot overflow the stack.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start_matches([' ', '\t', '\n']);
        self.pos = self.src.len() - trimmed.len();
    }

    fn error(&self, what: &str) -> ExprError {
        ExprError::runtime(format!("invalid intrinsic function call '{}': {what} at offset {}", self.src, self.pos))
    }

    /// `States.Name(args)`.
    fn call(&mut self) -> Result<Intrinsic, ExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error("calls nested too deeply"));
        }
        let call = self.call_inner();
        self.depth -= 1;
        call
    }

    fn call_inner(&mut self) -> Result<Intrinsic, ExprError> {
        if !self.rest().starts_with("States.") {
            return Err(self.error("expected 'States.'"));
        }
        let start = self.pos;
        self.pos += "States.".len();
        let name_len =
            self.rest().find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(self.rest().len());
        self.pos += name_len;
        let name = &self.src[start..self.pos];
        let func = Func::from_name(name)
            .ok_or_else(|| ExprError::runtime(format!("'{name}' is not an intrinsic function")))?;
        self.skip_ws();
        if self.peek() != Some('(') {
            return Err(self.error("expected '('"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        // The raw text of a literal first argument, which `States.Format` parses as its template.
        let mut first_raw = None;
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                let arg = self.arg()?;
                if args.is_empty() && matches!(arg, Arg::Literal(Value::String(_))) {
                    first_raw = Some(&self.src[self.last_raw.0..self.last_raw.1]);
                }
                args.push(arg);
                self.skip_ws();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error("expected ',' or ')'")),
                }
            }
        }
        let mut call = Intrinsic { func, args, template: None };
        if func == Func::Format
            && let Some(raw) = first_raw
        {
            call.template = Some(parse_template(raw, true));
        }
        Ok(call)
    }

    fn arg(&mut self) -> Result<Arg, ExprError> {
        match self.peek() {
            Some('\'') => self.string().map(|s| Arg::Literal(Value::String(s))),
            Some('$') => Ok(Arg::Path(self.path())),
            Some('S') if self.rest().starts_with("States.") => Ok(Arg::Call(Box::new(self.call()?))),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number().map(Arg::Literal),
            Some(_) => {
                for (word, value) in [("true", Value::Bool(true)), ("false", Value::Bool(false)), ("null", Value::Null)]
                {
                    if let Some(after) = self.rest().strip_prefix(word)
                        && !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    {
                        self.pos += word.len();
                        return Ok(Arg::Literal(value));
                    }
                }
                Err(self.error("expected an argument"))
            }
            None => Err(self.error("unexpected end")),
        }
    }

    /// A quoted literal; escapes are `\'`, `\{`, `\}` and `\\`.
    fn string(&mut self) -> Result<String, ExprError> {
        self.pos += 1;
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' => {
                    self.last_raw = (start, start + i);
                    self.pos = start + i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, n @ ('\'' | '{' | '}' | '\\'))) => out.push(n),
                    _ => {
                        self.pos = start + i;
                        return Err(self.error("invalid escape (only \\', \\{, \\} and \\\\ are allowed)"));
                    }
                },
                other => out.push(other),
            }
        }
        Err(self.error("unterminated string literal"))
    }

    /// A path runs to the next `,` `)` or whitespace outside brackets and quotes.
    fn path(&mut self) -> String {
        let start = self.pos;
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        let mut escaped = false;
        let mut end = self.src.len();
        for (i, c) in self.rest().char_indices() {
            if let Some(q) = quote {
                // `\` escapes the next character, a quote included (`$['a\'b']`).
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                continue;
            }
            match c {
                '\'' | '"' if depth > 0 => quote = Some(c),
                '[' | '(' => depth += 1,
                ']' | ')' if depth > 0 => depth -= 1,
                ',' | ')' | ' ' | '\t' | '\n' if depth == 0 => {
                    end = start + i;
                    break;
                }
                _ => {}
            }
        }
        self.pos = end;
        self.src[start..end].to_owned()
    }

    fn number(&mut self) -> Result<Value, ExprError> {
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
            .unwrap_or(self.rest().len());
        let token = &self.rest()[..len];
        let n: Number = serde_json::from_str(token).map_err(|_| self.error("invalid number"))?;
        self.pos += len;
        Ok(Value::Number(n))
    }
}
