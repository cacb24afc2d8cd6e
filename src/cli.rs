//! The command line: `roomcast [flags]` runs the server; `roomcast token
//! --sub 42 [--role admin] [--chat 'desk-*'] [--symbols 'BTC-*'] [--ttl 1h]`
//! prints a user token signed with the configured `--jwt-secret` (the same
//! flags and `ROOMCAST_*` variables as the server) for trying roomcast out.

use clap::{Args, Parser, Subcommand};

use crate::auth::patterns::Patterns;
use crate::auth::token::{Claims, TokenSigner};
use crate::config::{Config, Secret};

/// Longest `--ttl` the `token` command signs for.
const MAX_TTL_SECS: u64 = 366 * 24 * 3600;

#[derive(Debug, Parser)]
#[command(name = "roomcast", version, about = "Socket.IO-compatible realtime server")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a user token signed with --jwt-secret (HS256).
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user id (`sub`).
    #[arg(long)]
    pub sub: String,
    /// `admin` grants the admin room.
    #[arg(long)]
    pub role: Option<String>,
    /// Chat room patterns the user may join (`*` matches any run), comma separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub chat: Option<Vec<String>>,
    /// Market symbol patterns the user may subscribe to, comma separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub symbols: Option<Vec<String>>,
    /// Lifetime: a number with s, m, h or d (`90s`, `15m`, `1h`, `7d`); plain seconds too.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: u64,
    /// The server's configuration (only --jwt-secret is used).
    #[command(flatten)]
    pub config: Config,
}

impl Cli {
    /// Parses the command line; `--help`/`--version` print and exit 0, a bad
    /// flag prints one line and exits 2.
    pub fn parse_or_exit() -> Self {
        match Self::try_parse() {
            Ok(cli) => cli,
            Err(e) if !e.use_stderr() => e.exit(),
            Err(e) => {
                let message = e.to_string();
                let line = message.lines().next().unwrap_or("invalid configuration");
                eprintln!("roomcast: {line}");
                std::process::exit(2);
            }
        }
    }
}

/// The `token` command: the token on stdout and exit code 0, or one line on
/// stderr and exit code 2. `server_secret` is a `--jwt-secret` given before
/// the subcommand.
pub fn token(args: TokenArgs, server_secret: Option<Secret>) -> i32 {
    match signed_token(args, server_secret) {
        Ok(token) => {
            println!("{token}");
            0
        }
        Err(message) => {
            eprintln!("roomcast token: {message}");
            2
        }
    }
}

fn signed_token(args: TokenArgs, server_secret: Option<Secret>) -> Result<String, String> {
    let secret = args.config.jwt_secret.or(server_secret).ok_or(
        "no --jwt-secret (ROOMCAST_JWT_SECRET) configured: tokens can only be minted with the HS256 \
         secret the server verifies; tokens for --jwt-public-key or --jwks-url come from your \
         identity provider",
    )?;
    if args.sub.is_empty() {
        return Err("--sub must not be empty".into());
    }
    let patterns = |flag: &str, list: Option<Vec<String>>| {
        list.map(Patterns::new)
            .transpose()
            .map_err(|e| format!("{flag}: {e}"))
    };
    let claims = Claims {
        sub: args.sub,
        exp: crate::clock::unix_secs() + args.ttl,
        role: args.role.filter(|r| !r.is_empty()),
        chat: patterns("--chat", args.chat)?,
        symbols: patterns("--symbols", args.symbols)?,
    };
    Ok(TokenSigner::hs256(secret.expose().as_bytes()).sign(&claims))
}

/// `90s`, `15m`, `1h`, `7d` or plain seconds, 1 s up to a year.
fn parse_ttl(value: &str) -> Result<u64, String> {
    let value = value.trim();
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| "expected a number with s, m, h or d, e.g. 1h".to_owned())?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    number
        .checked_mul(unit_secs)
        .filter(|secs| (1..=MAX_TTL_SECS).contains(secs))
        .ok_or_else(|| "must be between 1s and 366d".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::token::TokenVerifier;

    #[test]
    fn ttl_takes_units() {
        assert_eq!(parse_ttl("90"), Ok(90));
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl("15m"), Ok(900));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_ttl("7d"), Ok(604_800));
        assert!(parse_ttl("0s").is_err() && parse_ttl("h").is_err() && parse_ttl("1w").is_err());
        assert!(parse_ttl("400d").is_err() && parse_ttl("99999999999999999999").is_err());
    }

    #[test]
    fn no_subcommand_is_the_server_and_token_signs_with_the_secret() {
        let cli = Cli::parse_from(["roomcast", "--listen", "127.0.0.1:4000"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.config.listen.to_string(), "127.0.0.1:4000");

        let cli = Cli::parse_from([
            "roomcast",
            "token",
            "--sub",
            "42",
            "--role",
            "admin",
            "--chat",
            "desk-*,dm-42-*",
            "--symbols",
            "BTC-*",
            "--ttl",
            "2h",
            "--jwt-secret",
            "s3cret",
        ]);
        let Some(Command::Token(args)) = cli.command else {
            panic!("token subcommand expected");
        };
        let token = signed_token(args, None).unwrap();
        let identity = TokenVerifier::hs256(b"s3cret").verify(&token).unwrap();
        assert_eq!(identity.user_id, "42");
        assert!(identity.is_admin);
        let chat = identity.chat.unwrap();
        assert!(chat.allows("desk-1") && chat.allows("dm-42-7") && !chat.allows("xdesk-1"));
        assert!(identity.symbols.unwrap().allows("BTC-USD"));
        let ttl = identity.expires_at - crate::clock::unix_secs();
        assert!((7190..=7200).contains(&ttl), "{ttl}");

        // The secret may also come before the subcommand, like the server's flags.
        let cli = Cli::parse_from(["roomcast", "--jwt-secret", "s3cret", "token", "--sub", "7"]);
        let Some(Command::Token(args)) = cli.command else {
            panic!("token subcommand expected");
        };
        let token = signed_token(args, cli.config.jwt_secret).unwrap();
        assert!(TokenVerifier::hs256(b"s3cret").verify(&token).is_ok());
    }
}
