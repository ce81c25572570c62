//! `mailha report [--since 2h | --from T --to T] -o FILE.tar.gz`
//! (`ops::report`): this node's and the peer's (over setup's SSH channel)
//! CIB, crm_mon, the transition inputs and the journal of the window, the
//! lease keeper's state, the alert spool's events and their incidents,
//! mailha.toml and `mailha check --live`, each text scrubbed of secrets,
//! bundled 0600 with a manifest. What cannot be collected is named in the
//! manifest; the bundle is written anyway.

use super::{Cli, CliError};
use crate::ops::report::{self as r, Item};
use anyhow::Context;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn parse_time(s: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("{s:?}: {e} (e.g. 2026-12-05 14:00:00, UTC)"))
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The window: this long back from now (default 2h).
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with_all = ["from", "to"])]
    pub since: Option<Duration>,
    /// The window's start (UTC, e.g. "2026-12-05 14:00:00").
    #[arg(long, value_parser = parse_time, requires = "to")]
    pub from: Option<SystemTime>,
    /// The window's end (UTC).
    #[arg(long, value_parser = parse_time, requires = "from")]
    pub to: Option<SystemTime>,
    /// The bundle to write (a .tar.gz, mode 0600).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// This node only (the peer not asked).
    #[arg(long)]
    pub no_peer: bool,
    /// Extra ssh options, e.g. `-i KEY` (repeatable).
    #[arg(long = "ssh-option", value_name = "OPT", allow_hyphen_values = true)]
    pub ssh_options: Vec<String>,
    /// The peer's side: this node's texts as JSON on stdout (internal).
    #[arg(long, hide = true)]
    pub local: bool,
    /// The window in seconds since the epoch (with --local).
    #[arg(long, hide = true, num_args = 2)]
    pub window_s: Vec<u64>,
}

const DEADLINE: Duration = Duration::from_secs(30);
const SSH_DEADLINE: Duration = Duration::from_secs(180);

