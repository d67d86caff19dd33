//! JSONPath as AWS Step Functions evaluates it (Jayway semantics).
//!
//! A path is parsed once into [`JsonPath`] and evaluated many times. A path is *definite* when it
//! can only name one node (names and single indexes); such a path selects a value or nothing, and
//! the engine reports a missing value as `States.Runtime`. Any other path (wildcards, `..`,
//! unions, slices, filters) is *indefinite*: it always yields an array of the matches, possibly
//! empty, as Jayway does.
//!
//! The root is `$` (the state's input), `$$` (the context object) or `$name` (an `Assign`
//! variable); the engine picks the document for the root, this module only walks it.

use std::fmt;

use serde_json::{Map, Value};

/// A parsed JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    src: String,
    root: Root,
    segs: Vec<Seg>,
    definite: bool,
}

/// What the path starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$`: the input (or whatever document the caller evaluates against).
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a variable set by `Assign`.
    Var(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Child(String),
    Index(i64),
    Wildcard,
    /// `..` followed by a selector: applies the selector to every node of the subtree.
    Descend(Box<Seg>),
    Names(Vec<String>),
    Indexes(Vec<i64>),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Filter(Box<Filter>),
    /// Jayway's `length()` function.
    Length,
}

/// A syntax error in a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath '{path}': {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: String,
}

/// A reference path could not be written: an intermediate node is neither an object nor an
/// array, or an index is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the path cannot be applied to this document")]
pub struct SetError;

/// The result of evaluating a path against a document.
#[derive(Debug)]
pub enum Selected<'a> {
    /// A definite path that matched.
    One(&'a Value),
    /// A definite path that matched nothing.
    Missing,
    /// An indefinite path: all matches in document order.
    Many(Vec<&'a Value>),
    /// A computed value (`length()`).
    Computed(Value),
}

impl Selected<'_> {
    /// The selected value as Jayway returns it: indefinite paths become arrays.
    pub fn into_value(self) -> Option<Value> {
        match self {
            Selected::One(v) => Some(v.clone()),
            Selected::Missing => None,
            Selected::Many(vs) => Some(Value::Array(vs.into_iter().cloned().collect())),
            Selected::Computed(v) => Some(v),
        }
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.src)
    }
}

