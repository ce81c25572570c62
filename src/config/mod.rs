//! The typed configuration, `/etc/mailha/mailha.toml`.
//!
//! Loading has two phases (see DESIGN section 4): `raw` deserializes the
//! text with every unknown key rejected, then `validate` checks meaning and
//! builds the `model`. Every problem is located as `file:line:column` plus
//! the dotted field by `diag::SourceMap`. Loading reads files and changes
//! nothing.

pub mod diag;
pub mod model;
pub mod raw;
pub mod validate;

pub use diag::{ConfigError, Diagnostic, FieldPath, Problem, Severity};
pub use model::*;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub const DEFAULT_PATH: &str = "/etc/mailha/mailha.toml";

/// A loaded config and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
    /// The source text, for digests and re-rendering.
    pub text: String,
}

pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = std::fs::metadata(path).ok().map(|m| m.permissions().mode());
    load_str(path, &text, mode)
}

/// Parses `text` as if read from `path` (with the given mode bits, when it
/// is a real file).
pub fn load_str(path: &Path, text: &str, mode: Option<u32>) -> Result<Loaded, ConfigError> {
    load_str_with(path, text, mode, None)
}

/// `load_str`, reading the eYou tree's files from `eyou_files` instead of
/// the config's `eyou_root` (see `validate::Env::eyou_files`).
pub fn load_str_with(
    path: &Path,
    text: &str,
    mode: Option<u32>,
    eyou_files: Option<&Path>,
) -> Result<Loaded, ConfigError> {
    let map = diag::SourceMap::new(text);
    let raw = parse_raw(text).map_err(|p| ConfigError::Invalid(vec![map.locate(path, p)]))?;
    let env = validate::Env {
        config_path: path,
        config_mode: mode,
        eyou_files,
    };
    let (cfg, problems) = validate::validate(&raw, &env);
    let diags: Vec<Diagnostic> = problems.into_iter().map(|p| map.locate(path, p)).collect();
    match cfg {
        Some(config) => Ok(Loaded {
            config,
            warnings: diags,
            text: text.to_string(),
        }),
        None => Err(ConfigError::Invalid(diags)),
    }
}

/// Phase one: the text as raw structs, or the first error as a `Problem`.
pub fn parse_raw(text: &str) -> Result<raw::RawConfig, Problem> {
    let de = match toml::Deserializer::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let mut p = Problem::error(
                FieldPath::root(),
                format!("not valid TOML: {}", e.message()),
            );
            p.span = e.span();
            return Err(p);
        }
    };
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = FieldPath::parse(&e.path().to_string());
        let inner = e.inner();
        let msg = inner.message().to_string();
        let mut p = Problem::error(path.clone(), msg.clone());
        p.span = inner.span();
        unknown_field_hint(p, &msg, &path)
    })
}

/// serde says "unknown field `x`, expected one of `a`, `b`": point at the
/// field itself and suggest the closest known name.
fn unknown_field_hint(mut p: Problem, msg: &str, path: &FieldPath) -> Problem {
    let Some(rest) = msg.strip_prefix("unknown field `") else {
        // A mistyped setting under [services] reads as a service table.
        if path.0.len() == 2
            && path.0.first() == Some(&diag::Seg::Key("services".into()))
            && msg.contains("expected struct RawService")
        {
            let k = path.last_key().unwrap_or_default();
            p.message = format!("{k:?} is not a setting of [services], and a service is a table");
            if let Some(s) = diag::did_you_mean(k, raw::SERVICES_SETTINGS) {
                p.hint = Some(format!("did you mean {s:?}?"));
            }
        }
        return p;
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return p;
    };
    let known: Vec<&str> = expected
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect();
    p.message = format!("unknown key {field:?}");
    if path.last_key() != Some(field) {
        p.path = path.key(field);
    }
    p.span = None;
    p.at_key = true;
    p.hint = Some(match diag::did_you_mean(field, &known) {
        Some(s) => format!("did you mean {s:?}?"),
        None => format!("known keys: {}", known.join(", ")),
    });
    p
}

/// One of `examples/*.toml`, loaded as a 0600 file (tests).
#[cfg(test)]
pub fn example(name: &str) -> Loaded {
    let text =
        std::fs::read_to_string(format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    load_str(Path::new("m.toml"), &text, Some(0o600)).unwrap()
}