/// One collected text, or why not.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Collected {
    name: String,
    from: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn run_text(argv: &[&str], deadline: Duration) -> Result<String, String> {
    let o = crate::exec::run(argv, &[], None, deadline).map_err(|e| e.to_string())?;
    if o.success() {
        Ok(o.stdout)
    } else {
        Err(format!("exit {:?}: {}", o.code, o.stderr.trim()))
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// This node's texts for the window, scrubbed.
fn collect(cli: &Cli, from: SystemTime, to: SystemTime) -> Vec<Collected> {
    let loaded = crate::config::load(&cli.config);
    let mut secrets = loaded
        .as_ref()
        .ok()
        .and_then(|l| l.config.alerts.as_ref())
        .map(crate::alert::known_secrets)
        .unwrap_or_default();
    if let Some(a) = loaded
        .as_ref()
        .ok()
        .and_then(|l| l.config.exporter.auth.as_ref())
        && let Ok(t) = std::fs::read_to_string(&a.password_file)
        && let Some(p) = crate::exporter::password_of(&t)
    {
        secrets.push(p.to_string());
    }
    let mut out: Vec<Collected> = Vec::new();
    let mut put = |name: &str, from: &str, r: Result<String, String>| {
        let (text, error) = match r {
            Ok(t) => (Some(r::scrub(&t, &secrets)), None),
            Err(e) => (None, Some(r::scrub(&e, &secrets))),
        };
        out.push(Collected {
            name: name.into(),
            from: from.into(),
            text,
            error,
        });
    };
    put(
        "cib.xml",
        "cibadmin --query",
        run_text(&["cibadmin", "--query"], DEADLINE),
    );
    put(
        "crm_mon.xml",
        "crm_mon --one-shot --output-as=xml --include=all",
        crate::cluster::crm_mon().map_err(|e| e.to_string()),
    );
    let dir = Path::new("/var/lib/pacemaker/pengine");
    let files: Vec<(PathBuf, SystemTime)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
                .collect()
        })
        .unwrap_or_default();
    for p in r::inputs_in_window(&files, from, to) {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("pe");
        let name = format!("pengine/{}", name.trim_end_matches(".bz2"));
        let path = p.display().to_string();
        put(
            &name,
            &format!("bzcat {path}"),
            run_text(&["bzcat", "--", &path], DEADLINE),
        );
    }
    let (a, b) = (format!("@{}", secs(from)), format!("@{}", secs(to)));
    put(
        "journal.txt",
        "journalctl -u corosync -u pacemaker -u mailha-lease (the window)",
        run_text(
            &[
                "journalctl",
                "--no-pager",
                "-o",
                "short-iso-precise",
                "--since",
                &a,
                "--until",
                &b,
                "-u",
                "corosync",
                "-u",
                "pacemaker",
                "-u",
                "mailha-lease",
            ],
            DEADLINE,
        ),
    );
    put(
        "lease.json",
        "the lease keeper's status (this node's and the peer's slot)",
        crate::lease::client::status(crate::lease::client::DEFAULT_SOCKET, Duration::from_secs(2))
            .map(|s| serde_json::to_string_pretty(&s).expect("serializable")),
    );
    let spool = crate::alert::spool::default_dir();
    let events: Vec<_> = crate::alert::spool::Spool::all_events(&spool)
        .into_iter()
        .filter(|e| {
            let t = UNIX_EPOCH + Duration::from_millis(e.recorded_at_ms);
            t >= from && t <= to
        })
        .collect();
    let entries =
        crate::ops::history::merge(Vec::new(), crate::ops::history::from_events(&events), 0);
    put(
        "alerts.json",
        &format!(
            "{} (events of the window, and their incidents)",
            spool.display()
        ),
        Ok(serde_json::to_string_pretty(&serde_json::json!({
            "events": events,
            "incidents": crate::ops::history::incidents(&entries, crate::ops::history::GAP),
        }))
        .expect("serializable")),
    );
    put(
        "mailha.toml",
        &cli.config.display().to_string(),
        std::fs::read_to_string(&cli.config)
            .map(|t| crate::configsync::record::redact(&t).0)
            .map_err(|e| e.to_string()),
    );
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "mailha".into());
    let cfg = cli.config.display().to_string();
    put(
        "check-live.txt",
        "mailha check --live",
        crate::exec::run(
            &[exe.as_str(), "--config", &cfg, "check", "--live"],
            &[],
            None,
            Duration::from_secs(60),
        )
        .map(|o| format!("exit {:?}\n{}{}", o.code, o.stdout, o.stderr))
        .map_err(|e| e.to_string()),
    );
    out
}

/// A name from the peer, made safe to join under its directory.
fn safe_name(n: &str) -> Option<String> {
    let ok = !n.is_empty()
        && n.len() < 200
        && n.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    ok.then(|| n.to_string())
}

