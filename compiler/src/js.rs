//! Lowering JavaScript conditions to native Choice rules, exactly or not at all.
//!
//! A condition is lowered when it is built from `||`, `&&`, `!`, parentheses, comparisons
//! (`===`, `!==`, `<`, `<=`, `>`, `>=`, and `==`/`!=` against `null`/`undefined`), paths
//! (`input.a.b`, `nodes.fetch.status`, `nodes["fetch"].x`, `item.x`, `index`) and literals
//! (numbers, strings, `true`, `false`, `null`, `undefined`). Everything else (calls, arithmetic,
//! array indices, `length` and other built-in properties, loose equality with values, ...)
//! falls back to the `code` function.
//!
//! A lowered condition is a pair: a **guard** and a **rule**. The guard is true whenever the
//! native rule might differ from JavaScript: a path prefix is `null`/`undefined` (JavaScript
//! would throw a TypeError), or an ordering comparison meets a value that JavaScript would coerce
//! (`null < 5` is true). When the guard matches, the compiled Choice sends the execution to the
//! `code` function, which evaluates the expression itself (and throws exactly as JavaScript does).
//! So the native path only runs where it is provably equal to JavaScript:
//!
//! - `p === "s"` ⇔ `p` is present, a string, and equal (likewise numbers, booleans; `=== null` is
//!   `IsNull`; `=== undefined` is "not present"); two paths compare equal if both are the same
//!   primitive type and value, both `null`, or both missing (distinct objects are never `===`,
//!   and the `code` function sees `input` and `nodes.<start>` as copies); a path is always `===`
//!   itself.
//! - two paths are compared natively only while both numbers are within ±(2^53 - 1): beyond, the
//!   Choice rules compare integers exactly and JavaScript their doubles, so the guard takes it.
//! - `p < 5` is native only for numbers; `p < "m"` only for strings and an ASCII literal (so that
//!   UTF-16 and UTF-8 orders agree); a present value of another type takes the guard.
//! - the truthiness of a path is "present and not `null`, `false`, `0` or `""`" (JSON has no `NaN`).
//!
//! Choice rules rely on `And` / `Or` evaluating left to right and stopping early, as Step
//! Functions does, so `IsPresent` always precedes a comparison on the same path.

use serde_json::{Value, json};

use crate::json::obj;
use crate::template::{is_identifier, is_node_id};

