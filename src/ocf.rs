//! The OCF 1.1 resource agent contract, shared by mailha's agents: exit
//! codes from one enum, parameters from one table (parsing, validation and
//! meta-data XML are all generated from it), and the dispatch of actions.
//!
//! Reference: the OCF Resource Agent API 1.1 (ClusterLabs/OCF-spec,
//! ra/1.1/resource-agent-api.md) and Pacemaker Explained, "Resource Agents".

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// OCF exit codes (spec section "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OcfStatus {
    Success = 0,
    ErrGeneric = 1,
    ErrArgs = 2,
    ErrUnimplemented = 3,
    ErrPerm = 4,
    ErrInstalled = 5,
    ErrConfigured = 6,
    NotRunning = 7,
}

impl OcfStatus {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A failure with the status it means and the reason Pacemaker shows
/// (`ocf-exit-reason:` on stderr).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct OcfError {
    pub status: OcfStatus,
    pub reason: String,
}

impl OcfError {
    pub fn new(status: OcfStatus, reason: impl Into<String>) -> Self {
        OcfError {
            status,
            reason: reason.into(),
        }
    }
    pub fn configured(reason: impl Into<String>) -> Self {
        Self::new(OcfStatus::ErrConfigured, reason)
    }
    pub fn generic(reason: impl Into<String>) -> Self {
        Self::new(OcfStatus::ErrGeneric, reason)
    }
    pub fn not_running(reason: impl Into<String>) -> Self {
        Self::new(OcfStatus::NotRunning, reason)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Boolean,
}

impl ParamType {
    fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
        }
    }
}

/// One row of an agent's parameter table.
pub struct Param {
    pub name: &'static str,
    pub kind: ParamType,
    pub required: bool,
    pub unique: bool,
    pub default: Option<&'static str>,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    /// Validates a value; the message names what is wrong.
    pub check: fn(&str) -> Result<(), String>,
}

impl Param {
    /// A row of the table; `unique` is set with struct update syntax where
    /// it applies.
    pub const fn new(
        name: &'static str,
        kind: ParamType,
        required: bool,
        default: Option<&'static str>,
        shortdesc: &'static str,
        longdesc: &'static str,
        check: fn(&str) -> Result<(), String>,
    ) -> Param {
        Param {
            name,
            kind,
            required,
            unique: false,
            default,
            shortdesc,
            longdesc,
            check,
        }
    }
}

/// A TCP port, 1..65535.
pub fn check_port(v: &str) -> Result<(), String> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{v:?} is not a port")),
    }
}

pub struct Action {
    pub name: &'static str,
    pub timeout: Duration,
    pub interval: Option<Duration>,
    pub depth: Option<u32>,
}

impl Action {
    /// A one-shot action (start, stop, validate-all, meta-data).
    pub const fn once(name: &'static str, timeout_s: u64) -> Action {
        Action {
            name,
            timeout: Duration::from_secs(timeout_s),
            interval: None,
            depth: None,
        }
    }
    /// A recurring monitor at `depth`.
    pub const fn monitor(timeout_s: u64, interval_s: u64, depth: u32) -> Action {
        Action {
            name: "monitor",
            timeout: Duration::from_secs(timeout_s),
            interval: Some(Duration::from_secs(interval_s)),
            depth: Some(depth),
        }
    }
}

/// An agent's static description.
pub struct AgentSpec {
    pub name: &'static str,
    pub version: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub params: &'static [Param],
    pub actions: &'static [Action],
}

fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// OCF 1.1 meta-data, generated from the tables.
pub fn meta_data(a: &AgentSpec) -> String {
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n");
    let _ = writeln!(
        s,
        "<resource-agent name=\"{}\" version=\"{}\">",
        esc(a.name),
        esc(a.version)
    );
    s.push_str("  <version>1.1</version>\n");
    let _ = writeln!(s, "  <longdesc lang=\"en\">{}</longdesc>", esc(a.longdesc));
    let _ = writeln!(
        s,
        "  <shortdesc lang=\"en\">{}</shortdesc>",
        esc(a.shortdesc)
    );
    s.push_str("  <parameters>\n");
    for p in a.params {
        // OCF 1.0 attributes only: the distribution's ocf-tester checks
        // meta-data against ra-api-1.dtd, which has no `reloadable` or
        // `unique-group`.
        let _ = writeln!(
            s,
            "    <parameter name=\"{}\" required=\"{}\" unique=\"{}\">",
            p.name, p.required as u8, p.unique as u8,
        );
        let _ = writeln!(
            s,
            "      <longdesc lang=\"en\">{}</longdesc>",
            esc(p.longdesc)
        );
        let _ = writeln!(
            s,
            "      <shortdesc lang=\"en\">{}</shortdesc>",
            esc(p.shortdesc)
        );
        match p.default {
            Some(d) => {
                let _ = writeln!(
                    s,
                    "      <content type=\"{}\" default=\"{}\"/>",
                    p.kind.name(),
                    esc(d)
                );
            }
            None => {
                let _ = writeln!(s, "      <content type=\"{}\"/>", p.kind.name());
            }
        }
        s.push_str("    </parameter>\n");
    }
    s.push_str("  </parameters>\n  <actions>\n");
    for act in a.actions {
        let _ = write!(
            s,
            "    <action name=\"{}\" timeout=\"{}\"",
            act.name,
            secs(act.timeout)
        );
        if let Some(i) = act.interval {
            let _ = write!(s, " interval=\"{}\"", secs(i));
        }
        if let Some(d) = act.depth {
            let _ = write!(s, " depth=\"{d}\"");
        }
        s.push_str("/>\n");
    }
    s.push_str("  </actions>\n</resource-agent>\n");
    s
}

/// The parameters as Pacemaker passed them (`OCF_RESKEY_<name>`), checked
/// against the table: unknown names are ignored (Pacemaker passes meta
/// attributes too), a missing required one or a failed check is
/// `OCF_ERR_CONFIGURED`. Defaults are filled in.
pub fn read_params(
    a: &AgentSpec,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<&'static str, String>, OcfError> {
    let mut out = BTreeMap::new();
    for p in a.params {
        let v = env(&format!("OCF_RESKEY_{}", p.name));
        let v = match (v, p.default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.to_string(),
            (None, None) if p.required => {
                return Err(OcfError::configured(format!(
                    "parameter {} is required",
                    p.name
                )));
            }
            (None, None) => continue,
        };
        // Control characters have no business in any parameter: refuse
        // them before any per-parameter check sees the value.
        if v.chars().any(|c| c.is_control()) {
            return Err(OcfError::configured(format!(
                "parameter {} contains a control character",
                p.name
            )));
        }
        let typed_ok = match p.kind {
            ParamType::String => Ok(()),
            ParamType::Integer => v
                .parse::<i64>()
                .map(|_| ())
                .map_err(|_| format!("{v:?} is not an integer")),
            ParamType::Boolean => parse_bool(&v)
                .map(|_| ())
                .ok_or_else(|| format!("{v:?} is not a boolean")),
        };
        typed_ok
            .and_then(|_| (p.check)(&v))
            .map_err(|m| OcfError::configured(format!("parameter {}: {m}", p.name)))?;
        out.insert(p.name, v);
    }
    Ok(out)
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// How long this action may take: Pacemaker's `OCF_RESKEY_CRM_meta_timeout`
/// (milliseconds), else the agent's default for the action.
pub fn action_timeout(
    a: &AgentSpec,
    action: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Duration {
    env("OCF_RESKEY_CRM_meta_timeout")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .or_else(|| {
            a.actions
                .iter()
                .find(|x| x.name == action)
                .map(|x| x.timeout)
        })
        .unwrap_or(Duration::from_secs(20))
}

/// The operation a `crm_resource --fail` records: mailha's report of a
/// daemon whose unit ended of itself (`agents::service::ended`), worded as
/// such wherever a failure is shown (Pacemaker's reason for it,
/// "Simulated failure", would mislead).
pub const TOLD_DEATH_TASK: &str = "asyncmon";

/// A probe is a monitor with interval 0 (spec: "monitor ... probe").
pub fn is_probe(env: &dyn Fn(&str) -> Option<String>) -> bool {
    env("OCF_RESKEY_CRM_meta_interval").is_none_or(|v| v == "0")
}

/// A plain absolute path: no `..`, no whitespace or control characters.
pub fn check_plain_path(v: &str) -> Result<(), String> {
    if !v.starts_with('/')
        || v.split('/').any(|c| c == "..")
        || v.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!("{v:?} is not a plain absolute path"));
    }
    Ok(())
}

pub fn no_check(_: &str) -> Result<(), String> {
    Ok(())
}

/// Checked parameters by name.
pub type Params = BTreeMap<&'static str, String>;

