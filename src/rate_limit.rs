//! Rate limits per socket (`--rate-limit`) and per user (`--user-rate-limit`:
//! all of one user's sockets, plain WebSocket connections and REST calls on a
//! node together, so reconnecting does not reset them).
//!
//! Syntax: comma-separated `event=N/s` (also `/m`, `/h`); `*` is every event
//! without a rule of its own. A rate of `N/s` admits a burst of up to N.
//! Rules given on the command line override the defaults one by one.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};

/// Defaults applied before the user's rules (a user rule for the same event wins).
pub const DEFAULT_RULES: &str = "authenticate=5/s,subscribe:price=20/s,unsubscribe:price=20/s,\
subscribe:trades=20/s,unsubscribe:trades=20/s,chat:join=10/s,chat:send=5/s,chat:read=10/s,\
chat:history=10/s,chat:leave=10/s,chat:typing=5/s,chat:edit=5/s,chat:delete=5/s,\
chat:rooms=5/s,ping=5/s,resume=5/s,*=50/s";

/// Defaults of the per-user limits: above one socket's, so a user with a few
/// tabs open is not throttled, but bounded whatever number of sockets they open.
pub const DEFAULT_USER_RULES: &str = "authenticate=10/s,chat:join=20/s,chat:send=10/s,chat:read=20/s,\
chat:history=20/s,chat:leave=20/s,chat:typing=5/s,chat:edit=10/s,\
chat:delete=10/s,chat:rooms=10/s,*=100/s";

/// Users whose buckets are kept before idle ones are forgotten.
const USERS_SWEPT_ABOVE: usize = 10_000;
/// A user's buckets idle this long are forgotten (they would be full again anyway).
const USER_IDLE: Duration = Duration::from_secs(60);

/// The name of the rule that covers every event without its own.
pub const ANY_EVENT: &str = "*";

/// One rate: `count` events per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Per,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Second,
    Minute,
    Hour,
}

impl Rate {
    fn quota(self) -> Quota {
        match self.per {
            Per::Second => Quota::per_second(self.count),
            Per::Minute => Quota::per_minute(self.count),
            Per::Hour => Quota::per_hour(self.count),
        }
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, unit) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a rate like 20/s"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: count must be a positive whole number"))?;
        let count = NonZeroU32::new(count).ok_or_else(|| format!("`{s}`: count must be at least 1"))?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Per::Second,
            "m" | "min" | "minute" => Per::Minute,
            "h" | "hour" => Per::Hour,
            other => return Err(format!("`{s}`: unknown unit `{other}` (use s, m or h)")),
        };
        Ok(Rate { count, per })
    }
}

/// The parsed rule table: the defaults with the user's rules laid over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitRules {
    /// Sorted by event name; the position is the rule's index in a [`SocketLimiter`].
    rules: Vec<(String, Rate)>,
    any_index: usize,
}

