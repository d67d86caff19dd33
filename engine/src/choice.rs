//! Choice rule evaluation (JSONPath comparison operators and JSONata `Condition`).

use std::cmp::Ordering;

use asl_expr::ExprError;
use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::definition::{Cond, Op, Rhs};
use crate::template::{Env, to_json_text};

/// Parses a timestamp the way Step Functions accepts them (RFC 3339 with an upper-case `T`).
pub(crate) fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    if !s.contains('T') {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

/// Evaluates a rule. Errors are AWS's (`States.Runtime` for a missing variable,
/// `States.QueryEvaluationError` for a non-boolean JSONata condition).
pub(crate) fn eval(c: &Cond, env: &Env<'_>) -> Result<bool, ExprError> {
    match c {
        Cond::And(rs) => {
            for r in rs {
                if !eval(r, env)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Cond::Or(rs) => {
            for r in rs {
                if eval(r, env)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Cond::Not(r) => Ok(!eval(r, env)?),
        Cond::Jsonata(t) => {
            let v = t.eval(env)?;
            match v {
                Value::Bool(b) => Ok(b),
                other => Err(ExprError::query(format!(
                    "The JSONata expression specified for the field 'Condition' returned an unexpected data type. Expected: boolean, but got: {}",
                    to_json_text(&other)
                ))),
            }
        }
        Cond::Cmp { var, op, rhs } => {
            let val = env.resolve(var);
            if *op == Op::IsPresent {
                let want = matches!(rhs, Rhs::Lit(Value::Bool(true)));
                return Ok(val.is_some() == want);
            }
            let Some(val) = val else {
                return Err(ExprError::runtime(format!(
                    "Invalid path '{var}': The choice state's condition path references an invalid value."
                )));
            };
            let val = val.as_ref();
            let rv;
            let r: &Value = match rhs {
                Rhs::Lit(v) => v,
                Rhs::Path(p) => {
                    rv = env.resolve(p).ok_or_else(|| {
                        ExprError::runtime(format!(
                            "Invalid path '{p}': The choice state's condition path references an invalid value."
                        ))
                    })?;
                    rv.as_ref()
                }
            };
            Ok(compare(*op, val, r))
        }
    }
}

fn num_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    let (Value::Number(x), Value::Number(y)) = (a, b) else { return None };
    if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
        return Some(x.cmp(&y));
    }
    x.as_f64()?.partial_cmp(&y.as_f64()?)
}

fn str_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    let (Value::String(x), Value::String(y)) = (a, b) else { return None };
    // Java compares UTF-16 code units; that differs from code point order only for characters
    // outside the BMP against U+E000..U+FFFF, so compare UTF-16 directly.
    Some(x.encode_utf16().cmp(y.encode_utf16()))
}

fn ts_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    let x = parse_timestamp(a.as_str()?)?;
    let y = parse_timestamp(b.as_str()?)?;
    Some(x.cmp(&y))
}

fn compare(op: Op, v: &Value, r: &Value) -> bool {
    use Ordering::*;
    let flag = r.as_bool().unwrap_or(false);
    match op {
        Op::StringEquals => str_cmp(v, r) == Some(Equal),
        Op::StringLessThan => str_cmp(v, r) == Some(Less),
        Op::StringGreaterThan => str_cmp(v, r) == Some(Greater),
        Op::StringLessThanEquals => matches!(str_cmp(v, r), Some(Less | Equal)),
        Op::StringGreaterThanEquals => matches!(str_cmp(v, r), Some(Greater | Equal)),
        Op::StringMatches => match (v, r) {
            (Value::String(s), Value::String(p)) => string_matches(s, p),
            _ => false,
        },
        Op::NumericEquals => num_cmp(v, r) == Some(Equal),
        Op::NumericLessThan => num_cmp(v, r) == Some(Less),
        Op::NumericGreaterThan => num_cmp(v, r) == Some(Greater),
        Op::NumericLessThanEquals => matches!(num_cmp(v, r), Some(Less | Equal)),
        Op::NumericGreaterThanEquals => matches!(num_cmp(v, r), Some(Greater | Equal)),
        Op::BooleanEquals => matches!((v, r), (Value::Bool(a), Value::Bool(b)) if a == b),
        Op::TimestampEquals => ts_cmp(v, r) == Some(Equal),
        Op::TimestampLessThan => ts_cmp(v, r) == Some(Less),
        Op::TimestampGreaterThan => ts_cmp(v, r) == Some(Greater),
        Op::TimestampLessThanEquals => matches!(ts_cmp(v, r), Some(Less | Equal)),
        Op::TimestampGreaterThanEquals => matches!(ts_cmp(v, r), Some(Greater | Equal)),
        Op::IsNull => v.is_null() == flag,
        Op::IsNumeric => v.is_number() == flag,
        Op::IsString => v.is_string() == flag,
        Op::IsBoolean => v.is_boolean() == flag,
        Op::IsTimestamp => v.as_str().is_some_and(|s| parse_timestamp(s).is_some()) == flag,
        Op::IsPresent => flag,
    }
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are literal.
pub(crate) fn string_matches(s: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Star,
        Ch(char),
    }
    let mut toks = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some(n) => toks.push(Tok::Ch(n)),
                None => toks.push(Tok::Ch('\\')),
            },
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Ch(c)),
        }
    }
    let s: Vec<char> = s.chars().collect();
    // Iterative wildcard matching with backtracking to the last star.
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if j < toks.len() && toks[j] == Tok::Ch(s[i]) {
            i += 1;
            j += 1;
        } else if j < toks.len() && toks[j] == Tok::Star {
            star = Some((j, i));
            j += 1;
        } else if let Some((sj, si)) = star {
            j = sj + 1;
            i = si + 1;
            star = Some((sj, si + 1));
        } else {
            return false;
        }
    }
    while j < toks.len() && toks[j] == Tok::Star {
        j += 1;
    }
    j == toks.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_matches_handles_wildcards_and_escapes() {
        assert!(string_matches("log-2024.txt", "log-*.txt"));
        assert!(string_matches("a*b", "a\\*b"));
        assert!(!string_matches("axb", "a\\*b"));
        assert!(string_matches("", "*"));
        assert!(!string_matches("abc", "ab"));
    }

    #[test]
    fn timestamps_need_rfc3339() {
        assert!(parse_timestamp("2024-01-01T00:00:00Z").is_some());
        assert!(parse_timestamp("2024-01-01 00:00:00Z").is_none());
    }
}
