//! Permission lists from token claims (`chat`, `symbols`): patterns matched
//! against a whole string, where `*` matches any run of characters (also an
//! empty one). `"desk-*"` allows `desk-1`, not `xdesk-1`.
//!
//! Matching is linear: a pattern is split at its stars into a prefix, a
//! suffix and middle pieces; the prefix and suffix are compared in place and
//! each middle piece is found left to right with one substring search
//! (leftmost is always right for `*`-only globs), so no input backtracks.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most patterns one claim may hold; a token with more is refused.
pub const MAX_PATTERNS: usize = 1000;
/// Longest pattern, in bytes; a token with a longer one is refused.
pub const MAX_PATTERN_LEN: usize = 256;

/// A list of patterns; [`Patterns::allows`] is true when any one matches.
/// An empty list allows nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patterns(Arc<[String]>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatternsError {
    #[error("more than {MAX_PATTERNS} patterns")]
    TooMany,
    #[error("a pattern is longer than {MAX_PATTERN_LEN} bytes")]
    TooLong,
}

impl Patterns {
    pub fn new<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> Result<Self, PatternsError> {
        let list: Vec<String> = patterns.into_iter().map(Into::into).collect();
        if list.len() > MAX_PATTERNS {
            return Err(PatternsError::TooMany);
        }
        if list.iter().any(|p| p.len() > MAX_PATTERN_LEN) {
            return Err(PatternsError::TooLong);
        }
        Ok(Self(list.into()))
    }

    /// True when one of the patterns matches the whole of `text`.
    pub fn allows(&self, text: &str) -> bool {
        self.0.iter().any(|pattern| matches(pattern, text))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// `*`-glob match of the whole `text`, in time linear in both lengths.
pub fn matches(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    let prefix = pieces.next().unwrap_or_default();
    let Some(rest) = text.strip_prefix(prefix) else {
        return false;
    };
    let Some(suffix) = pieces.next_back() else {
        return rest.is_empty(); // no star: the prefix was the whole pattern
    };
    let Some(mut middle) = rest.strip_suffix(suffix) else {
        return false;
    };
    for piece in pieces {
        match middle.find(piece) {
            Some(at) => middle = &middle[at + piece.len()..],
            None => return false,
        }
    }
    true
}

impl Serialize for Patterns {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Patterns {
    /// An array of strings, or one string as a list of one.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let list = match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        };
        Patterns::new(list).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_matches_any_run_of_the_whole_string() {
        let cases = [
            ("desk-*", "desk-1", true),
            ("desk-*", "desk-", true),
            ("desk-*", "xdesk-1", false),
            ("desk-*", "desk", false),
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("BTC", "BTC", true),
            ("BTC", "BTC-USD", false),
            ("BTC", "xBTC", false),
            ("*-USD", "BTC-USD", true),
            ("*-USD", "BTC-USDT", false),
            ("dm-*-*", "dm-42-7", true),
            ("dm-*-*", "dm-42", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("a**b", "ab", true),
            ("*x*", "abxcd", true),
            ("*x*", "abcd", false),
            ("é*ü", "éaü", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(matches(pattern, text), expected, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn adversarial_patterns_stay_fast() {
        let text = "a".repeat(100_000);
        let pattern = format!("{}b", "a*".repeat(100));
        let started = std::time::Instant::now();
        assert!(!matches(&pattern, &text));
        let pattern = format!("{}a", "*a".repeat(120));
        assert!(matches(&pattern, &text));
        let pattern = format!("*{}b*", "a".repeat(200));
        assert!(!matches(&pattern, &text));
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
    }

    #[test]
    fn lists_allow_when_one_matches_and_empty_allows_nothing() {
        let list = Patterns::new(["desk-*", "dm-42-*"]).unwrap();
        assert!(list.allows("desk-1") && list.allows("dm-42-7"));
        assert!(!list.allows("xdesk-1") && !list.allows("dm-43-1"));
        assert!(!Patterns::new(Vec::<String>::new()).unwrap().allows("desk-1"));
    }

    #[test]
    fn claims_parse_from_an_array_or_one_string_and_are_bounded() {
        let list: Patterns = serde_json::from_str(r#"["BTC-*","ETH"]"#).unwrap();
        assert!(list.allows("BTC-USD") && list.allows("ETH") && !list.allows("ETH-USD"));
        let one: Patterns = serde_json::from_str(r#""desk-*""#).unwrap();
        assert!(one.allows("desk-9"));
        assert!(serde_json::from_str::<Patterns>("[1]").is_err());
        assert!(serde_json::from_str::<Patterns>("{}").is_err());
        let many = serde_json::to_string(&vec!["x"; MAX_PATTERNS + 1]).unwrap();
        assert!(serde_json::from_str::<Patterns>(&many).is_err());
        let long = serde_json::to_string(&["x".repeat(MAX_PATTERN_LEN + 1)]).unwrap();
        assert!(serde_json::from_str::<Patterns>(&long).is_err());
    }
}