impl RateLimitRules {
    fn parse_into(spec: &str, rules: &mut BTreeMap<String, Rate>) -> Result<(), String> {
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (event, rate) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}` is not `event=N/s`"))?;
            let event = event.trim();
            if event.is_empty() {
                return Err(format!("`{item}`: missing event name"));
            }
            rules.insert(event.to_owned(), rate.parse()?);
        }
        Ok(())
    }

    /// The rule index that governs `event`.
    pub fn index_of(&self, event: &str) -> usize {
        self.rules
            .binary_search_by(|(name, _)| name.as_str().cmp(event))
            .unwrap_or(self.any_index)
    }

    pub fn rate_of(&self, event: &str) -> Rate {
        self.rules[self.index_of(event)].1
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl RateLimitRules {
    fn with_defaults(defaults: &str, spec: &str) -> Result<Self, String> {
        let mut rules = BTreeMap::new();
        Self::parse_into(defaults, &mut rules).expect("default rules parse");
        Self::parse_into(spec, &mut rules)?;
        let rules: Vec<_> = rules.into_iter().collect();
        let any_index = rules
            .iter()
            .position(|(name, _)| name == ANY_EVENT)
            .expect("defaults have a `*` rule");
        Ok(Self { rules, any_index })
    }

    /// The rules in force, `event=N/s` comma separated (for `--help` and logs).
    pub fn describe(&self) -> String {
        self.rules
            .iter()
            .map(|(event, rate)| format!("{event}={rate}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FromStr for RateLimitRules {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        Self::with_defaults(DEFAULT_RULES, spec)
    }
}

/// `--user-rate-limit`: the same syntax, with the per-user defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRateLimitRules(pub RateLimitRules);

impl FromStr for UserRateLimitRules {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        RateLimitRules::with_defaults(DEFAULT_USER_RULES, spec).map(Self)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per {
            Per::Second => "s",
            Per::Minute => "m",
            Per::Hour => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl Default for RateLimitRules {
    fn default() -> Self {
        "".parse().expect("default rules parse")
    }
}

/// The limiters of one socket: one token bucket per rule, created on the
/// rule's first use. A socket that sends nothing holds no bucket; a socket
/// that only subscribes holds one (~100 B) instead of a table of every rule.
pub struct SocketLimiter {
    rules: Arc<RateLimitRules>,
    /// `(rule index, bucket)` of the rules used so far, in first-use order (a
    /// handful at most: a linear search beats hashing).
    buckets: Mutex<Vec<(usize, DefaultDirectRateLimiter)>>,
}

impl SocketLimiter {
    pub fn new(rules: Arc<RateLimitRules>) -> Self {
        Self {
            rules,
            buckets: Mutex::default(),
        }
    }

    /// Admits one `event`, or says how long until it would be admitted.
    pub fn check(&self, event: &str) -> Result<(), Duration> {
        let index = self.rules.index_of(event);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let at = match buckets.iter().position(|(rule, _)| *rule == index) {
            Some(at) => at,
            None => {
                let bucket = DefaultDirectRateLimiter::direct(self.rules.rules[index].1.quota());
                buckets.reserve_exact(1);
                buckets.push((index, bucket));
                buckets.len() - 1
            }
        };
        buckets[at]
            .1
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// How many buckets exist (rules used so far).
    #[cfg(test)]
    fn buckets(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The per-user buckets of one node.
pub struct UserLimiters {
    rules: Arc<RateLimitRules>,
    users: Mutex<HashMap<String, (Arc<SocketLimiter>, Instant)>>,
}

impl UserLimiters {
    pub fn new(rules: RateLimitRules) -> Self {
        Self {
            rules: Arc::new(rules),
            users: Mutex::default(),
        }
    }

    /// Admits one `event` of `user`, or says how long until it would be admitted.
    pub fn check(&self, user: &str, event: &str) -> Result<(), Duration> {
        let limiter = {
            let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if users.len() >= USERS_SWEPT_ABOVE && !users.contains_key(user) {
                users.retain(|_, (_, used)| now.duration_since(*used) < USER_IDLE);
            }
            // Known users (every event but a user's first) are found without
            // allocating their name.
            match users.get_mut(user) {
                Some(entry) => {
                    entry.1 = now;
                    entry.0.clone()
                }
                None => {
                    let limiter = Arc::new(SocketLimiter::new(self.rules.clone()));
                    users.insert(user.to_owned(), (limiter.clone(), now));
                    limiter
                }
            }
        };
        limiter.check(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: &str) -> Rate {
        s.parse().unwrap()
    }

    #[test]
    fn user_rules_override_defaults_and_star_covers_the_rest() {
        let rules: RateLimitRules = "subscribe:price=3/s, *=7/m".parse().unwrap();
        assert_eq!(rules.rate_of("subscribe:price"), rate("3/s"));
        assert_eq!(rules.rate_of("chat:send"), rate("5/s"), "default kept");
        assert_eq!(rules.rate_of("something:else"), rate("7/m"));
    }

    #[test]
    fn malformed_rules_say_what_is_wrong() {
        for (spec, needle) in [
            ("chat:send", "not `event=N/s`"),
            ("chat:send=0/s", "at least 1"),
            ("chat:send=5/d", "unknown unit"),
            ("=5/s", "missing event name"),
            ("x=five/s", "positive whole number"),
        ] {
            let err = spec.parse::<RateLimitRules>().unwrap_err();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn a_rate_of_n_per_second_admits_a_burst_of_n_then_refuses() {
        let rules: RateLimitRules = "ping=3/s".parse().unwrap();
        let limiter = SocketLimiter::new(Arc::new(rules));
        for _ in 0..3 {
            assert!(limiter.check("ping").is_ok());
        }
        let retry = limiter.check("ping").unwrap_err();
        assert!(
            retry > Duration::ZERO && retry <= Duration::from_millis(334),
            "{retry:?}"
        );
        assert!(
            limiter.check("other").is_ok(),
            "other events have their own bucket"
        );
    }

    #[test]
    fn buckets_exist_only_for_the_rules_used() {
        let limiter = SocketLimiter::new(Arc::new(RateLimitRules::default()));
        assert_eq!(limiter.buckets(), 0, "nothing before the first event");
        limiter.check("subscribe:price").unwrap();
        limiter.check("subscribe:price").unwrap();
        assert_eq!(limiter.buckets(), 1);
        limiter.check("unknown-a").unwrap();
        limiter.check("unknown-b").unwrap();
        assert_eq!(limiter.buckets(), 2, "events without a rule share the `*` bucket");
    }

    #[test]
    fn a_user_is_limited_across_all_their_connections() {
        let users = UserLimiters::new("chat:send=2/s".parse::<UserRateLimitRules>().unwrap().0);
        assert!(users.check("alice", "chat:send").is_ok());
        assert!(users.check("alice", "chat:send").is_ok());
        assert!(
            users.check("alice", "chat:send").is_err(),
            "third in the same second"
        );
        assert!(
            users.check("bob", "chat:send").is_ok(),
            "every user has their own"
        );
    }

    #[test]
    fn rules_describe_themselves() {
        let rules: RateLimitRules = "ping=3/s".parse().unwrap();
        assert!(rules.describe().contains("ping=3/s") && rules.describe().contains("*=50/s"));
    }
}
