//! Headless Chromium for the lab's page tests (the soak's report.html).
//!
//! The product's tests have the same helpers in `tests/common/mod.rs`;
//! a lab test cannot include that module (it is the product crate's), so
//! the lab keeps this small copy of its own: a browser with a throwaway
//! profile and a deadline, the skip rule, a PNG's size.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's headless browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long one run of the browser may take before it is ended.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Whether Chromium is there: without it the test says SKIPPED and
/// passes, except in CI, where a missing browser is a failure.
pub fn have_chromium() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{CHROMIUM} missing in CI (scripts/install-deps.sh)");
    }
    println!("SKIPPED: needs {CHROMIUM} (scripts/install-deps.sh)");
    false
}

/// Runs Chromium headless with its own throwaway profile and `args`,
/// returning what it printed on stdout. Its output goes to a file (no
/// pipe a helper process could hold open); past [`DEADLINE`] this
/// browser, and only this one, is killed by its pid.
pub fn chromium(args: &[String]) -> Result<String, String> {
    let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out_path = profile.path().join("stdout");
    let out = std::fs::File::create(&out_path).map_err(|e| e.to_string())?;
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{CHROMIUM}: {e}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if started.elapsed() > DEADLINE {
            // Child::kill signals this child's pid only.
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{CHROMIUM} overran {DEADLINE:?}: killed"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&out_path).map_err(|e| e.to_string())?;
    if status.success() {
        Ok(stdout)
    } else {
        Err(format!("{CHROMIUM} exited {status}"))
    }
}

/// Width and height from a PNG's IHDR chunk (the first chunk, right
/// after the 8-byte signature and the chunk's length and type).
pub fn png_size(p: &Path) -> (u32, u32) {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(
        b.len() >= 24 && &b[..8] == b"\x89PNG\r\n\x1a\n" && &b[12..16] == b"IHDR",
        "{} is not a PNG",
        p.display()
    );
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}
