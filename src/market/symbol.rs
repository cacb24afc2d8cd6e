//! Symbols (CONTRACT §3): 1–32 characters of `A-Z a-z 0-9 . _ - : /`.

use serde_json::Value;

pub const MAX_SYMBOL_LEN: usize = 32;
pub const SYMBOL_RULE: &str = "a symbol is 1-32 characters of A-Z a-z 0-9 . _ - : /";

pub fn is_valid_symbol(s: &str) -> bool {
    (1..=MAX_SYMBOL_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/'))
}

/// A valid symbol, parsed once at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

impl Symbol {
    pub fn parse(s: &str) -> Result<Self, String> {
        if is_valid_symbol(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("invalid symbol {s:?}: {SYMBOL_RULE}"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads the payload of a (un)subscribe event: one symbol or an array of at
/// most `max_items` of them (checked before anything else is looked at).
/// Returns the distinct symbols in the order given, or what is wrong. Linear
/// in the payload's size.
pub fn parse_symbol_list(payload: &Value, max_items: usize) -> Result<Vec<Symbol>, String> {
    let items: &[Value] = match payload {
        Value::String(_) => std::slice::from_ref(payload),
        Value::Array(items) if items.len() > max_items => {
            return Err(format!(
                "too many symbols: at most {max_items} in one call (got {})",
                items.len()
            ));
        }
        Value::Array(items) if !items.is_empty() => items,
        Value::Array(_) => return Err("expected at least one symbol".to_owned()),
        _ => return Err("expected a symbol string or an array of symbols".to_owned()),
    };
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    let mut symbols = Vec::with_capacity(items.len());
    for item in items {
        let symbol = match item.as_str() {
            Some(s) => Symbol::parse(s)?,
            None => return Err(format!("invalid symbol {item}: {SYMBOL_RULE}")),
        };
        if seen.insert(item.as_str().unwrap_or_default()) {
            symbols.push(symbol);
        }
    }
    Ok(symbols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn valid_symbols() {
        for s in [
            "BTC",
            "BTC-USD",
            "btc/usdt",
            "AAPL.O",
            "ES:F_2026",
            &"X".repeat(32),
        ] {
            assert!(is_valid_symbol(s), "{s}");
        }
        for s in ["", " BTC", "BTC USD", "BTC$", "ÄPFEL", "a\nb", &"X".repeat(33)] {
            assert!(!is_valid_symbol(s), "{s}");
        }
    }

    #[test]
    fn symbol_lists() {
        let names = |r: Result<Vec<Symbol>, String>| {
            r.map(|v| v.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(
            names(parse_symbol_list(&json!("BTC"), 10)),
            Ok(vec!["BTC".to_owned()])
        );
        assert_eq!(
            names(parse_symbol_list(&json!(["A", "B", "A"]), 10)),
            Ok(vec!["A".to_owned(), "B".to_owned()])
        );
        assert!(
            parse_symbol_list(&json!(["A", "B", "C"]), 2)
                .unwrap_err()
                .contains("too many symbols")
        );
        assert!(
            parse_symbol_list(&json!([]), 10)
                .unwrap_err()
                .contains("at least one")
        );
        assert!(
            parse_symbol_list(&json!(42), 10)
                .unwrap_err()
                .contains("expected a symbol")
        );
        assert!(
            parse_symbol_list(&json!(["A", 1]), 10)
                .unwrap_err()
                .contains("invalid symbol 1")
        );
        assert!(
            parse_symbol_list(&json!(["A", "B C"]), 10)
                .unwrap_err()
                .contains("\"B C\"")
        );
    }
}