/// A path root in a JavaScript expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsRoot {
    Input,
    Node(String),
    Item,
    Index,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JsPath {
    pub root: JsRoot,
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Undefined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    StrictEq,
    StrictNe,
    LooseEq,
    LooseNe,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    Or(Box<Ast>, Box<Ast>),
    And(Box<Ast>, Box<Ast>),
    Not(Box<Ast>),
    Cmp(Op, Box<Ast>, Box<Ast>),
    Path(JsPath),
    Lit(Lit),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Punct(&'static str),
}

const PUNCT: &[&str] = &["===", "!==", "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", ".", "[", "]", "-"];

fn tokenize(src: &str) -> Option<Vec<Tok>> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                i += 1;
            }
            out.push(Tok::Ident(src[s..i].to_owned()));
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let s = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                i += 1;
                if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                    i += 1;
                }
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            // `0x10`, `1n`, `1_000` and friends: not lowered.
            if i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                return None;
            }
            let text = &src[s..i];
            if text.len() > 1 && text.starts_with('0') && !text.starts_with("0.") {
                return None; // legacy octal
            }
            out.push(Tok::Num(text.parse().ok()?));
        } else if c == b'"' || c == b'\'' {
            let mut s = String::new();
            i += 1;
            loop {
                let ch = src[i..].chars().next()?;
                i += ch.len_utf8();
                match ch {
                    q if q as u32 == c as u32 => break,
                    '\\' => {
                        let e = src[i..].chars().next()?;
                        i += e.len_utf8();
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '\\' | '\'' | '"' => e,
                            _ => return None,
                        });
                    }
                    '\n' => return None,
                    other => s.push(other),
                }
            }
            out.push(Tok::Str(s));
        } else {
            let p = PUNCT.iter().find(|p| src[i..].starts_with(**p))?;
            i += p.len();
            out.push(Tok::Punct(p));
        }
    }
    Some(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(q)) if *q == p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Option<Ast> {
        self.depth += 1;
        if self.depth > 64 {
            return None;
        }
        let mut l = self.and()?;
        while self.eat("||") {
            l = Ast::Or(Box::new(l), Box::new(self.and()?));
        }
        self.depth -= 1;
        Some(l)
    }
    fn and(&mut self) -> Option<Ast> {
        let mut l = self.equality()?;
        while self.eat("&&") {
            l = Ast::And(Box::new(l), Box::new(self.equality()?));
        }
        Some(l)
    }
    fn equality(&mut self) -> Option<Ast> {
        let mut l = self.relational()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Punct("===")) => Op::StrictEq,
                Some(Tok::Punct("!==")) => Op::StrictNe,
                Some(Tok::Punct("==")) => Op::LooseEq,
                Some(Tok::Punct("!=")) => Op::LooseNe,
                _ => return Some(l),
            };
            self.pos += 1;
            l = Ast::Cmp(op, Box::new(l), Box::new(self.relational()?));
        }
    }
    fn relational(&mut self) -> Option<Ast> {
        let mut l = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Punct("<")) => Op::Lt,
                Some(Tok::Punct("<=")) => Op::Le,
                Some(Tok::Punct(">")) => Op::Gt,
                Some(Tok::Punct(">=")) => Op::Ge,
                _ => return Some(l),
            };
            self.pos += 1;
            l = Ast::Cmp(op, Box::new(l), Box::new(self.unary()?));
        }
    }
    fn unary(&mut self) -> Option<Ast> {
        self.depth += 1;
        if self.depth > 64 {
            return None;
        }
        let r = if self.eat("!") {
            Ast::Not(Box::new(self.unary()?))
        } else if self.eat("-") {
            match self.peek() {
                Some(Tok::Num(n)) => {
                    let n = -*n;
                    self.pos += 1;
                    Ast::Lit(Lit::Num(n))
                }
                _ => return None,
            }
        } else {
            self.primary()?
        };
        self.depth -= 1;
        Some(r)
    }
    fn primary(&mut self) -> Option<Ast> {
        let tok = self.peek()?.clone();
        self.pos += 1;
        match tok {
            Tok::Punct("(") => {
                let e = self.or()?;
                self.eat(")").then_some(e)
            }
            Tok::Num(n) => Some(Ast::Lit(Lit::Num(n))),
            Tok::Str(s) => Some(Ast::Lit(Lit::Str(s))),
            Tok::Ident(id) => {
                let root = match id.as_str() {
                    "true" => return Some(Ast::Lit(Lit::Bool(true))),
                    "false" => return Some(Ast::Lit(Lit::Bool(false))),
                    "null" => return Some(Ast::Lit(Lit::Null)),
                    "undefined" => return Some(Ast::Lit(Lit::Undefined)),
                    "input" => JsRoot::Input,
                    "item" => JsRoot::Item,
                    "index" => JsRoot::Index,
                    "nodes" => JsRoot::Node(self.node_member()?),
                    _ => return None,
                };
                let mut keys = Vec::new();
                while matches!(self.peek(), Some(Tok::Punct("." | "["))) {
                    keys.push(self.member()?);
                }
                if matches!(self.peek(), Some(Tok::Punct("("))) || (root == JsRoot::Index && !keys.is_empty()) {
                    return None;
                }
                Some(Ast::Path(JsPath { root, keys }))
            }
            _ => None,
        }
    }
    /// The node id after `nodes`: `.id`, or `["id"]` for any node id (`nodes["node-1"]`,
    /// `nodes['1']`), which JavaScript reads from `scope.nodes` like any other string key.
    fn node_member(&mut self) -> Option<String> {
        self.member_where(is_node_id)
    }
    /// `.key` or `["key"]`; keys JavaScript would find on a prototype are refused.
    fn member(&mut self) -> Option<String> {
        self.member_where(is_identifier)
    }
    fn member_where(&mut self, valid: fn(&str) -> bool) -> Option<String> {
        let key = if self.eat(".") {
            match self.peek()? {
                Tok::Ident(k) => k.clone(),
                _ => return None,
            }
        } else if self.eat("[") {
            let Tok::Str(k) = self.peek()?.clone() else {
                return None;
            };
            self.pos += 1;
            if !matches!(self.peek(), Some(Tok::Punct("]"))) {
                return None;
            }
            k
        } else {
            return None;
        };
        self.pos += 1;
        (valid(&key) && !PROTOTYPE_KEYS.contains(&key.as_str())).then_some(key)
    }
}