impl JsonPath {
    /// Parses a path such as `$.a.b[0]`, `$$.Execution.Id`, `$var.x` or `$..items[?(@.n > 1)]`.
    pub fn parse(src: &str) -> Result<JsonPath, PathError> {
        let err = |reason: &str| PathError { path: src.to_owned(), reason: reason.to_owned() };
        let trimmed = src.trim();
        let mut p = Parser { s: trimmed.as_bytes(), i: 0, src, depth: 0 };
        if !p.eat(b'$') {
            return Err(err("a path must start with '$'"));
        }
        let root = if p.eat(b'$') {
            Root::Context
        } else if p.peek().is_some_and(is_ident_start) {
            let start = p.i;
            while p.peek().is_some_and(is_ident_char) {
                p.i += 1;
            }
            Root::Var(trimmed[start..p.i].to_owned())
        } else {
            Root::Input
        };
        let segs = p.segments()?;
        let definite = segs.iter().all(|s| matches!(s, Seg::Child(_) | Seg::Index(_) | Seg::Length));
        Ok(JsonPath { src: src.to_owned(), root, segs, definite })
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        &self.src
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// True when the path names at most one node.
    pub fn is_definite(&self) -> bool {
        self.definite
    }

    /// True for a bare root (`$`, `$$` or `$var`).
    pub fn is_root(&self) -> bool {
        self.segs.is_empty()
    }

    /// True when the path only uses names and indexes, as `ResultPath` requires.
    pub fn is_reference_path(&self) -> bool {
        self.segs.iter().all(|s| matches!(s, Seg::Child(_) | Seg::Index(_)))
    }

    /// Evaluates the path against `doc` (the document its root stands for).
    pub fn select<'a>(&self, doc: &'a Value) -> Selected<'a> {
        if self.definite {
            let mut cur = doc;
            for seg in &self.segs {
                match seg {
                    Seg::Child(name) => match cur {
                        Value::Object(m) => match m.get(name) {
                            Some(v) => cur = v,
                            None => return Selected::Missing,
                        },
                        _ => return Selected::Missing,
                    },
                    Seg::Index(i) => match cur {
                        Value::Array(a) => match resolve_index(*i, a.len()) {
                            Some(ix) => cur = &a[ix],
                            None => return Selected::Missing,
                        },
                        _ => return Selected::Missing,
                    },
                    Seg::Length => {
                        return match cur {
                            Value::Array(a) => Selected::Computed(Value::from(a.len())),
                            Value::Object(m) => Selected::Computed(Value::from(m.len())),
                            Value::String(s) => Selected::Computed(Value::from(s.chars().count())),
                            _ => Selected::Missing,
                        };
                    }
                    _ => return Selected::Missing,
                }
            }
            return Selected::One(cur);
        }
        let mut cur: Vec<&'a Value> = vec![doc];
        for seg in &self.segs {
            if let Seg::Length = seg {
                // Jayway applies length() to the collected result array.
                return Selected::Computed(Value::from(cur.len()));
            }
            let mut next = Vec::with_capacity(cur.len());
            for v in cur {
                apply(seg, v, doc, &mut next);
            }
            cur = next;
        }
        Selected::Many(cur)
    }

    /// Takes the selected value out of an owned document, avoiding a copy. Only for definite
    /// paths; `None` when nothing matches.
    pub fn take(&self, mut doc: Value) -> Option<Value> {
        if !self.definite || self.segs.iter().any(|s| matches!(s, Seg::Length)) {
            return self.select(&doc).into_value();
        }
        let mut cur = &mut doc;
        for seg in &self.segs {
            cur = match (seg, cur) {
                (Seg::Child(name), Value::Object(m)) => m.get_mut(name)?,
                (Seg::Index(i), Value::Array(a)) => {
                    let ix = resolve_index(*i, a.len())?;
                    &mut a[ix]
                }
                _ => return None,
            };
        }
        Some(std::mem::take(cur))
    }

    /// Writes `value` at this reference path inside `doc`, creating objects on the way, as
    /// `ResultPath` does. Fails when an intermediate node exists but is not an object (or an
    /// array for an index).
    pub fn set(&self, doc: &mut Value, value: Value) -> Result<(), SetError> {
        if self.segs.is_empty() {
            *doc = value;
            return Ok(());
        }
        let mut cur = doc;
        let last = self.segs.len() - 1;
        for (n, seg) in self.segs.iter().enumerate() {
            match seg {
                Seg::Child(name) => {
                    let Value::Object(m) = cur else { return Err(SetError) };
                    if n == last {
                        m.insert(name.clone(), value);
                        return Ok(());
                    }
                    let entry = m.entry(name.clone()).or_insert_with(|| Value::Object(Map::new()));
                    if !entry.is_object() && !entry.is_array() {
                        *entry = Value::Object(Map::new());
                    }
                    cur = entry;
                }
                Seg::Index(i) => {
                    let Value::Array(a) = cur else { return Err(SetError) };
                    let Some(ix) = resolve_index(*i, a.len()) else { return Err(SetError) };
                    if n == last {
                        a[ix] = value;
                        return Ok(());
                    }
                    cur = &mut a[ix];
                }
                _ => return Err(SetError),
            }
        }
        Ok(())
    }
}

fn resolve_index(i: i64, len: usize) -> Option<usize> {
    if i >= 0 {
        let ix = usize::try_from(i).ok()?;
        (ix < len).then_some(ix)
    } else {
        let back = usize::try_from(-i).ok()?;
        len.checked_sub(back)
    }
}

