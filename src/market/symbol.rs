//! Symbols and the rooms named after them (CONTRACT §3): 1–32 characters of
//! `A-Z a-z 0-9 . _ - : /`.

use serde_json::Value;

pub const MAX_SYMBOL_LEN: usize = 32;
pub const SYMBOL_RULE: &str = "a symbol is 1-32 characters of A-Z a-z 0-9 . _ - : /";

pub fn is_valid_symbol(s: &str) -> bool {
    (1..=MAX_SYMBOL_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/'))
}

pub fn price_room(symbol: &str) -> String {
    format!("price:{symbol}")
}

pub fn trades_room(symbol: &str) -> String {
    format!("trades:{symbol}")
}

/// Reads the payload of a (un)subscribe event: one symbol or an array of them.
/// Returns the distinct symbols in the order given, or what is wrong.
pub fn parse_symbol_list(payload: &Value) -> Result<Vec<String>, String> {
    let items: Vec<&Value> = match payload {
        Value::String(_) => vec![payload],
        Value::Array(items) if !items.is_empty() => items.iter().collect(),
        Value::Array(_) => return Err("expected at least one symbol".to_owned()),
        _ => return Err("expected a symbol string or an array of symbols".to_owned()),
    };
    let mut symbols: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        match item.as_str() {
            Some(s) if is_valid_symbol(s) => {
                if !symbols.iter().any(|known| known == s) {
                    symbols.push(s.to_owned());
                }
            }
            Some(s) => return Err(format!("invalid symbol {s:?}: {SYMBOL_RULE}")),
            None => return Err(format!("invalid symbol {item}: {SYMBOL_RULE}")),
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
        assert_eq!(parse_symbol_list(&json!("BTC")), Ok(vec!["BTC".to_owned()]));
        assert_eq!(
            parse_symbol_list(&json!(["A", "B", "A"])),
            Ok(vec!["A".to_owned(), "B".to_owned()])
        );
        assert!(
            parse_symbol_list(&json!([]))
                .unwrap_err()
                .contains("at least one")
        );
        assert!(
            parse_symbol_list(&json!(42))
                .unwrap_err()
                .contains("expected a symbol")
        );
        assert!(
            parse_symbol_list(&json!(["A", 1]))
                .unwrap_err()
                .contains("invalid symbol 1")
        );
        assert!(
            parse_symbol_list(&json!(["A", "B C"]))
                .unwrap_err()
                .contains("\"B C\"")
        );
    }
}