/// The common front of every agent: `meta-data` from the table, unknown
/// actions refused, parameters read and checked before anything else.
/// Returns the checked parameters and the action's timeout, or the
/// finished result (meta-data, refusal) as `Err(Ok(..))`/`Err(Err(..))`.
pub fn prepare(
    a: &AgentSpec,
    action: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Params, Duration), Result<OcfStatus, OcfError>> {
    match action {
        "meta-data" => {
            print!("{}", meta_data(a));
            return Err(Ok(OcfStatus::Success));
        }
        "start" | "stop" | "monitor" | "validate-all" => {}
        other => {
            return Err(Err(OcfError::new(
                OcfStatus::ErrUnimplemented,
                format!("action {other:?} is not implemented"),
            )));
        }
    }
    let params = read_params(a, env).map_err(Err)?;
    Ok((params, action_timeout(a, action, env)))
}

/// What every agent's entry point looks like: the action, the
/// environment, the proc root.
pub type AgentMain =
    fn(&str, &dyn Fn(&str) -> Option<String>, &std::path::Path) -> Result<OcfStatus, OcfError>;

/// Ends the agent: prints the exit reason where Pacemaker reads it and
/// returns the exit code.
pub fn finish(r: Result<OcfStatus, OcfError>) -> std::process::ExitCode {
    match r {
        Ok(s) => std::process::ExitCode::from(s.code()),
        Err(e) => {
            // Pacemaker records the first line after this prefix as the
            // operation's exit reason (shown by crm_mon).
            eprintln!("ocf-exit-reason:{}", e.reason.replace('\n', " "));
            std::process::ExitCode::from(e.status.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positive(v: &str) -> Result<(), String> {
        if v.starts_with('-') {
            Err("must not be negative".into())
        } else {
            Ok(())
        }
    }

    static PARAMS: &[Param] = &[
        Param {
            name: "path",
            kind: ParamType::String,
            required: true,
            unique: true,
            default: None,
            shortdesc: "a path",
            longdesc: "A <path>.",
            check: no_check,
        },
        Param {
            name: "count",
            kind: ParamType::Integer,
            required: false,
            unique: false,
            default: Some("3"),
            shortdesc: "count",
            longdesc: "How many.",
            check: positive,
        },
    ];
    static SPEC: AgentSpec = AgentSpec {
        name: "demo",
        version: "1.0",
        shortdesc: "demo",
        longdesc: "demo agent",
        params: PARAMS,
        actions: &[Action {
            name: "monitor",
            timeout: Duration::from_secs(20),
            interval: Some(Duration::from_secs(10)),
            depth: Some(0),
        }],
    };

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn meta_data_is_generated_from_the_table_and_escaped() {
        let md = meta_data(&SPEC);
        assert!(md.contains("<parameter name=\"path\" required=\"1\" unique=\"1\">"));
        assert!(md.contains("<parameter name=\"count\" required=\"0\" unique=\"0\">"));
        assert!(md.contains("A &lt;path&gt;."));
        assert!(md.contains("<content type=\"integer\" default=\"3\"/>"));
        assert!(
            md.contains("<action name=\"monitor\" timeout=\"20s\" interval=\"10s\" depth=\"0\"/>")
        );
        crate::cib::xml::El::parse(&md).expect("well-formed");
    }

    #[test]
    fn params_get_defaults_and_checks() {
        let p = read_params(&SPEC, &env_of(&[("OCF_RESKEY_path", "/x")])).unwrap();
        assert_eq!(p["count"], "3");
        let e = read_params(&SPEC, &env_of(&[])).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrConfigured);
        let e = read_params(
            &SPEC,
            &env_of(&[("OCF_RESKEY_path", "/x"), ("OCF_RESKEY_count", "-1")]),
        )
        .unwrap_err();
        assert_eq!(e.reason, "parameter count: must not be negative");
        let e = read_params(
            &SPEC,
            &env_of(&[("OCF_RESKEY_path", "/x"), ("OCF_RESKEY_count", "two")]),
        )
        .unwrap_err();
        assert!(e.reason.contains("not an integer"));
    }

    #[test]
    fn a_control_character_in_any_parameter_is_refused() {
        let e = read_params(&SPEC, &env_of(&[("OCF_RESKEY_path", "/x\n/y")])).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrConfigured);
    }

    #[test]
    fn the_timeout_comes_from_pacemaker_else_the_table() {
        assert_eq!(
            action_timeout(
                &SPEC,
                "monitor",
                &env_of(&[("OCF_RESKEY_CRM_meta_timeout", "7000")])
            ),
            Duration::from_secs(7)
        );
        assert_eq!(
            action_timeout(&SPEC, "monitor", &env_of(&[])),
            Duration::from_secs(20)
        );
    }
}