fn apply<'a>(seg: &Seg, v: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    match seg {
        Seg::Child(name) => {
            if let Value::Object(m) = v
                && let Some(x) = m.get(name)
            {
                out.push(x);
            }
        }
        Seg::Index(i) => {
            if let Value::Array(a) = v
                && let Some(ix) = resolve_index(*i, a.len())
            {
                out.push(&a[ix]);
            }
        }
        Seg::Wildcard => match v {
            Value::Object(m) => out.extend(m.values()),
            Value::Array(a) => out.extend(a.iter()),
            _ => {}
        },
        Seg::Names(names) => {
            if let Value::Object(m) = v {
                for n in names {
                    if let Some(x) = m.get(n) {
                        out.push(x);
                    }
                }
            }
        }
        Seg::Indexes(ixs) => {
            if let Value::Array(a) = v {
                for i in ixs {
                    if let Some(ix) = resolve_index(*i, a.len()) {
                        out.push(&a[ix]);
                    }
                }
            }
        }
        Seg::Slice(start, end, step) => {
            if let Value::Array(a) = v {
                let len = a.len() as i64;
                let step = step.unwrap_or(1);
                if step <= 0 {
                    return;
                }
                let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                let s = start.map_or(0, norm);
                let e = end.map_or(len, norm);
                let mut i = s;
                while i < e {
                    if let Ok(ix) = usize::try_from(i) {
                        out.push(&a[ix]);
                    }
                    i += step;
                }
            }
        }
        Seg::Filter(f) => match v {
            Value::Array(a) => {
                for x in a {
                    if f.test(x, root) {
                        out.push(x);
                    }
                }
            }
            Value::Object(m) => {
                // Jayway applies a filter on an object to its values when they are objects.
                if f.test(v, root) {
                    out.push(v);
                } else {
                    let _ = m;
                }
            }
            _ => {}
        },
        Seg::Descend(inner) => descend(inner, v, root, out),
        Seg::Length => {}
    }
}