/// Property names that JavaScript resolves on `Object`, `Array`, `String`, `Number` or
/// `Boolean` prototypes (or as `length`), where JSONPath would find nothing.
const PROTOTYPE_KEYS: &[&str] = &[
    "length",
    "constructor",
    "toString",
    "toLocaleString",
    "valueOf",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "__proto__",
    "__defineGetter__",
    "__defineSetter__",
    "__lookupGetter__",
    "__lookupSetter__",
    "at",
    "concat",
    "copyWithin",
    "entries",
    "every",
    "fill",
    "filter",
    "find",
    "findIndex",
    "findLast",
    "findLastIndex",
    "flat",
    "flatMap",
    "forEach",
    "includes",
    "indexOf",
    "join",
    "keys",
    "lastIndexOf",
    "map",
    "pop",
    "push",
    "reduce",
    "reduceRight",
    "reverse",
    "shift",
    "slice",
    "some",
    "sort",
    "splice",
    "toReversed",
    "toSorted",
    "toSpliced",
    "unshift",
    "values",
    "with",
    "anchor",
    "big",
    "blink",
    "bold",
    "charAt",
    "charCodeAt",
    "codePointAt",
    "endsWith",
    "fixed",
    "fontcolor",
    "fontsize",
    "isWellFormed",
    "italics",
    "link",
    "localeCompare",
    "match",
    "matchAll",
    "normalize",
    "padEnd",
    "padStart",
    "repeat",
    "replace",
    "replaceAll",
    "search",
    "small",
    "split",
    "startsWith",
    "strike",
    "sub",
    "substr",
    "substring",
    "sup",
    "toLocaleLowerCase",
    "toLocaleUpperCase",
    "toLowerCase",
    "toUpperCase",
    "toWellFormed",
    "trim",
    "trimEnd",
    "trimLeft",
    "trimRight",
    "trimStart",
    "toExponential",
    "toFixed",
    "toPrecision",
];

/// Conditions with more tokens than this run on the `code` function. `a || b || ...` parses to
/// a tree as deep as it is long, which the lowering walks recursively; this keeps that walk to a
/// few hundred frames (`compiler/tests/scale.rs` runs it on a 2 MiB stack).
pub const MAX_TOKENS: usize = 512;

/// Parses the lowerable subset; `None` for anything else.
pub fn parse(src: &str) -> Option<Ast> {
    if src.len() > 10_000 {
        return None;
    }
    let toks = tokenize(src)?;
    if toks.len() > MAX_TOKENS {
        return None;
    }
    let mut p = Parser { toks, pos: 0, depth: 0 };
    let ast = p.or()?;
    (p.pos == p.toks.len()).then_some(ast)
}

/// Calls `f` for every path in the expression.
pub fn visit_paths(ast: &Ast, f: &mut dyn FnMut(&JsPath)) {
    match ast {
        Ast::Or(a, b) | Ast::And(a, b) | Ast::Cmp(_, a, b) => {
            visit_paths(a, f);
            visit_paths(b, f);
        }
        Ast::Not(a) => visit_paths(a, f),
        Ast::Path(p) => f(p),
        Ast::Lit(_) => {}
    }
}

/// A Choice condition (a rule without `Next`), or a constant.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Const(bool),
    Rule(Value),
}

impl Cond {
    /// As a Choice rule; constants become rules on `$`, which is always present.
    pub fn into_rule(self) -> Value {
        match self {
            Cond::Rule(r) => r,
            Cond::Const(true) => json!({"Variable": "$", "IsPresent": true}),
            Cond::Const(false) => json!({"Not": {"Variable": "$", "IsPresent": true}}),
        }
    }
}

fn and(items: Vec<Cond>) -> Cond {
    let mut rules = Vec::new();
    for c in items {
        match c {
            Cond::Const(false) => return Cond::Const(false),
            Cond::Const(true) => {}
            Cond::Rule(r) => push_flat(&mut rules, r, "And"),
        }
    }
    match rules.len() {
        0 => Cond::Const(true),
        1 => Cond::Rule(rules.remove(0)),
        _ => Cond::Rule(obj([("And", Value::Array(rules))])),
    }
}

