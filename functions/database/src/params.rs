//! `params`: JSON values bound as `$1, $2, ...`, never spliced into the SQL text.
//!
//! Each JSON kind has one Postgres type: string → `text`, integer → `int8`, other number →
//! `float8`, boolean → `bool`, object or array → `jsonb`, and `null` → a NULL of the type
//! Postgres infers from the statement (sent as "unspecified", OID 0). `int8` and `float8` compare
//! with every integer and numeric column (`WHERE id = $1` against `int4` works); a string bound
//! to a non-text column needs a cast in the SQL (`$1::uuid`, `$1::timestamptz`, `$1::numeric`).

use node_contract::NodeError;
use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, Postgres};
use sqlx::{Encode, Type};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Json(Value),
}

impl Param {
    pub fn from_json(value: &Value, index: usize) -> Result<Self, NodeError> {
        Ok(match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Self::Int(i),
                (None, Some(_), _) => {
                    return Err(NodeError::config(
                        &format!("params[{index}]"),
                        "is beyond the int8 range; pass it as a string and cast it ($1::numeric)",
                    ));
                }
                (None, None, Some(f)) => Self::Float(f),
                _ => return Err(NodeError::config(&format!("params[{index}]"), "is not a representable number")),
            },
            Value::String(s) => Self::Text(s.clone()),
            Value::Array(_) | Value::Object(_) => Self::Json(value.clone()),
        })
    }

    /// The type the parameter is declared with when the statement is prepared.
    pub fn type_info(&self) -> PgTypeInfo {
        match self {
            Self::Null => PgTypeInfo::with_oid(Oid(0)),
            Self::Bool(_) => <bool as Type<Postgres>>::type_info(),
            Self::Int(_) => <i64 as Type<Postgres>>::type_info(),
            Self::Float(_) => <f64 as Type<Postgres>>::type_info(),
            Self::Text(_) => <String as Type<Postgres>>::type_info(),
            Self::Json(_) => <sqlx::types::Json<Value> as Type<Postgres>>::type_info(),
        }
    }

    /// A short name of [`Self::type_info`], for the prepared-statement signature.
    pub fn signature(&self) -> &'static str {
        match self {
            Self::Null => "unknown",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int8",
            Self::Float(_) => "float8",
            Self::Text(_) => "text",
            Self::Json(_) => "jsonb",
        }
    }
}

impl Type<Postgres> for Param {
    fn type_info() -> PgTypeInfo {
        <String as Type<Postgres>>::type_info()
    }

    fn compatible(_: &PgTypeInfo) -> bool {
        true
    }
}

impl Encode<'_, Postgres> for Param {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Bool(b) => <bool as Encode<Postgres>>::encode_by_ref(b, buf),
            Self::Int(i) => <i64 as Encode<Postgres>>::encode_by_ref(i, buf),
            Self::Float(f) => <f64 as Encode<Postgres>>::encode_by_ref(f, buf),
            Self::Text(s) => <&str as Encode<Postgres>>::encode_by_ref(&s.as_str(), buf),
            Self::Json(v) => <sqlx::types::Json<&Value> as Encode<Postgres>>::encode_by_ref(&sqlx::types::Json(v), buf),
        }
    }

    fn produces(&self) -> Option<PgTypeInfo> {
        Some(self.type_info())
    }

    fn size_hint(&self) -> usize {
        match self {
            Self::Text(s) => s.len(),
            Self::Json(_) => 64,
            _ => 8,
        }
    }
}

/// The SQL text actually prepared: the statement plus a comment naming the parameter types.
///
/// sqlx caches prepared statements per connection by SQL text alone, and binds in the binary
/// format of the types the statement was *first* prepared with. Without the signature, the same
/// SQL run once with `[5]` and then with `["5"]` would send text bytes where Postgres expects an
/// int8. A trailing line comment changes nothing for Postgres (an unterminated literal or
/// comment in the statement stays unterminated).
pub(crate) fn signed_sql(sql: &str, params: &[Param]) -> String {
    if params.is_empty() {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16 + params.len() * 6);
    out.push_str(sql);
    out.push_str("\n-- weft params:");
    for p in params {
        out.push(' ');
        out.push_str(p.signature());
    }
    out
}
