//! Intrinsic functions (`States.Format(...)` and friends).

use serde_json::Value;

use crate::ExprError;

/// A parsed intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub struct Intrinsic {
    pub name: String,
    pub args: Vec<Arg>,
}

/// One argument of an intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Literal(Value),
    /// A path such as `$.a`, `$$.Execution.Id` or `$var.x`, resolved by the engine.
    Path(String),
    Call(Box<Intrinsic>),
}

/// Parses an intrinsic call; an error means the string is not a valid intrinsic call.
pub fn parse(expr: &str) -> Result<Intrinsic, ExprError> {
    Err(ExprError::runtime(format!("not implemented yet: {expr}")))
}

/// Parses and evaluates in one go.
pub fn eval(
    expr: &str,
    resolve: &dyn Fn(&str) -> Result<Value, ExprError>,
) -> Result<Value, ExprError> {
    parse(expr)?.eval(resolve)
}

impl Intrinsic {
    /// Evaluates the call; `resolve` turns a path argument into its value.
    pub fn eval(
        &self,
        _resolve: &dyn Fn(&str) -> Result<Value, ExprError>,
    ) -> Result<Value, ExprError> {
        Err(ExprError::runtime("not implemented yet"))
    }
}