fn or(items: Vec<Cond>) -> Cond {
    let mut rules = Vec::new();
    for c in items {
        match c {
            Cond::Const(true) => return Cond::Const(true),
            Cond::Const(false) => {}
            Cond::Rule(r) => push_flat(&mut rules, r, "Or"),
        }
    }
    match rules.len() {
        0 => Cond::Const(false),
        1 => Cond::Rule(rules.remove(0)),
        _ => Cond::Rule(obj([("Or", Value::Array(rules))])),
    }
}

/// Adds `rule` to the operands of an `And`/`Or` (`op`), splicing in a nested rule of the same
/// operator and dropping duplicates (both are no-ops for the result).
fn push_flat(rules: &mut Vec<Value>, rule: Value, op: &str) {
    match rule {
        Value::Object(mut m) if m.len() == 1 && m.contains_key(op) => {
            if let Some(Value::Array(items)) = m.remove(op) {
                for item in items {
                    push_flat(rules, item, op);
                }
            }
        }
        rule => {
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    }
}

fn not(c: Cond) -> Cond {
    match c {
        Cond::Const(b) => Cond::Const(!b),
        Cond::Rule(r) => Cond::Rule(obj([("Not", r)])),
    }
}

fn test(path: &str, op: &str, value: Value) -> Cond {
    let mut m = serde_json::Map::new();
    m.insert("Variable".into(), Value::String(path.to_owned()));
    m.insert(op.into(), value);
    Cond::Rule(Value::Object(m))
}

fn present(p: &str) -> Cond {
    test(p, "IsPresent", Value::Bool(true))
}

fn num_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        // Written as an integer so `5` stays `5`; -0 equals 0 in both languages.
        json!(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// The falsiness of the JSON value at `p` (missing, `null`, `false`, `0`, `""`), as in JavaScript.
pub fn falsy(p: &str) -> Cond {
    or(vec![
        not(present(p)),
        and(vec![present(p), test(p, "IsNull", Value::Bool(true))]),
        and(vec![present(p), test(p, "IsBoolean", Value::Bool(true)), test(p, "BooleanEquals", Value::Bool(false))]),
        and(vec![present(p), test(p, "IsNumeric", Value::Bool(true)), test(p, "NumericEquals", json!(0))]),
        and(vec![present(p), test(p, "IsString", Value::Bool(true)), test(p, "StringEquals", json!(""))]),
    ])
}

/// A lowered condition: when `guard` holds, evaluate in JavaScript instead; otherwise `rule`
/// is exactly JavaScript's truthiness of the expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Lowered {
    pub guard: Cond,
    pub rule: Cond,
}

/// Resolves a path root to its JSONPath (`$.input`, `$.nodes.fetch`, ...); `None` refuses to
/// lower (e.g. a node with no output).
pub type Resolver<'a> = dyn Fn(&JsRoot) -> Option<String> + 'a;

/// Lowers a JavaScript condition; `None` when it must run on the `code` function.
pub fn lower(src: &str, resolve: &Resolver<'_>) -> Option<Lowered> {
    let ast = parse(src)?;
    let mut guards = Vec::new();
    let rule = truthy(&ast, resolve, &mut guards)?;
    Some(Lowered { guard: or(guards), rule })
}

struct Resolved {
    path: String,
    prefixes: Vec<String>,
}

fn resolve_path(p: &JsPath, resolve: &Resolver<'_>) -> Option<Resolved> {
    let mut path = resolve(&p.root)?;
    let mut prefixes = Vec::with_capacity(p.keys.len());
    for key in &p.keys {
        prefixes.push(path.clone());
        path.push('.');
        path.push_str(key);
    }
    Some(Resolved { path, prefixes })
}

/// Guards: any prefix of a path being missing or `null` makes JavaScript throw.
fn path_guards(r: &Resolved, guards: &mut Vec<Cond>) {
    for prefix in &r.prefixes {
        guards.push(or(vec![
            not(present(prefix)),
            and(vec![present(prefix), test(prefix, "IsNull", Value::Bool(true))]),
        ]));
    }
}

fn truthy(ast: &Ast, resolve: &Resolver<'_>, guards: &mut Vec<Cond>) -> Option<Cond> {
    Some(match ast {
        Ast::Or(a, b) => or(vec![truthy(a, resolve, guards)?, truthy(b, resolve, guards)?]),
        Ast::And(a, b) => and(vec![truthy(a, resolve, guards)?, truthy(b, resolve, guards)?]),
        Ast::Not(a) => not(truthy(a, resolve, guards)?),
        Ast::Lit(l) => Cond::Const(match l {
            Lit::Str(s) => !s.is_empty(),
            Lit::Num(n) => *n != 0.0 && !n.is_nan(),
            Lit::Bool(b) => *b,
            Lit::Null | Lit::Undefined => false,
        }),
        Ast::Path(p) => {
            let r = resolve_path(p, resolve)?;
            path_guards(&r, guards);
            not(falsy(&r.path))
        }
        Ast::Cmp(op, a, b) => compare(*op, a, b, resolve, guards)?,
    })
}

fn flip(op: Op) -> Op {
    match op {
        Op::Lt => Op::Gt,
        Op::Le => Op::Ge,
        Op::Gt => Op::Lt,
        Op::Ge => Op::Le,
        other => other,
    }
}

fn compare(op: Op, a: &Ast, b: &Ast, resolve: &Resolver<'_>, guards: &mut Vec<Cond>) -> Option<Cond> {
    match (a, b) {
        (Ast::Lit(x), Ast::Lit(y)) => fold(op, x, y).map(Cond::Const),
        (Ast::Lit(l), Ast::Path(p)) => compare_lit(flip(op), p, l, resolve, guards),
        (Ast::Path(p), Ast::Lit(l)) => compare_lit(op, p, l, resolve, guards),
        (Ast::Path(x), Ast::Path(y)) => compare_paths(op, x, y, resolve, guards),
        _ => None,
    }
}

fn strict_eq_lit(p: &str, l: &Lit) -> Cond {
    match l {
        Lit::Str(s) => and(vec![present(p), test(p, "IsString", json!(true)), test(p, "StringEquals", json!(s))]),
        Lit::Num(n) => {
            and(vec![present(p), test(p, "IsNumeric", json!(true)), test(p, "NumericEquals", num_value(*n))])
        }
        Lit::Bool(v) => and(vec![present(p), test(p, "IsBoolean", json!(true)), test(p, "BooleanEquals", json!(v))]),
        Lit::Null => and(vec![present(p), test(p, "IsNull", json!(true))]),
        Lit::Undefined => not(present(p)),
    }
}

fn compare_lit(op: Op, p: &JsPath, l: &Lit, resolve: &Resolver<'_>, guards: &mut Vec<Cond>) -> Option<Cond> {
    let r = resolve_path(p, resolve)?;
    let path = r.path.as_str();
    let cond = match op {
        Op::StrictEq => strict_eq_lit(path, l),
        Op::StrictNe => not(strict_eq_lit(path, l)),
        Op::LooseEq | Op::LooseNe => {
            if !matches!(l, Lit::Null | Lit::Undefined) {
                return None;
            }
            let nullish = or(vec![not(present(path)), and(vec![present(path), test(path, "IsNull", json!(true))])]);
            if op == Op::LooseEq { nullish } else { not(nullish) }
        }
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let (type_test, cmp, value) = match l {
                Lit::Num(n) if n.is_finite() => ("IsNumeric", "Numeric", num_value(*n)),
                Lit::Str(s) if s.is_ascii() => ("IsString", "String", json!(s)),
                _ => return None,
            };
            let suffix = match op {
                Op::Lt => "LessThan",
                Op::Le => "LessThanEquals",
                Op::Gt => "GreaterThan",
                _ => "GreaterThanEquals",
            };
            // `index` is always a number: only a string comparison needs the type guard.
            if !(p.root == JsRoot::Index && type_test == "IsNumeric") {
                guards.push(and(vec![present(path), not(test(path, type_test, json!(true)))]));
            }
            and(vec![present(path), test(path, type_test, json!(true)), test(path, &format!("{cmp}{suffix}"), value)])
        }
    };
    path_guards(&r, guards);
    Some(cond)
}

