//! The `roomcast` binary: parse config, init logs, build, run until SIGTERM/SIGINT.

use clap::Parser;
use roomcast::{Application, Config};

#[tokio::main]
async fn main() {
    let config = match Config::try_parse() {
        Ok(config) => config,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            let message = e.to_string();
            let line = message.lines().next().unwrap_or("invalid configuration");
            eprintln!("roomcast: {line}");
            std::process::exit(2);
        }
    };
    roomcast::telemetry::init(config.log_format);
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("roomcast: error: {e:#}");
            std::process::exit(1);
        }
    };
    if let Err(e) = app.run_until_stopped(shutdown_signal()).await {
        eprintln!("roomcast: error: {e:#}");
        std::process::exit(1);
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