fn descend<'a>(inner: &Seg, v: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    apply(inner, v, root, out);
    match v {
        Value::Object(m) => {
            for x in m.values() {
                descend(inner, x, root, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                descend(inner, x, root, out);
            }
        }
        _ => {}
    }
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// How deeply filters may nest (parentheses, `!`, filter sub-paths, literal lists), and how many
/// `&&`/`||` terms one filter may chain: the parser and the evaluator recurse on both, and paths
/// come from definitions of up to 1 MiB (`engine/tests/bounds.rs` runs them on 2 MiB stacks).
const MAX_FILTER_NESTING: usize = 64;
const MAX_FILTER_TERMS: usize = 256;

struct Parser<'s> {
    s: &'s [u8],
    i: usize,
    src: &'s str,
    /// Filter nesting open at this point.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b == b' ' || b == b'\t') {
            self.i += 1;
        }
    }

    fn err<T>(&self, reason: impl Into<String>) -> Result<T, PathError> {
        Err(PathError { path: self.src.to_owned(), reason: reason.into() })
    }

    fn text(&self, a: usize, b: usize) -> String {
        String::from_utf8_lossy(&self.s[a..b]).into_owned()
    }

    fn segments(&mut self) -> Result<Vec<Seg>, PathError> {
        let mut segs = Vec::new();
        while let Some(b) = self.peek() {
            match b {
                b'.' => {
                    self.i += 1;
                    if self.eat(b'.') {
                        let inner = match self.peek() {
                            Some(b'[') => self.bracket()?,
                            Some(b'*') => {
                                self.i += 1;
                                Seg::Wildcard
                            }
                            _ => Seg::Child(self.dot_name()?),
                        };
                        segs.push(Seg::Descend(Box::new(inner)));
                    } else if self.eat(b'*') {
                        segs.push(Seg::Wildcard);
                    } else if self.peek() == Some(b'[') {
                        // `$.['a']` is accepted by Jayway as `$['a']`.
                        segs.push(self.bracket()?);
                    } else {
                        let name = self.dot_name()?;
                        if self.s[self.i..].starts_with(b"()") {
                            self.i += 2;
                            match name.as_str() {
                                "length" | "size" => segs.push(Seg::Length),
                                _ => return self.err(format!("unsupported function {name}()")),
                            }
                        } else {
                            segs.push(Seg::Child(name));
                        }
                    }
                }
                b'[' => segs.push(self.bracket()?),
                _ => return self.err(format!("unexpected character '{}'", b as char)),
            }
        }
        Ok(segs)
    }

    fn dot_name(&mut self) -> Result<String, PathError> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if b == b'.' || b == b'[' || (b == b'(' && self.s[self.i..].starts_with(b"()")) {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return self.err("empty property name");
        }
        let name = self.text(start, self.i);
        if name.trim().is_empty() || name.contains(['(', ')', ']', '\'', '"']) {
            return self.err(format!("invalid property name '{name}'"));
        }
        Ok(name)
    }

    fn quoted(&mut self) -> Result<String, PathError> {
        let Some(q) = self.peek() else { return self.err("unterminated string") };
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return self.err("unterminated string"),
                Some(b'\\') => {
                    self.i += 1;
                    if let Some(c) = self.peek() {
                        out.push(c);
                        self.i += 1;
                    }
                }
                Some(c) if c == q => {
                    self.i += 1;
                    break;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn int(&mut self) -> Result<Option<i64>, PathError> {
        self.skip_ws();
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i == start {
            return Ok(None);
        }
        let t = self.text(start, self.i);
        match t.parse::<i64>() {
            Ok(n) => {
                self.skip_ws();
                Ok(Some(n))
            }
            Err(_) => self.err(format!("invalid index '{t}'")),
        }
    }

    fn bracket(&mut self) -> Result<Seg, PathError> {
        self.i += 1; // '['
        self.skip_ws();
        let seg = match self.peek() {
            Some(b'*') => {
                self.i += 1;
                self.skip_ws();
                Seg::Wildcard
            }
            Some(b'\'') | Some(b'"') => {
                let mut names = vec![self.quoted()?];
                self.skip_ws();
                while self.eat(b',') {
                    self.skip_ws();
                    names.push(self.quoted()?);
                    self.skip_ws();
                }
                if names.len() == 1 { Seg::Child(names.pop().unwrap_or_default()) } else { Seg::Names(names) }
            }
            Some(b'?') => {
                self.i += 1;
                self.skip_ws();
                if !self.eat(b'(') {
                    return self.err("expected '(' after '?'");
                }
                let f = self.filter_or()?;
                self.skip_ws();
                if !self.eat(b')') {
                    return self.err("expected ')' to close the filter");
                }
                self.skip_ws();
                Seg::Filter(Box::new(f))
            }
            _ => {
                let first = self.int()?;
                if self.peek() == Some(b':') {
                    self.i += 1;
                    let end = self.int()?;
                    let step = if self.eat(b':') { self.int()? } else { None };
                    Seg::Slice(first, end, step)
                } else {
                    let Some(first) = first else { return self.err("expected an index, a name or '*'") };
                    let mut ixs = vec![first];
                    while self.eat(b',') {
                        match self.int()? {
                            Some(n) => ixs.push(n),
                            None => return self.err("expected an index after ','"),
                        }
                    }
                    if ixs.len() == 1 { Seg::Index(first) } else { Seg::Indexes(ixs) }
                }
            }
        };
        if !self.eat(b']') {
            return self.err("expected ']'");
        }
        Ok(seg)
    }

    fn filter_or(&mut self) -> Result<Filter, PathError> {
        let mut terms = 0;
        let mut left = self.filter_and(&mut terms)?;
        loop {
            self.skip_ws();
            if self.s[self.i..].starts_with(b"||") {
                self.i += 2;
                let right = self.filter_and(&mut terms)?;
                left = Filter::Or(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    /// `terms` counts the `&&`/`||` operands of the enclosing filter (they nest as deep as they
    /// chain).
    fn filter_and(&mut self, terms: &mut usize) -> Result<Filter, PathError> {
        *terms += 1;
        if *terms > MAX_FILTER_TERMS {
            return self.err(format!("a filter has more than {MAX_FILTER_TERMS} terms"));
        }
        let mut left = self.filter_atom()?;
        loop {
            self.skip_ws();
            if self.s[self.i..].starts_with(b"&&") {
                self.i += 2;
                *terms += 1;
                if *terms > MAX_FILTER_TERMS {
                    return self.err(format!("a filter has more than {MAX_FILTER_TERMS} terms"));
                }
                let right = self.filter_atom()?;
                left = Filter::And(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn filter_atom(&mut self) -> Result<Filter, PathError> {
        self.skip_ws();
        if matches!(self.peek(), Some(b'!' | b'(')) {
            self.depth += 1;
            if self.depth > MAX_FILTER_NESTING {
                return self.err(format!("filters nest more than {MAX_FILTER_NESTING} deep"));
            }
            let f = self.filter_group();
            self.depth -= 1;
            return f;
        }
        self.filter_cmp()
    }

    fn filter_group(&mut self) -> Result<Filter, PathError> {
        if self.eat(b'!') {
            return Ok(Filter::Not(Box::new(self.filter_atom()?)));
        }
        self.i += 1;
        let f = self.filter_or()?;
        self.skip_ws();
        if !self.eat(b')') {
            return self.err("expected ')'");
        }
        Ok(f)
    }

    fn filter_cmp(&mut self) -> Result<Filter, PathError> {
        let left = self.operand()?;
        self.skip_ws();
        let ops: [(&[u8], CmpOp); 9] = [
            (b"==", CmpOp::Eq),
            (b"!=", CmpOp::Ne),
            (b"<=", CmpOp::Le),
            (b">=", CmpOp::Ge),
            (b"=~", CmpOp::Regex),
            (b"<", CmpOp::Lt),
            (b">", CmpOp::Gt),
            (b" in ", CmpOp::In),
            (b"nin", CmpOp::Nin),
        ];
        let rest = &self.s[self.i..];
        for (tok, op) in ops {
            let tok_trim: &[u8] = if tok == b" in " { b"in " } else { tok };
            if rest.starts_with(tok_trim) {
                self.i += tok_trim.len();
                let right = self.operand()?;
                return Ok(Filter::Cmp(left, op, right));
            }
        }
        Ok(Filter::Exists(left))
    }

    fn operand(&mut self) -> Result<Operand, PathError> {
        self.skip_ws();
        match self.peek() {
            Some(b'@') | Some(b'$') => {
                let relative = self.peek() == Some(b'@');
                self.i += 1;
                let start = self.i;
                // The sub-path ends at whitespace, an operator or the closing parenthesis.
                let mut depth = 0i32;
                while let Some(b) = self.peek() {
                    match b {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b' ' | b')' | b'=' | b'!' | b'<' | b'>' | b'&' | b'|' | b',' if depth == 0 => break,
                        _ => {}
                    }
                    self.i += 1;
                }
                let sub = self.text(start, self.i);
                let mut p = Parser { s: sub.as_bytes(), i: 0, src: self.src, depth: self.depth + 1 };
                if p.depth > MAX_FILTER_NESTING {
                    return self.err(format!("filters nest more than {MAX_FILTER_NESTING} deep"));
                }
                let segs = p.segments()?;
                Ok(if relative { Operand::Current(segs) } else { Operand::Root(segs) })
            }
            Some(b'\'') | Some(b'"') => Ok(Operand::Lit(Value::String(self.quoted()?))),
            Some(b'[') => {
                self.i += 1;
                self.depth += 1;
                if self.depth > MAX_FILTER_NESTING {
                    return self.err(format!("filters nest more than {MAX_FILTER_NESTING} deep"));
                }
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.eat(b']') {
                        break;
                    }
                    match self.operand()? {
                        Operand::Lit(v) => items.push(v),
                        _ => return self.err("only literals are allowed in a filter list"),
                    }
                    self.skip_ws();
                    self.eat(b',');
                }
                self.depth -= 1;
                Ok(Operand::Lit(Value::Array(items)))
            }
            Some(b'/') => {
                self.i += 1;
                let start = self.i;
                while self.peek().is_some_and(|b| b != b'/') {
                    self.i += 1;
                }
                let re = self.text(start, self.i);
                self.i += 1;
                while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                    self.i += 1;
                }
                Ok(Operand::Lit(Value::String(re)))
            }
            _ => {
                let start = self.i;
                while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'+') {
                    self.i += 1;
                }
                let t = self.text(start, self.i);
                match serde_json::from_str::<Value>(&t) {
                    Ok(v) if !t.is_empty() => Ok(Operand::Lit(v)),
                    _ => self.err(format!("invalid filter operand '{t}'")),
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Exists(Operand),
    Cmp(Operand, CmpOp, Operand),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Regex,
    In,
    Nin,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Current(Vec<Seg>),
    Root(Vec<Seg>),
    Lit(Value),
}

impl Operand {
    fn eval<'a>(&'a self, cur: &'a Value, root: &'a Value) -> Option<std::borrow::Cow<'a, Value>> {
        let (segs, start) = match self {
            Operand::Lit(v) => return Some(std::borrow::Cow::Borrowed(v)),
            Operand::Current(s) => (s, cur),
            Operand::Root(s) => (s, root),
        };
        let definite = segs.iter().all(|s| matches!(s, Seg::Child(_) | Seg::Index(_) | Seg::Length));
        let p = JsonPath { src: String::new(), root: Root::Input, segs: segs.clone(), definite };
        match p.select(start) {
            Selected::One(v) => Some(std::borrow::Cow::Owned(v.clone())),
            Selected::Missing => None,
            Selected::Many(vs) => Some(std::borrow::Cow::Owned(Value::Array(vs.into_iter().cloned().collect()))),
            Selected::Computed(v) => Some(std::borrow::Cow::Owned(v)),
        }
    }
}

impl Filter {
    fn test(&self, cur: &Value, root: &Value) -> bool {
        match self {
            Filter::Or(a, b) => a.test(cur, root) || b.test(cur, root),
            Filter::And(a, b) => a.test(cur, root) && b.test(cur, root),
            Filter::Not(a) => !a.test(cur, root),
            Filter::Exists(o) => match o.eval(cur, root) {
                Some(v) => !matches!(v.as_ref(), Value::Bool(false)),
                None => false,
            },
            Filter::Cmp(l, op, r) => {
                let (Some(a), Some(b)) = (l.eval(cur, root), r.eval(cur, root)) else {
                    return matches!(op, CmpOp::Ne | CmpOp::Nin);
                };
                compare(a.as_ref(), *op, b.as_ref())
            }
        }
    }
}

fn compare(a: &Value, op: CmpOp, b: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().zip(y.as_f64()).and_then(|(x, y)| x.partial_cmp(&y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match op {
        CmpOp::Eq => ord == Some(Ordering::Equal) || (ord.is_none() && a == b),
        CmpOp::Ne => !(ord == Some(Ordering::Equal) || (ord.is_none() && a == b)),
        CmpOp::Lt => ord == Some(Ordering::Less),
        CmpOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => ord == Some(Ordering::Greater),
        CmpOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
        CmpOp::Regex => match (a, b) {
            (Value::String(s), Value::String(pat)) => simple_regex(pat, s),
            _ => false,
        },
        CmpOp::In => b.as_array().is_some_and(|arr| arr.iter().any(|x| compare(a, CmpOp::Eq, x))),
        CmpOp::Nin => !b.as_array().is_some_and(|arr| arr.iter().any(|x| compare(a, CmpOp::Eq, x))),
    }
}

/// A deliberately small regex subset for `=~` filters: `.`, `.*`, `^`, `$` and literals (and `c*`
/// for any literal `c`). Full regexes would need a dependency for a feature Step Functions users
/// almost never rely on. Matched by simulating the pattern's automaton over the string: time
/// `pattern × string`, no recursion and no backtracking.
fn simple_regex(pat: &str, s: &str) -> bool {
    // (character, `None` for `.`; repeated with `*`)
    let mut toks: Vec<(Option<char>, bool)> = Vec::new();
    let p: Vec<char> = pat.trim_start_matches('^').trim_end_matches('$').chars().collect();
    let mut i = 0;
    while i < p.len() {
        let c = if p[i] == '.' { None } else { Some(p[i]) };
        let star = p.get(i + 1) == Some(&'*');
        toks.push((c, star));
        i += if star { 2 } else { 1 };
    }
    // The positions in `toks` reachable so far (each once: `seen` holds the step that added
    // it); a starred token may be skipped.
    let mut seen = vec![usize::MAX; toks.len() + 1];
    let add = |set: &mut Vec<usize>, seen: &mut Vec<usize>, mut k: usize, step: usize| loop {
        if seen[k] == step {
            return;
        }
        seen[k] = step;
        set.push(k);
        if k < toks.len() && toks[k].1 {
            k += 1;
        } else {
            return;
        }
    };
    let mut cur = Vec::new();
    add(&mut cur, &mut seen, 0, 0);
    for (step, ch) in s.chars().enumerate() {
        let mut next = Vec::new();
        for &k in &cur {
            if let Some(&(c, star)) = toks.get(k)
                && c.is_none_or(|c| c == ch)
            {
                add(&mut next, &mut seen, if star { k } else { k + 1 }, step + 1);
            }
        }
        if next.is_empty() {
            return false;
        }
        cur = next;
    }
    cur.contains(&toks.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sel(path: &str, doc: &Value) -> Option<Value> {
        JsonPath::parse(path).expect("valid path").select(doc).into_value()
    }

    #[test]
    fn definite_paths_select_one_value_or_nothing() {
        let doc = json!({"a": {"b": [1, 2, {"c": "x"}]}, "k y": 3});
        assert_eq!(sel("$", &doc), Some(doc.clone()));
        assert_eq!(sel("$.a.b[2].c", &doc), Some(json!("x")));
        assert_eq!(sel("$.a.b[-1].c", &doc), Some(json!("x")));
        assert_eq!(sel("$['k y']", &doc), Some(json!(3)));
        assert_eq!(sel("$.a.missing", &doc), None);
        assert_eq!(sel("$.a.b[9]", &doc), None);
        assert_eq!(sel("$.a.b.length()", &doc), Some(json!(3)));
    }

    #[test]
    fn indefinite_paths_always_yield_arrays() {
        let doc = json!({"items": [{"n": 1}, {"n": 2}, {"m": 3}]});
        assert_eq!(sel("$.items[*].n", &doc), Some(json!([1, 2])));
        assert_eq!(sel("$..n", &doc), Some(json!([1, 2])));
        assert_eq!(sel("$.items[?(@.n > 1)]", &doc), Some(json!([{"n": 2}])));
        assert_eq!(sel("$.items[?(@.m)]", &doc), Some(json!([{"m": 3}])));
        assert_eq!(sel("$.items[0:2].n", &doc), Some(json!([1, 2])));
        assert_eq!(sel("$.items[0,2]", &doc), Some(json!([{"n": 1}, {"m": 3}])));
        assert_eq!(sel("$.nothing[*]", &doc), Some(json!([])));
    }

    #[test]
    fn roots_are_recognised() {
        assert_eq!(JsonPath::parse("$$.Execution.Id").expect("ok").root(), &Root::Context);
        assert_eq!(JsonPath::parse("$x.y").expect("ok").root(), &Root::Var("x".into()));
        assert!(JsonPath::parse("a.b").is_err());
        assert!(JsonPath::parse("$.a[").is_err());
    }

    #[test]
    fn set_creates_objects_and_rejects_scalars() {
        let mut doc = json!({"a": 1});
        JsonPath::parse("$.b.c").expect("ok").set(&mut doc, json!(2)).expect("set");
        assert_eq!(doc, json!({"a": 1, "b": {"c": 2}}));
        let mut s = json!("str");
        assert!(JsonPath::parse("$.x").expect("ok").set(&mut s, json!(1)).is_err());
    }
}