fn write_node(
    dir: &Path,
    node: &str,
    got: Vec<Collected>,
    items: &mut Vec<Item>,
) -> anyhow::Result<()> {
    for c in got {
        let Some(name) = safe_name(&c.name) else {
            items.push(Item {
                path: format!("{node}/?"),
                from: c.from,
                bytes: None,
                error: Some(format!("refused a file name: {:?}", c.name)),
            });
            continue;
        };
        let path = format!("{node}/{name}");
        match c.text {
            Some(t) => {
                let p = dir.join(&path);
                std::fs::create_dir_all(p.parent().expect("a parent"))?;
                std::fs::write(&p, &t).with_context(|| p.display().to_string())?;
                items.push(Item {
                    path,
                    from: c.from,
                    bytes: Some(t.len()),
                    error: None,
                });
            }
            None => items.push(Item {
                path,
                from: c.from,
                bytes: None,
                error: c.error,
            }),
        }
    }
    Ok(())
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    let (from, to) = match (a.from, a.to, &a.window_s[..]) {
        (_, _, [f, t]) => (
            UNIX_EPOCH + Duration::from_secs(*f),
            UNIX_EPOCH + Duration::from_secs(*t),
        ),
        (Some(f), Some(t), _) => (f, t),
        _ => {
            let now = SystemTime::now();
            (now - a.since.unwrap_or(Duration::from_secs(2 * 3600)), now)
        }
    };
    if from > to {
        return Err(CliError::BadInput(
            "mailha report: --from is after --to; nothing was written".into(),
        ));
    }
    if a.local {
        println!("{}", serde_json::json!({ "files": collect(cli, from, to) }));
        return Ok(());
    }
    let Some(out) = a.output.as_ref() else {
        return Err(CliError::BadInput(
            "mailha report: -o FILE.tar.gz is required; nothing was written".into(),
        ));
    };
    let config = crate::config::load(&cli.config).ok();
    let host = crate::host::hostname();
    let (me, peer) = match config.as_ref().and_then(|l| {
        crate::host::me_and_peer(&l.config, &host, &crate::host::bound_addresses())
            .map(|(m, p)| (m.name.clone(), Some(p.clone())))
    }) {
        Some(x) => x,
        None => (safe_name(&host).unwrap_or_else(|| "this-node".into()), None),
    };
    let stamp = humantime::format_rfc3339_seconds(to)
        .to_string()
        .replace(':', "");
    let top = format!("mailha-report-{stamp}");
    let tmp = tempfile::Builder::new()
        .prefix("mailha-report")
        .tempdir()
        .context("temporary directory")?;
    let dir = tmp.path().join(&top);
    let mut items = Vec::new();
    let mut notes = Vec::new();
    write_node(&dir, &me, collect(cli, from, to), &mut items)?;
    match (&peer, a.no_peer) {
        (_, true) => notes.push("the peer was not asked (--no-peer)".to_string()),
        (None, _) => {
            notes.push("this machine is not a node of mailha.toml: the peer was not asked".into())
        }
        (Some(p), false) => {
            let cfg = &config
                .as_ref()
                .expect("a peer comes from the config")
                .config;
            let (f, t) = (secs(from).to_string(), secs(to).to_string());
            let argv = crate::setup::ssh_to(
                cfg,
                p,
                &a.ssh_options,
                &["mailha", "report", "--local", "--window-s", &f, &t],
            );
            let got = crate::exec::run(&argv, &[], None, SSH_DEADLINE)
                .map_err(|e| e.to_string())
                .and_then(|o| {
                    if o.success() {
                        serde_json::from_str::<serde_json::Value>(o.stdout.trim())
                            .map_err(|e| format!("its answer: {e}"))
                    } else {
                        Err(format!("exit {:?}: {}", o.code, o.stderr.trim()))
                    }
                })
                .and_then(|v| {
                    serde_json::from_value::<Vec<Collected>>(v["files"].clone())
                        .map_err(|e| format!("its answer: {e}"))
                });
            let pname = safe_name(&p.name).unwrap_or_else(|| "peer".into());
            match got {
                Ok(files) => write_node(&dir, &pname, files, &mut items)?,
                Err(e) => items.push(Item {
                    path: format!("{pname}/"),
                    from: format!("ssh {} mailha report --local", p.name),
                    bytes: None,
                    error: Some(e),
                }),
            }
        }
    }
    let window = format!(
        "{} .. {} (UTC)",
        humantime::format_rfc3339_seconds(from),
        humantime::format_rfc3339_seconds(to)
    );
    std::fs::write(
        dir.join("MANIFEST.txt"),
        r::manifest(&window, &items, &notes),
    )
    .context("writing the manifest")?;
    // The bundle is made 0600 before anything is in it.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(out)
        .with_context(|| out.display().to_string())?;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o600))
        .with_context(|| out.display().to_string())?;
    let outs = out.display().to_string();
    let tmps = tmp.path().display().to_string();
    let o = crate::exec::run(
        &["tar", "-czf", &outs, "-C", &tmps, &top],
        &[],
        None,
        Duration::from_secs(120),
    )
    .context("tar")?;
    if !o.success() {
        return Err(CliError::Failed(anyhow::anyhow!(
            "tar: {}",
            o.stderr.trim()
        )));
    }
    let missing = items.iter().filter(|i| i.bytes.is_none()).count();
    println!(
        "wrote {outs} (0600): {} files from {}{}; MANIFEST.txt says what is inside",
        items.len() - missing,
        if peer.is_some() && !a.no_peer {
            "both nodes"
        } else {
            "this node"
        },
        if missing > 0 {
            format!(", {missing} missing (named in the manifest)")
        } else {
            String::new()
        }
    );
    Ok(())
}
