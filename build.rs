//! Builds the web console (web/) with npm + esbuild into OUT_DIR, where the
//! binary embeds it, and copies the Socket.IO Admin UI (npm
//! `@socket.io/admin-ui`, with the `@mdi/font` icons instead of its CDN links)
//! into OUT_DIR/admin-ui with a table of its files. Without Node/npm (or with
//! ROOMCAST_SKIP_CONSOLE=1) the build still succeeds and `/` and `/admin-ui/`
//! say how to get them.
//! While the console is missing, every `cargo build` tries again (it watches
//! a marker that exists only once the console is built), so installing Node
//! and building again is enough.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let web = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("web");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    for path in [
        "web/src",
        "web/admin-ui",
        "web/package.json",
        "web/package-lock.json",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-env-changed=ROOMCAST_SKIP_CONSOLE");

    let skipped = std::env::var_os("ROOMCAST_SKIP_CONSOLE").is_some();
    let installed = if skipped {
        Err("ROOMCAST_SKIP_CONSOLE is set".to_owned())
    } else {
        install(&web)
    };
    let admin_ui = installed.clone().and_then(|()| admin_ui::build(&web, &out));
    if let Err(why) = admin_ui {
        println!("cargo:warning=admin UI not built ({why}); /admin-ui/ will serve a placeholder page");
        admin_ui::fallback(&web, &out).expect("write OUT_DIR");
    }
    let built = installed.and_then(|()| build_console(&web, &out));
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

/// `npm ci` in web/ unless its packages are already there.
fn install(web: &Path) -> Result<(), String> {
    let needed = [
        "node_modules/.bin/esbuild",
        "node_modules/@socket.io/admin-ui/ui/dist/index.html",
        "node_modules/@mdi/font/fonts/materialdesignicons-webfont.woff2",
    ];
    if needed.iter().all(|path| web.join(path).exists()) {
        return Ok(());
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(web))
}

fn build_console(web: &Path, out: &Path) -> Result<(), String> {
    let esbuild = web.join("node_modules/.bin/esbuild");
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

/// The Admin UI: the package's `ui/dist` (source maps left out), its
/// index.html without the two CDN links, the icon font from `@mdi/font`
/// (woff2 only), and `prefill.js` (web/admin-ui), which fills in the page's
/// own origin as the server URL. Listed in OUT_DIR/admin_ui_files.rs.
mod admin_ui {
    use std::path::Path;

    const DIST: &str = "node_modules/@socket.io/admin-ui/ui/dist";
    const MDI: &str = "node_modules/@mdi/font";
    const GOOGLE_FONTS: &str = r#"<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto:100,300,400,500,700,900">"#;
    const MDI_CDN: &str = r#"<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css">"#;
    const MDI_LOCAL: &str = r#"<link rel="stylesheet" href="mdi/materialdesignicons.min.css">"#;
    const FIRST_SCRIPT: &str = "<script src=\"js/";
    const PREFILL: &str = r#"<script src="prefill.js"></script>"#;

    pub fn build(web: &Path, out: &Path) -> Result<(), String> {
        let dist = web.join(DIST);
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for dir in ["", "css", "js", "img"] {
            let entries = std::fs::read_dir(dist.join(dir)).map_err(|e| format!("read {DIST}/{dir}: {e}"))?;
            for entry in entries {
                let path = entry.map_err(|e| e.to_string())?.path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_owned();
                if !path.is_file() || name.ends_with(".map") {
                    continue;
                }
                let bytes = std::fs::read(&path).map_err(|e| format!("read {name}: {e}"))?;
                let rel = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                files.push((rel, bytes));
            }
        }
        for (rel, bytes) in &mut files {
            if rel == "index.html" {
                *bytes = index_html(&String::from_utf8_lossy(bytes))?.into_bytes();
            } else if rel.ends_with(".js") {
                *bytes = without_source_map(bytes);
            }
        }
        let mdi = web.join(MDI);
        let css = std::fs::read_to_string(mdi.join("css/materialdesignicons.min.css"))
            .map_err(|e| format!("read @mdi/font css: {e}"))?;
        files.push((
            "mdi/materialdesignicons.min.css".into(),
            mdi_css(&css)?.into_bytes(),
        ));
        for (rel, from) in [
            (
                "mdi/materialdesignicons-webfont.woff2",
                mdi.join("fonts/materialdesignicons-webfont.woff2"),
            ),
            ("mdi/LICENSE", mdi.join("LICENSE")),
            ("LICENSE", dist.join("../../LICENSE")),
            ("prefill.js", web.join("admin-ui/prefill.js")),
        ] {
            let bytes = std::fs::read(&from).map_err(|e| format!("read {}: {e}", from.display()))?;
            files.push((rel.into(), bytes));
        }
        write(out, &files)
    }

    /// Only `index.html`: the page that says how to get the Admin UI.
    pub fn fallback(web: &Path, out: &Path) -> Result<(), String> {
        let page = std::fs::read(web.join("admin-ui/fallback.html")).map_err(|e| e.to_string())?;
        write(out, &[("index.html".into(), page)])
    }

    fn index_html(html: &str) -> Result<String, String> {
        if !html.contains(GOOGLE_FONTS) || !html.contains(MDI_CDN) || !html.contains(FIRST_SCRIPT) {
            return Err("index.html of @socket.io/admin-ui is not the expected one (0.5.x)".into());
        }
        let html = html.replacen(GOOGLE_FONTS, "", 1).replacen(MDI_CDN, MDI_LOCAL, 1);
        Ok(html.replacen(FIRST_SCRIPT, &format!("{PREFILL}{FIRST_SCRIPT}"), 1))
    }

    /// The `@font-face` rule pointed at the one woff2 file served next to the css.
    fn mdi_css(css: &str) -> Result<String, String> {
        let start = css.find("@font-face{").ok_or("no @font-face in @mdi/font css")?;
        let end = start + css[start..].find('}').ok_or("unterminated @font-face")? + 1;
        let face = r#"@font-face{font-family:"Material Design Icons";src:url("materialdesignicons-webfont.woff2") format("woff2");font-weight:normal;font-style:normal}"#;
        Ok(format!("{}{face}{}", &css[..start], &css[end..]))
    }

    /// Drops the trailing `//# sourceMappingURL=` line (the maps are not served).
    fn without_source_map(js: &[u8]) -> Vec<u8> {
        let marker = b"\n//# sourceMappingURL=";
        match js.windows(marker.len()).rposition(|w| w == marker) {
            Some(at) => js[..=at].to_vec(),
            None => js.to_vec(),
        }
    }

    fn write(out: &Path, files: &[(String, Vec<u8>)]) -> Result<(), String> {
        let dir = out.join("admin-ui");
        let _ = std::fs::remove_dir_all(&dir);
        let mut table = String::from("&[\n");
        for (i, (rel, bytes)) in files.iter().enumerate() {
            let stored = dir.join(format!("{i}"));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::write(&stored, bytes).map_err(|e| e.to_string())?;
            table.push_str(&format!(
                "    ({rel:?}, include_bytes!({:?})),\n",
                stored.display().to_string()
            ));
        }
        table.push_str("]\n");
        std::fs::write(out.join("admin_ui_files.rs"), table).map_err(|e| e.to_string())
    }
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
