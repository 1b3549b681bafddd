//! Builds the web viewer (`ui/` → `ui/dist`, embedded by `src/http/web.rs`) when it is missing or
//! older than its sources, so `cargo run -p choreoscope -- demo` serves it from a fresh checkout.
//!
//! Needs Node.js and npm. Without them, or with `CHOREOSCOPE_SKIP_UI_BUILD=1`, the binary is built
//! without the viewer and its `/` says how to build it; nothing fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn main() {
    let ui = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui");
    for watched in [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "dist",
    ] {
        println!("cargo:rerun-if-changed={}", ui.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CHOREOSCOPE_SKIP_UI_BUILD");
    if std::env::var_os("CHOREOSCOPE_SKIP_UI_BUILD").is_some() || !ui.join("package.json").exists()
    {
        return;
    }
    let built = modified(&ui.join("dist/index.html"));
    let sources = [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
    ]
    .iter()
    .filter_map(|p| newest(&ui.join(p)))
    .max();
    if matches!((built, sources), (Some(b), Some(s)) if b >= s) {
        return;
    }
    if let Err(why) = build(&ui) {
        println!(
            "cargo:warning=the web viewer was not built ({why}); `/` will say how to build it"
        );
    }
}

fn build(ui: &Path) -> Result<(), String> {
    let npm = |args: &[&str]| -> Result<(), String> {
        let status = Command::new("npm")
            .args(args)
            .current_dir(ui)
            .status()
            .map_err(|e| format!("npm: {e}"))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("`npm {}` failed", args.join(" ")))
    };
    if !ui.join("node_modules").exists() {
        // Not `npm ci`: see scripts/lib.sh (a Windows-only optional package missing from the registry).
        npm(&["install", "--no-audit", "--no-fund"])?;
    }
    npm(&["run", "build"])
}

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

/// The newest modification time under `path` (a file or a folder).
fn newest(path: &Path) -> Option<SystemTime> {
    let own = modified(path);
    let Ok(entries) = std::fs::read_dir(path) else {
        return own;
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| newest(&e.path()))
        .chain(own)
        .max()
}
