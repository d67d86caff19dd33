//! What a call costs: a price table by model name, and a token estimate for when the provider
//! does not report usage.

use std::collections::HashMap;

use serde::Deserialize;

use crate::types::Usage;

/// USD per one million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Price {
    pub input: f64,
    #[serde(default)]
    pub output: f64,
}

/// The built-in prices: OpenAI's list prices (USD per 1M tokens, standard tier, uncached input)
/// as published in 2025. They go stale; deployments override them with [`Prices::from_json`].
pub const DEFAULT_PRICES: [(&str, Price); 9] = [
    ("gpt-4o", Price { input: 2.50, output: 10.00 }),
    ("gpt-4o-mini", Price { input: 0.15, output: 0.60 }),
    ("gpt-4.1", Price { input: 2.00, output: 8.00 }),
    ("gpt-4.1-mini", Price { input: 0.40, output: 1.60 }),
    ("gpt-4.1-nano", Price { input: 0.10, output: 0.40 }),
    ("o4-mini", Price { input: 1.10, output: 4.40 }),
    ("text-embedding-3-small", Price { input: 0.02, output: 0.0 }),
    ("text-embedding-3-large", Price { input: 0.13, output: 0.0 }),
    ("text-embedding-ada-002", Price { input: 0.10, output: 0.0 }),
];

/// A price table. Lookup is by exact name, else by the longest known prefix followed by `-`
/// (so `gpt-4o-2024-08-06` is priced as `gpt-4o` and `gpt-4o-mini-2024-07-18` as `gpt-4o-mini`),
/// after dropping a router prefix such as `openai/`. Unknown models cost 0: check [`Prices::price`]
/// (or [`Prices::is_known`]) to flag them.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    models: HashMap<String, Price>,
}

impl Default for Prices {
    fn default() -> Self {
        Self { models: DEFAULT_PRICES.iter().map(|(m, p)| ((*m).to_owned(), *p)).collect() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model prices: {0} (expected {{\"model\": {{\"input\": USD per 1M tokens, \"output\": USD per 1M tokens}}}})")]
pub struct PricesError(String);

impl Prices {
    /// A table with no prices at all.
    pub fn empty() -> Self {
        Self { models: HashMap::new() }
    }

    /// The defaults, with the entries of `json` added or replacing them:
    /// `{"my-model": {"input": 0.5, "output": 1.5}}` (USD per 1M tokens; `output` defaults to 0).
    /// Meant for a deployment setting such as `WEFT_MODEL_PRICES`.
    pub fn from_json(json: &str) -> Result<Self, PricesError> {
        let entries: HashMap<String, Price> = serde_json::from_str(json).map_err(|e| PricesError(e.to_string()))?;
        let mut prices = Self::default();
        for (model, price) in entries {
            let valid = |v: f64| v.is_finite() && v >= 0.0;
            if !valid(price.input) || !valid(price.output) {
                return Err(PricesError(format!("`{model}` has a negative or non-finite price")));
            }
            prices.models.insert(model, price);
        }
        Ok(prices)
    }

    pub fn set(&mut self, model: impl Into<String>, price: Price) {
        self.models.insert(model.into(), price);
    }

    /// The price of `model`, `None` if unknown.
    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.models.get(model) {
            return Some(*p);
        }
        let bare = model.rsplit('/').next().unwrap_or(model);
        if let Some(p) = self.models.get(bare) {
            return Some(*p);
        }
        self.models
            .iter()
            .filter(|(name, _)| bare.strip_prefix(name.as_str()).is_some_and(|rest| rest.starts_with('-')))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| *p)
    }

    pub fn is_known(&self, model: &str) -> bool {
        self.price(model).is_some()
    }

    /// The cost of `usage` on `model` in USD; 0 for an unknown model.
    pub fn cost_usd(&self, model: &str, usage: &Usage) -> f64 {
        self.price(model).map_or(0.0, |p| {
            (usage.input_tokens as f64 * p.input + usage.output_tokens as f64 * p.output) / 1_000_000.0
        })
    }
}

/// A rough token count for when the provider reports no usage: about 4 characters a token
/// (OpenAI's rule of thumb for English; code and other scripts use more tokens per character).
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lookup_exact_prefix_and_router() {
        let p = Prices::default();
        assert_eq!(p.price("gpt-4o").unwrap().input, 2.5);
        assert_eq!(p.price("gpt-4o-2024-08-06").unwrap().input, 2.5);
        assert_eq!(p.price("gpt-4o-mini-2024-07-18").unwrap().input, 0.15);
        assert_eq!(p.price("openai/gpt-4.1-mini").unwrap().output, 1.6);
        assert!(p.price("gpt-4").is_none());
        assert!(p.price("gpt-4oo").is_none());
        assert!(!p.is_known("llama3"));
    }

    #[test]
    fn cost_and_unknown() {
        let p = Prices::default();
        let u = Usage { input_tokens: 1_000_000, output_tokens: 500_000 };
        assert!((p.cost_usd("gpt-4o-mini", &u) - 0.45).abs() < 1e-9);
        assert_eq!(p.cost_usd("my-local-model", &u), 0.0);
    }

    #[test]
    fn from_json_adds_and_overrides() {
        let p = Prices::from_json(r#"{"gpt-4o": {"input": 1, "output": 2}, "local": {"input": 0.5}}"#).unwrap();
        assert_eq!(p.price("gpt-4o"), Some(Price { input: 1.0, output: 2.0 }));
        assert_eq!(p.price("local"), Some(Price { input: 0.5, output: 0.0 }));
        assert!(p.is_known("gpt-4.1"));
        assert!(Prices::from_json(r#"{"x": {"input": -1}}"#).is_err());
        assert!(Prices::from_json("[1]").is_err());
    }

    #[test]
    fn token_estimate() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("éééé"), 1);
    }
}
