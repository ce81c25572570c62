//! `mailha exporter`: serve Prometheus metrics of the cluster and of
//! mailha on `[exporter] listen` (see `crate::exporter`). Read-only.

use super::{Cli, CliError, load_config};
use crate::exporter::{Collector, Sources, metrics, server};
use anyhow::Context;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The alert spool whose depth is reported.
    #[arg(long, env = "MAILHA_SPOOL", default_value = crate::alert::spool::DEFAULT_DIR)]
    pub spool: PathBuf,
    /// The lease keeper's abstract socket (tests point it elsewhere).
    #[arg(long, default_value = crate::lease::client::DEFAULT_SOCKET, hide = true)]
    pub lease_socket: String,
    /// Pacemaker's on-disk CIB, read for config drift (tests point it
    /// elsewhere).
    #[arg(long, default_value = crate::watch::CIB_FILE, hide = true)]
    pub cib_file: PathBuf,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), CliError> {
    let loaded = load_config(&cli.config)?;
    let c = &loaded.config;
    let ex = &c.exporter;
    let auth = match &ex.auth {
        None => None,
        Some(b) => Some(server::Auth::new(
            &b.user,
            &read_password(&b.password_file)?,
        )),
    };
    let lease =
        c.fencing.mode == crate::config::model::FencingMode::Lease && c.storage.lease.is_some();
    let collector = Arc::new(Collector::new(Sources {
        crm_mon: "crm_mon".into(),
        crm_mon_deadline: ex.scrape_timeout,
        keeper_socket: lease.then(|| a.lease_socket.clone()),
        spool: a.spool.clone(),
        drift: Some(crate::exporter::DriftSources {
            config: cli.config.clone(),
            cib_file: a.cib_file.clone(),
        }),
    }));
    let tls = match &ex.tls {
        None => None,
        Some(t) => Some(
            crate::exporter::tls::Source::open(&t.cert_file, &t.key_file)
                .map_err(|e| CliError::BadInput(e.to_string()))?,
        ),
    };
    let listener = std::net::TcpListener::bind(ex.listen)
        .with_context(|| format!("listening on {}", ex.listen))?;
    eprintln!(
        "mailha exporter: serving {0}://{1}/metrics and the status page {0}://{1}/{2}",
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr().unwrap_or(ex.listen),
        if auth.is_some() { " (basic auth)" } else { "" }
    );
    let language = c
        .alerts
        .as_ref()
        .map(|a| a.language)
        .unwrap_or(crate::config::model::Language::En);
    let host = crate::host::hostname();
    let handler = Arc::new(move |req: &server::Request| {
        let c = collector.clone();
        let pages = server::Pages {
            metrics: &|| metrics::render(&c.observe()),
            status: &|l| c.page(l, &host),
            language,
        };
        server::route(req, auth.as_ref(), &pages)
    });
    // A scraper gone before a late answer (Prometheus at its scrape
    // timeout, behind a hung crm_mon) ended the exporter by SIGPIPE,
    // which systemd counts as a clean exit: no restart under on-failure.
    super::writes_to_gone_peers_are_errors();
    server::serve(listener, server::Limits::default(), tls, handler)
        .context("serving metrics")
        .map_err(CliError::Failed)
}

/// The basic-auth password: the file's first line. A file others can
/// read is refused here too (`mailha check` says so first).
fn read_password(path: &Path) -> Result<String, CliError> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("exporter.password_file {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(CliError::BadInput(format!(
            "exporter.password_file {} is mode {:04o}: group or others can read it (chmod 600)",
            path.display(),
            meta.permissions().mode() & 0o7777
        )));
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading exporter.password_file {}", path.display()))?;
    crate::exporter::password_of(&text)
        .map(str::to_string)
        .ok_or_else(|| {
            CliError::BadInput(format!(
                "exporter.password_file {} is empty",
                path.display()
            ))
        })
}
