//! `[exporter]`: the metrics daemon's address, deadline, basic auth and TLS.

use super::{Ctx, abs_path, duration, mode_check, root};
use crate::config::model::{BasicAuth, Exporter, ExporterRunBy, ExporterTls};
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
    let tls = match (&raw.tls_cert_file, &raw.tls_key_file) {
        (None, None) => None,
        (Some(_), None) => {
            ctx.err(
                p.key("tls_cert_file"),
                "a tls_cert_file needs a tls_key_file",
            );
            None
        }
        (None, Some(_)) => {
            ctx.err(
                p.key("tls_key_file"),
                "a tls_key_file needs a tls_cert_file",
            );
            None
        }
        (Some(c), Some(k)) => {
            let cert = abs_path(ctx, p.key("tls_cert_file"), c);
            let key = abs_path(ctx, p.key("tls_key_file"), k);
            // Certificates are often deployed after the config (and
            // renewed under it): a missing file is a warning here, the
            // exporter refuses to start without it.
            for (field, f, path, secret) in [
                ("tls_cert_file", c, &cert, false),
                ("tls_key_file", k, &key, true),
            ] {
                let Some(path) = path else { continue };
                match std::fs::metadata(path) {
                    Err(e) => ctx.warn(
                        p.key(field),
                        format!("{f}: {e}: the exporter will not start until it exists"),
                    ),
                    Ok(m) if !m.is_file() => ctx.err(p.key(field), format!("{f} is not a file")),
                    Ok(m) if secret => mode_check(ctx, p.key(field), f, m.permissions().mode()),
                    Ok(_) => {}
                }
            }
            cert.zip(key).map(|(cert_file, key_file)| ExporterTls {
                cert_file,
                key_file,
            })
        }
    };
    if auth.is_some() && tls.is_none() && !listen.ip().is_loopback() {
        ctx.warn_hint(
            p.key("listen"),
            format!("{listen} is reachable from other hosts and the password crosses the network in clear"),
            "set tls_cert_file and tls_key_file, or keep the network private",
        );
    }
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
        tls,
    }
}