fn compare_paths(op: Op, x: &JsPath, y: &JsPath, resolve: &Resolver<'_>, guards: &mut Vec<Cond>) -> Option<Cond> {
    let rx = resolve_path(x, resolve)?;
    let ry = resolve_path(y, resolve)?;
    let (a, b) = (rx.path.as_str(), ry.path.as_str());
    let both = |ty: &str| vec![present(a), test(a, ty, json!(true)), present(b), test(b, ty, json!(true))];
    let cond = match op {
        Op::StrictEq | Op::StrictNe => {
            // The same expression is the same value (an object is `===` itself). Two expressions
            // reaching one JSON value through different roots (`input.a`, `nodes.<start>.a`) are
            // copies to the `code` function, so objects among them are not `===`: the typed rule.
            let eq = if x == y {
                Cond::Const(true)
            } else {
                or(vec![
                    and([both("IsString"), vec![test(a, "StringEqualsPath", json!(b))]].concat()),
                    and([both("IsNumeric"), vec![test(a, "NumericEqualsPath", json!(b))]].concat()),
                    and([both("IsBoolean"), vec![test(a, "BooleanEqualsPath", json!(b))]].concat()),
                    and(both("IsNull")),
                    and(vec![not(present(a)), not(present(b))]),
                ])
            };
            if op == Op::StrictEq { eq } else { not(eq) }
        }
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let name = match op {
                Op::Lt => "NumericLessThanPath",
                Op::Le => "NumericLessThanEqualsPath",
                Op::Gt => "NumericGreaterThanPath",
                _ => "NumericGreaterThanEqualsPath",
            };
            guards.push(or(vec![
                and(vec![present(a), not(test(a, "IsNumeric", json!(true)))]),
                and(vec![present(b), not(test(b, "IsNumeric", json!(true)))]),
            ]));
            and([both("IsNumeric"), vec![test(a, name, json!(b))]].concat())
        }
        Op::LooseEq | Op::LooseNe => return None,
    };
    if x != y {
        // Choice rules compare two integers exactly; JavaScript compares their doubles, which
        // are equal for 2^53 + 1 and 2^53. Integers beyond 2^53 - 1 take the guard.
        guards.push(or(vec![unsafe_integer(a), unsafe_integer(b)]));
    }
    path_guards(&rx, guards);
    path_guards(&ry, guards);
    Some(cond)
}

