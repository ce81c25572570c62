//! `mailha import-legacy`: the 2014 kit's `ha_conf.ini` -> `mailha.toml`.
//! The conversion is `crate::legacy`; this verb reads, checks and writes.

use super::{Cli, CliError, check};
use crate::legacy;
use std::fs::{self, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The input is read as data: nothing in it is evaluated or run. \
    What cannot be mapped is listed by line with the reason. The output is \
    checked like `mailha check` and written only if it passes.\n\n\
    Exit codes: 0 written, 1 could not write, 2 bad input or the result \
    does not pass check (nothing written)."
)]
pub struct Args {
    /// The original kit's etc/ha_conf.ini.
    pub input: PathBuf,
    /// Where to write the new configuration; created with mode 0600, as it
    /// may hold the SMTP password.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace OUTPUT if it already exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(_cli: &Cli, a: &Args) -> Result<(), CliError> {
    // Checked first so a refusal costs nothing; the write below refuses
    // again atomically in case the file appears meanwhile.
    if !a.force && a.output.symlink_metadata().is_ok() {
        return Err(refuse_overwrite(&a.output));
    }
    let bytes = fs::read(&a.input)
        .map_err(|e| CliError::BadInput(format!("{}: {e}", a.input.display())))?;
    // Installs of the original often carry GBK comments; they are not
    // needed, so a lossy read keeps the import going and says so.
    let text = String::from_utf8_lossy(&bytes);
    let lossy = matches!(text, std::borrow::Cow::Owned(_));

    let imported = legacy::import(&a.input, &text)
        .map_err(|e| CliError::BadInput(format!("{e}\n{}: nothing written", a.output.display())))?;
    let loaded = crate::config::load_str(&a.output, &imported.toml, Some(0o600)).map_err(|e| {
        CliError::BadInput(format!(
            "{e}\n{}: the imported configuration does not pass `mailha check`; nothing written",
            a.output.display()
        ))
    })?;
    write_private(&a.output, imported.toml.as_bytes(), a.force)?;

    println!(
        "{}: written (mode 0600), {}",
        a.output.display(),
        check::summary(&loaded.config)
    );
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    if lossy {
        println!(
            "{}: not UTF-8; undecodable bytes were replaced, check the text fields",
            a.input.display()
        );
    }
    if imported.disabled_examples > 0 {
        println!(
            "ignored {} disabled example line(s) (#######)",
            imported.disabled_examples
        );
    }
    if !imported.unmapped.is_empty() {
        println!(
            "not carried over, or needing your attention ({}):",
            imported.unmapped.len()
        );
        for u in &imported.unmapped {
            println!("  {u}");
        }
    }
    Ok(())
}

fn refuse_overwrite(out: &Path) -> CliError {
    CliError::BadInput(format!(
        "{}: already exists; nothing written (use --force to replace it)",
        out.display()
    ))
}

/// Writes `data` to `out` so that no one ever sees a partial file or one
/// with wider permissions: a 0600 temporary file in the same directory,
/// synced, then renamed (with `force`) or hard-linked (without, which
/// fails if `out` exists, so an existing file is never replaced).
fn write_private(out: &Path, data: &[u8], force: bool) -> Result<(), CliError> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = out
        .file_name()
        .ok_or_else(|| CliError::BadInput(format!("{}: not a file name", out.display())))?;
    let tmp = dir.join(format!(
        ".{}.import-legacy.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let failed = |what: &str, e: std::io::Error| {
        CliError::Failed(anyhow::anyhow!("{what} {}: {e}", tmp.display()))
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| failed("creating", e))?;
    let written = f
        // The umask can only narrow 0600, but be explicit: this file may
        // hold a password.
        .set_permissions(Permissions::from_mode(0o600))
        .and_then(|()| f.write_all(data))
        .and_then(|()| f.sync_all());
    drop(f);
    let placed = written.and_then(|()| {
        if force {
            fs::rename(&tmp, out)
        } else {
            fs::hard_link(&tmp, out).and_then(|()| fs::remove_file(&tmp))
        }
    });
    if let Err(e) = placed {
        let _ = fs::remove_file(&tmp);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            return Err(refuse_overwrite(out));
        }
        return Err(CliError::Failed(anyhow::anyhow!(
            "writing {}: {e}",
            out.display()
        )));
    }
    // Make the new directory entry durable; a failure here loses nothing
    // already promised, so it is not an error.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
