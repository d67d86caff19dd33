//! JSONata for states with `QueryLanguage: "JSONata"`.

use serde_json::Value;

use crate::ExprError;

/// A compiled JSONata expression (the inside of `{% ... %}`).
#[derive(Debug, Clone)]
pub struct Jsonata {
    source: String,
}

/// Compiles an expression; the error is AWS's validation error for it.
pub fn compile(expr: &str) -> Result<Jsonata, ExprError> {
    Ok(Jsonata { source: expr.to_owned() })
}

impl Jsonata {
    /// Evaluates with `$states` bound to `states` (`{input, result?, errorOutput?, context}`) and
    /// `vars` giving Assign variables by name without `$`. `Ok(None)` means the result is
    /// undefined (the engine decides whether that is a `States.QueryEvaluationError`).
    pub fn eval(
        &self,
        _states: &Value,
        _vars: &dyn Fn(&str) -> Option<Value>,
    ) -> Result<Option<Value>, ExprError> {
        Err(ExprError::query(format!("not implemented yet: {}", self.source)))
    }

    /// The expression's source text.
    pub fn source(&self) -> &str {
        &self.source
    }
}