/// The largest integer up to which every integer is a double (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// `p` is a number beyond ±`MAX_SAFE_INTEGER`: comparing it with another path natively could
/// differ from JavaScript. (Against a literal it cannot: the literal is already a double, and an
/// integer literal below 2^53 compares the same way exactly as rounded.)
fn unsafe_integer(p: &str) -> Cond {
    and(vec![
        present(p),
        test(p, "IsNumeric", json!(true)),
        or(vec![
            test(p, "NumericGreaterThan", json!(MAX_SAFE_INTEGER)),
            test(p, "NumericLessThan", json!(-MAX_SAFE_INTEGER)),
        ]),
    ])
}

/// JavaScript's result for a comparison of two literals, where it is simple to state.
fn fold(op: Op, x: &Lit, y: &Lit) -> Option<bool> {
    let strict = match (x, y) {
        (Lit::Str(a), Lit::Str(b)) => a == b,
        (Lit::Num(a), Lit::Num(b)) => a == b,
        (Lit::Bool(a), Lit::Bool(b)) => a == b,
        (Lit::Null, Lit::Null) | (Lit::Undefined, Lit::Undefined) => true,
        _ => false,
    };
    let same_type = std::mem::discriminant(x) == std::mem::discriminant(y);
    Some(match op {
        Op::StrictEq => strict,
        Op::StrictNe => !strict,
        Op::LooseEq | Op::LooseNe => {
            let nullish = |l: &Lit| matches!(l, Lit::Null | Lit::Undefined);
            let eq = if nullish(x) || nullish(y) {
                nullish(x) && nullish(y)
            } else if same_type {
                strict
            } else {
                return None;
            };
            if op == Op::LooseEq { eq } else { !eq }
        }
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let ord = match (x, y) {
                (Lit::Num(a), Lit::Num(b)) => a.partial_cmp(b),
                (Lit::Str(a), Lit::Str(b)) => Some(a.encode_utf16().cmp(b.encode_utf16())),
                _ => return None,
            };
            let Some(ord) = ord else { return Some(false) };
            match op {
                Op::Lt => ord.is_lt(),
                Op::Le => ord.is_le(),
                Op::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn r(root: &JsRoot) -> Option<String> {
        Some(match root {
            JsRoot::Input => "$.input".into(),
            JsRoot::Node(id) => crate::template::node_jsonpath(id),
            JsRoot::Item => "$.item".into(),
            JsRoot::Index => "$.index".into(),
        })
    }

    #[test]
    fn subset_parses_and_the_rest_falls_back() {
        assert!(parse("input.amount > 100 && !(nodes.check.ok === false) || item.x == null").is_some());
        assert!(parse(r#"nodes["fetch"].status === 200"#).is_some());
        // Any node id may be named with a string key; other keys stay identifiers.
        let l = lower(r#"nodes["node-1"].total > 5 && nodes['1'].ok === true"#, &r).unwrap();
        let rule = l.rule.into_rule().to_string();
        assert!(rule.contains(r#""$.nodes['node-1'].total""#), "{rule}");
        assert!(rule.contains(r#""$.nodes['1'].ok""#), "{rule}");
        assert!(l.guard.into_rule().to_string().contains(r#""$.nodes['node-1']""#));
        assert!(lower(r#"nodes["a b"].x === 1"#, &r).is_none());
        assert!(lower(r#"nodes.fetch["a-b"] === 1"#, &r).is_none());
        assert!(lower("nodes[id].x === 1", &r).is_none());
        for src in [
            "input.items.length > 0",
            "input.a[0] === 1",
            "input.f()",
            "input.a + 1 > 2",
            "input.a == 1",
            "x === 1",
            "0x10 === input.a",
            "input.a ? 1 : 2",
            "input.a === 1;",
            "(input.a",
            "",
        ] {
            assert!(lower(src, &r).is_none(), "{src}");
        }
    }

    #[test]
    fn strict_equality_checks_presence_and_type() {
        let l = lower("input.status === 'paid'", &r).unwrap();
        assert_eq!(
            l.rule.into_rule(),
            json!({"And": [
                {"Variable": "$.input.status", "IsPresent": true},
                {"Variable": "$.input.status", "IsString": true},
                {"Variable": "$.input.status", "StringEquals": "paid"}
            ]})
        );
        // `input` itself being null would make JavaScript throw: guarded.
        assert_eq!(
            l.guard.into_rule(),
            json!({"Or": [
                {"Not": {"Variable": "$.input", "IsPresent": true}},
                {"And": [{"Variable": "$.input", "IsPresent": true}, {"Variable": "$.input", "IsNull": true}]}
            ]})
        );
    }

    #[test]
    fn paths_compare_as_javascript_sees_them() {
        // The same expression is one value; the same JSON reached from two roots is two copies.
        assert_eq!(lower("input.a === input.a", &r).unwrap().rule, Cond::Const(true));
        assert_eq!(lower("nodes.x.a === nodes['x'].a", &r).unwrap().rule, Cond::Const(true));
        let copies = |_: &JsRoot| Some("$.input".to_owned());
        let l = lower("input.a === nodes.start.a", &copies).unwrap();
        assert_ne!(l.rule, Cond::Const(true));
        // Integers beyond 2^53 - 1 on either side go to JavaScript.
        let guard = l.guard.into_rule().to_string();
        assert!(guard.contains(r#"{"Variable":"$.input.a","NumericGreaterThan":9007199254740991}"#), "{guard}");
        assert!(guard.contains(r#"{"Variable":"$.input.a","NumericLessThan":-9007199254740991}"#), "{guard}");
        let guard = lower("input.a < input.b", &r).unwrap().guard.into_rule().to_string();
        assert!(guard.contains(r#"{"Variable":"$.input.b","NumericGreaterThan":9007199254740991}"#), "{guard}");
        // Against a literal, the literal is a double already: no such guard.
        let guard = lower("input.a < 9007199254740993", &r).unwrap().guard.into_rule().to_string();
        assert!(!guard.contains("9007199254740991"), "{guard}");
    }

    #[test]
    fn literals_fold() {
        assert_eq!(lower("1 < 2 && 'a' === 'a'", &r).unwrap().rule, Cond::Const(true));
        assert_eq!(lower("null == undefined", &r).unwrap().rule, Cond::Const(true));
        assert!(lower("1 == '1'", &r).is_none());
        assert_eq!(lower("!index", &r).unwrap().rule, not(not(falsy("$.index"))));
    }
}
