//! `mailha history [--since 24h] [--json]` (`ops::history`): crm_mon's
//! histories (cluster-wide) and this node's alert spool, as incidents.

use super::CliError;
use crate::ops::history as h;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How far back (e.g. 2h, 7d).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub since: Duration,
    /// The alert spool to read (default /var/lib/mailha/spool).
    #[arg(long, env = crate::alert::spool::ENV_DIR)]
    pub spool: Option<std::path::PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn clock(ms: u64) -> String {
    format!("{}Z", h::utc(ms))
}

pub fn run(a: &Args) -> Result<(), CliError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let since = now.saturating_sub(a.since.as_millis() as u64);
    let mut notes = Vec::new();
    let pcmk = match crate::cluster::crm_mon() {
        Ok(xml) => h::from_crm_mon(&xml).unwrap_or_else(|e| {
            notes.push(e);
            Vec::new()
        }),
        Err(e) => {
            notes.push(format!(
                "Pacemaker did not answer ({e}): only this node's alert spool"
            ));
            Vec::new()
        }
    };
    let root = a
        .spool
        .clone()
        .unwrap_or_else(crate::alert::spool::default_dir);
    let events = crate::alert::spool::Spool::all_events(&root);
    let entries = h::merge(pcmk, h::from_events(&events), since);
    let incidents = h::incidents(&entries, h::GAP);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "since_ms": since, "incidents": incidents, "notes": notes,
            }))
            .expect("serializable")
        );
        return Ok(());
    }
    for n in &notes {
        eprintln!("note: {n}");
    }
    if incidents.is_empty() {
        println!(
            "nothing recorded in the last {}",
            humantime::format_duration(a.since)
        );
        return Ok(());
    }
    for i in &incidents {
        let cause = i.cause.as_deref().unwrap_or("planned (no failure)");
        let after = i
            .mail_on
            .as_deref()
            .map(|n| format!("; the mail on {n} after it"))
            .unwrap_or_default();
        println!(
            "{}  {:>6.1} s  {cause}{after}",
            clock(i.start_ms),
            i.seconds
        );
        for e in &i.entries {
            println!(
                "    {}  {}",
                clock(e.at_ms).rsplit(' ').next().unwrap_or_default(),
                e.what
            );
        }
    }
    println!(
        "(times UTC; Pacemaker keeps only the last operations of each resource, the alert spool keeps every alert)"
    );
    Ok(())
}
