//! Builds the web console (web/) with npm + esbuild into OUT_DIR, where the
//! binary embeds it. Without Node/npm (or with ROOMCAST_SKIP_CONSOLE=1) the
//! build still succeeds and `/` says how to get the console. While the
//! console is missing, every `cargo build` tries again (it watches a marker
//! that exists only once the console is built), so installing Node and
//! building again is enough.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let web = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("web");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    for path in ["web/src", "web/package.json", "web/package-lock.json"] {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-env-changed=ROOMCAST_SKIP_CONSOLE");

    let skipped = std::env::var_os("ROOMCAST_SKIP_CONSOLE").is_some();
    let built = if skipped {
        Err("ROOMCAST_SKIP_CONSOLE is set".to_owned())
    } else {
        build_console(&web, &out)
    };
    let marker = out.join("console.built");
    let _ = std::fs::remove_file(&marker);
    match &built {
        Ok(()) => std::fs::write(&marker, "").expect("write OUT_DIR"),
        // A path that does not exist makes cargo run this script on every build.
        Err(_) if !skipped => println!("cargo:rerun-if-changed={}", marker.display()),
        Err(_) => {}
    }
    if let Err(why) = built {
        println!("cargo:warning=web console not built ({why}); / will serve a placeholder page");
        let page = include_str!("web/fallback.html");
        std::fs::write(out.join("index.html"), page).expect("write OUT_DIR");
        std::fs::write(out.join("console.js"), "").expect("write OUT_DIR");
        std::fs::write(out.join("console.css"), "").expect("write OUT_DIR");
    }
}

fn build_console(web: &Path, out: &Path) -> Result<(), String> {
    let esbuild = web.join("node_modules/.bin/esbuild");
    if !esbuild.exists() {
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(web))?;
    }
    run(Command::new(&esbuild)
        .args([
            "src/console.js",
            "--bundle",
            "--minify",
            "--format=iife",
            "--target=es2020",
            "--log-level=warning",
        ])
        .arg(format!("--outfile={}", out.join("console.js").display()))
        .current_dir(web))?;
    for file in ["index.html", "console.css"] {
        std::fs::copy(web.join("src").join(file), out.join(file)).map_err(|e| format!("copy {file}: {e}"))?;
    }
    Ok(())
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed: {status}", command.get_program()))
    }
}
