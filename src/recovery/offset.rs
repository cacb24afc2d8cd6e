//! Offsets: the position of a recorded event in its room, `"<ms>-<seq>"`,
//! increasing within a room. The memory backend makes them like Redis makes
//! stream ids, so both backends speak the same format.

use std::fmt;
use std::str::FromStr;

/// `<ms>-<seq>`: the millisecond the event was recorded and its sequence within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset {
    pub ms: u64,
    pub seq: u64,
}

impl Offset {
    /// The offset after `self` for an event recorded at `now_ms` (never smaller,
    /// even if the clock steps back).
    pub fn next(self, now_ms: u64) -> Offset {
        if now_ms > self.ms {
            Offset { ms: now_ms, seq: 0 }
        } else {
            Offset {
                ms: self.ms,
                seq: self.seq + 1,
            }
        }
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("an offset is a string like \"1700000000000-0\"")]
pub struct BadOffset;

impl FromStr for Offset {
    type Err = BadOffset;

    fn from_str(s: &str) -> Result<Self, BadOffset> {
        let (ms, seq) = s.split_once('-').ok_or(BadOffset)?;
        let digits = |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(BadOffset);
        }
        Ok(Offset {
            ms: ms.parse().map_err(|_| BadOffset)?,
            seq: seq.parse().map_err(|_| BadOffset)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_order_like_stream_ids() {
        let a: Offset = "1700000000000-2".parse().unwrap();
        assert_eq!(a.to_string(), "1700000000000-2");
        assert!(a < "1700000000000-10".parse().unwrap());
        assert!(a < "1700000000001-0".parse().unwrap());
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            " 1-2",
            "+1-2",
            "123456789012345678901-0",
        ] {
            assert!(bad.parse::<Offset>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn next_increases_even_when_the_clock_steps_back() {
        let a = Offset { ms: 10, seq: 4 };
        assert_eq!(a.next(11), Offset { ms: 11, seq: 0 });
        assert_eq!(a.next(10), Offset { ms: 10, seq: 5 });
        assert_eq!(a.next(3), Offset { ms: 10, seq: 5 });
    }
}
