//! `[exporter]`: the metrics daemon's address, deadline and basic auth.

use super::{Ctx, abs_path, duration, mode_check, root};
use crate::config::model::{BasicAuth, Exporter, ExporterRunBy};
use crate::config::raw::RawExporter;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// ClusterLabs' ha_cluster_exporter's port, on loopback: a dashboard built
/// for it finds mailha where it looked, and nothing is exposed until the
/// operator says so.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9664";

pub(super) fn exporter(ctx: &mut Ctx, raw: Option<&RawExporter>) -> Exporter {
    let p = root().key("exporter");
    let empty = RawExporter::default();
    let raw = raw.unwrap_or(&empty);
    let run_by = match raw.run_by.as_deref() {
        None | Some("systemd") => ExporterRunBy::Systemd,
        Some("pacemaker") => ExporterRunBy::Pacemaker,
        Some(other) => {
            ctx.err_hint(
                p.key("run_by"),
                format!("{other:?} is neither \"systemd\" nor \"pacemaker\""),
                "\"systemd\": `systemctl enable --now mailha-exporter` on each node; \"pacemaker\": a clone in the cluster",
            );
            ExporterRunBy::Systemd
        }
    };
    let default_listen: SocketAddr = DEFAULT_LISTEN.parse().expect("an address");
    let listen = match raw.listen.as_deref() {
        None => default_listen,
        Some(s) => {
            match s.parse::<SocketAddr>() {
                Ok(a) if a.port() == 0 => {
                    ctx.err_hint(
                    p.key("listen"),
                    format!("{s:?}: port 0 is whatever the kernel picks; Prometheus needs a known one"),
                    "e.g. \"127.0.0.1:9664\"",
                );
                    default_listen
                }
                Ok(a) => a,
                Err(_) => {
                    ctx.err_hint(
                        p.key("listen"),
                        format!("{s:?} is not an address and port"),
                        "write e.g. \"127.0.0.1:9664\" or \"[::1]:9664\" (no host names)",
                    );
                    default_listen
                }
            }
        }
    };
    let scrape_timeout = duration(ctx, p.key("scrape_timeout"), &raw.scrape_timeout, "5s");
    if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&scrape_timeout) {
        ctx.err_hint(
            p.key("scrape_timeout"),
            format!(
                "{} is out of range",
                humantime::format_duration(scrape_timeout)
            ),
            "1s to 60s; below Prometheus's scrape_timeout (10s by default)",
        );
    }
    let auth = match (&raw.user, &raw.password_file) {
        (None, None) => None,
        (Some(_), None) => {
            ctx.err(p.key("user"), "a user needs a password_file");
            None
        }
        (None, Some(_)) => {
            ctx.err(p.key("password_file"), "a password_file needs a user");
            None
        }
        (Some(u), Some(f)) => {
            // RFC 7617: the user ends at the first colon.
            if u.is_empty() || u.contains(':') || u.chars().any(|c| c.is_control()) {
                ctx.err(
                    p.key("user"),
                    format!("{u:?}: a user is not empty and has no colon or control character"),
                );
            }
            abs_path(ctx, p.key("password_file"), f).map(|pf| {
                match std::fs::metadata(&pf) {
                    // Secrets are often deployed after the config.
                    Err(e) => ctx.warn(
                        p.key("password_file"),
                        format!("{f}: {e}: the exporter will not start until it exists"),
                    ),
                    Ok(m) if !m.is_file() => {
                        ctx.err(p.key("password_file"), format!("{f} is not a file"))
                    }
                    Ok(m) => mode_check(ctx, p.key("password_file"), f, m.permissions().mode()),
                }
                BasicAuth {
                    user: u.clone(),
                    password_file: pf,
                }
            })
        }
    };
    if auth.is_none()
        && raw.user.is_none()
        && raw.password_file.is_none()
        && !listen.ip().is_loopback()
    {
        ctx.warn_hint(
            p.key("listen"),
            format!("{listen} is reachable from other hosts and nothing asks who scrapes"),
            "set user and password_file, or firewall the port",
        );
    }
    Exporter {
        run_by,
        listen,
        scrape_timeout,
        auth,
    }
}
