//! The `roomcast` binary: parse the command line; run the `token` command, or
//! init logs, build and serve until SIGTERM/SIGINT.

use roomcast::cli::{Cli, Command};
use roomcast::{Application, Config};

#[tokio::main]
async fn main() {
    let cli = Cli::parse_or_exit();
    let code = match cli.command {
        Some(Command::Token(args)) => roomcast::cli::token(args, cli.config.jwt_secret),
        None => serve(cli.config).await,
    };
    std::process::exit(code);
}

async fn serve(config: Config) -> i32 {
    roomcast::telemetry::init(config.log_format);
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("roomcast: error: {e:#}");
            return 1;
        }
    };
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("roomcast: error: {e:#}");
            1
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
