//! A real Prometheus (Debian's `prometheus` package) in the gw namespace,
//! scraping both nodes' `mailha exporter` over the lab's LAN as a
//! monitoring host would (issue 18): `lab prometheus up` starts it,
//! `lab prometheus query EXPR [--range D]` asks its HTTP API.
//!
//! Not part of `lab up`: a scrape runs crm_mon on each node (~30 ms of
//! CPU), which the timing drills should not pay for unless asked. The
//! exporters themselves run in every lab (their unit enabled by `lab up`),
//! listening on the nodes' addresses over HTTPS with basic auth: the
//! password is made at `lab up`, put into each node at [`NODE_PASSWORD`]
//! (the lab config's `[exporter] password_file`) and kept in the base dir
//! for Prometheus; each node's certificate ([`NODE_CERT`], [`NODE_KEY`])
//! is signed by the lab CA (the relay's), which Prometheus trusts.
//!
//! Prometheus runs in gw's network namespace only (its files are under
//! the root-only base dir, read through the host's mounts), recorded by PID
//! in the lab state at once; `lab down` ends whatever runs in gw.
//! Its rules are the package's own (`dist/prometheus/`), so a drill is
//! also a test of the shipped alert rules against the real exporter.

use super::state::{ProcRec, State};
use super::topology::{Aux, NODES, Net};
use super::{Lab, LabError};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const PROGRAM: &str = "/usr/bin/prometheus";
/// Prometheus's own port, on the gw address.
pub const PORT: u16 = 9090;
/// The exporters' port (the lab config's `[exporter] listen`).
pub const EXPORTER_PORT: u16 = 9664;
/// The basic-auth user of the lab config's `[exporter]`.
pub const SCRAPE_USER: &str = "prometheus";
/// The exporter's password file in each node.
pub const NODE_PASSWORD: &str = "/etc/mailha/exporter-password";
/// The exporter's certificate and key in each node (the lab config's
/// `[exporter] tls_*`), signed by the lab CA at `lab up`.
pub const NODE_CERT: &str = "/etc/mailha/exporter.crt";
pub const NODE_KEY: &str = "/etc/mailha/exporter.key";
/// A scrape every second: a switchover (~3 s) shows as several samples.
/// The exporter's own crm_mon deadline (1 s in the lab config) is within
/// the scrape timeout, so a slow crm_mon gives a stale-marked scrape
/// rather than a failed one.
pub const SCRAPE_INTERVAL: &str = "1s";
pub const SCRAPE_TIMEOUT: &str = "1s";
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Both targets up (`up == 1` for each): the first scrapes come within a
/// scrape interval of the start.
const TARGETS_DEADLINE: Duration = Duration::from_secs(30);
const HTTP_DEADLINE: Duration = Duration::from_secs(10);

/// The files of the lab's Prometheus, under the base dir.
pub fn dir(base_dir: &Path) -> PathBuf {
    base_dir.join("prometheus")
}

pub fn password_file(base_dir: &Path) -> PathBuf {
    dir(base_dir).join("password")
}

/// The rules the package ships, when this tree has them (a checkout).
pub fn shipped_rules() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/prometheus/mailha-rules.yml");
    p.exists().then_some(p)
}

/// prometheus.yml: one job, both nodes by address, each target's
/// `instance` its node name (the metrics' own `node` label stays theirs:
/// which node a sample is about, not which node said it), over HTTPS
/// verified against the lab CA `ca_file` (the address must be in each
/// node's certificate), basic auth from a file (never the password in the
/// config).
pub fn config_yaml(
    nodes: &[(String, Ipv4Addr)],
    password_file: &Path,
    ca_file: &Path,
    rules: Option<&Path>,
) -> String {
    let mut y = format!(
        "global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  scrape_timeout: {SCRAPE_TIMEOUT}\n  evaluation_interval: {SCRAPE_INTERVAL}\n"
    );
    if let Some(r) = rules {
        y += &format!("rule_files:\n  - {}\n", yaml_str(&r.display().to_string()));
    }
    y += "scrape_configs:\n  - job_name: mailha\n    scheme: https\n    tls_config:\n";
    y += &format!(
        "      ca_file: {}\n",
        yaml_str(&ca_file.display().to_string())
    );
    y += "    basic_auth:\n";
    y += &format!("      username: {SCRAPE_USER}\n");
    y += &format!(
        "      password_file: {}\n",
        yaml_str(&password_file.display().to_string())
    );
    y += "    static_configs:\n";
    for (name, addr) in nodes {
        y += &format!(
            "      - targets: ['{addr}:{EXPORTER_PORT}']\n        labels:\n          instance: {}\n",
            yaml_str(name)
        );
    }
    y
}

/// A YAML double-quoted scalar (the lab's paths and names are plain, but
/// a base dir is the operator's choice).
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// One HTTP GET to `addr` from inside network namespace `netns`, on a
/// thread of its own (setns changes only the calling thread), with extra
/// header lines (e.g. `Authorization`). The body of a 200, else an error
/// with the status line.
pub fn get_in_netns(
    netns: &str,
    addr: SocketAddr,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<String, String> {
    fetch_in_netns(netns, addr, path_and_query, headers, None)
}

/// [`get_in_netns`] over HTTPS, trusting only the CA in `ca_file` and
/// checking that `addr`'s IP is in the server's certificate.
pub fn get_https_in_netns(
    netns: &str,
    addr: SocketAddr,
    path_and_query: &str,
    headers: &[(&str, &str)],
    ca_file: &Path,
) -> Result<String, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in
        CertificateDer::pem_file_iter(ca_file).map_err(|e| format!("{}: {e}", ca_file.display()))?
    {
        roots
            .add(c.map_err(|e| format!("{}: {e}", ca_file.display()))?)
            .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    fetch_in_netns(
        netns,
        addr,
        path_and_query,
        headers,
        Some(std::sync::Arc::new(cfg)),
    )
}

fn fetch_in_netns(
    netns: &str,
    addr: SocketAddr,
    path_and_query: &str,
    headers: &[(&str, &str)],
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Result<String, String> {
    let ns = Path::new("/run/netns").join(netns);
    let f = std::fs::File::open(&ns).map_err(|e| format!("{}: {e}", ns.display()))?;
    let mut request =
        format!("GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request += &format!("{k}: {v}\r\n");
    }
    request += "\r\n";
    let path_and_query = path_and_query.to_string();
    let h = std::thread::spawn(move || -> Result<String, String> {
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns: {e}"))?;
        let s = TcpStream::connect_timeout(&addr, HTTP_DEADLINE)
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_read_timeout(Some(HTTP_DEADLINE)).ok();
        s.set_write_timeout(Some(HTTP_DEADLINE)).ok();
        let mut s: Box<dyn ReadWrite> = match tls {
            None => Box::new(s),
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::from(addr.ip());
                let conn =
                    rustls::ClientConnection::new(cfg, name).map_err(|e| format!("{addr}: {e}"))?;
                Box::new(rustls::StreamOwned::new(conn, s))
            }
        };
        s.write_all(request.as_bytes())
            .map_err(|e| format!("{addr}: {e}"))?;
        let mut raw = Vec::new();
        // Bounded: a query's answer in the lab is a few KiB.
        s.take(16 << 20)
            .read_to_end(&mut raw)
            .map_err(|e| format!("{addr}: {e}"))?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("{addr}: no HTTP head in {} bytes", raw.len()))?;
        let status = head.lines().next().unwrap_or("");
        if status.split_whitespace().nth(1) != Some("200") {
            return Err(format!("{addr}{path_and_query}: {status}: {body}"));
        }
        Ok(body.to_string())
    });
    h.join()
        .map_err(|_| "the HTTP thread panicked".to_string())?
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// `/api/v1/query?query=EXPR` or, with a range, `/api/v1/query_range`
/// over the last `range` at `step`.
pub fn query_path(expr: &str, range: Option<(Duration, Duration)>, now_s: f64) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("query", expr);
    match range {
        None => format!("/api/v1/query?{}", q.finish()),
        Some((range, step)) => {
            q.append_pair("start", &format!("{:.3}", now_s - range.as_secs_f64()));
            q.append_pair("end", &format!("{now_s:.3}"));
            q.append_pair("step", &format!("{}", step.as_secs_f64()));
            format!("/api/v1/query_range?{}", q.finish())
        }
    }
}

impl Lab<'_> {
    fn prometheus_addr(&self) -> SocketAddr {
        SocketAddr::from((Aux::Gw.addr(), PORT))
    }

    /// Starts Prometheus in gw (once: a running one is kept) and waits
    /// until it is ready and has scraped both exporters.
    pub fn prometheus_up(&self) -> Result<String, LabError> {
        let mut st = self
            .store
            .load()?
            .ok_or_else(|| LabError::NotUp(self.store.path()))?;
        if !Path::new(PROGRAM).exists() {
            return Err(LabError::Prerequisites(vec![PROGRAM.into()]));
        }
        let running = st
            .prometheus
            .iter()
            .any(|r| super::proc::is_alive(&self.proc_root, r.pid, r.start_time));
        if !running {
            self.prometheus_start(&mut st)?;
        }
        self.prometheus_wait_targets()?;
        Ok(format!(
            "prometheus at http://{} (in netns {}), scraping {}",
            self.prometheus_addr(),
            self.topo.netns(Aux::Gw),
            NODES
                .iter()
                .map(|n| format!("{}:{EXPORTER_PORT}", self.topo.node_addr(*n, Net::Lan)))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    fn prometheus_start(&self, st: &mut State) -> Result<(), LabError> {
        let d = dir(&self.base_dir);
        let data = d.join("data");
        if data.exists() {
            std::fs::remove_dir_all(&data).map_err(LabError::io(&data))?;
        }
        std::fs::create_dir_all(&data).map_err(LabError::io(&data))?;
        let nodes: Vec<(String, Ipv4Addr)> = NODES
            .iter()
            .map(|n| (self.topo.node_name(*n), self.topo.node_addr(*n, Net::Lan)))
            .collect();
        let conf = d.join("prometheus.yml");
        super::up::put(
            &conf,
            &config_yaml(
                &nodes,
                &password_file(&self.base_dir),
                &super::relay::Relay::new(&self.base_dir).ca(),
                shipped_rules().as_deref(),
            ),
            0o600,
            None,
        )?;
        let log = d.join("prometheus.log");
        let out = std::fs::File::create(&log).map_err(LabError::io(&log))?;
        let err = out.try_clone().map_err(LabError::io(&log))?;
        let ns = Path::new("/run/netns").join(self.topo.netns(Aux::Gw));
        let net = std::fs::File::open(&ns).map_err(LabError::io(&ns))?;
        let mut c = Command::new(PROGRAM);
        c.arg(format!("--config.file={}", conf.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={}", self.prometheus_addr()))
            // The lab's runs are short; nothing to keep.
            .arg("--storage.tsdb.retention.time=1d")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        // SAFETY: only a syscall between fork and exec.
        unsafe {
            c.pre_exec(move || {
                nix::sched::setns(&net, nix::sched::CloneFlags::CLONE_NEWNET)?;
                Ok(())
            });
        }
        let child = c.spawn().map_err(LabError::io(Path::new(PROGRAM)))?;
        let pid = child.id();
        let start_time = super::proc::identity(&self.proc_root, pid)
            .map(|(_, t)| t)
            .ok_or_else(|| LabError::Cluster(format!("prometheus (pid {pid}) exited at once")))?;
        st.prometheus.push(ProcRec {
            name: "prometheus".into(),
            pid,
            start_time,
        });
        self.store.save(st)?;
        let t = Instant::now();
        loop {
            let last = match get_in_netns(
                &self.topo.netns(Aux::Gw),
                self.prometheus_addr(),
                "/-/ready",
                &[],
            ) {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if !super::proc::is_alive(&self.proc_root, pid, start_time)
                || t.elapsed() > READY_DEADLINE
            {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                return Err(LabError::Cluster(format!(
                    "prometheus was not ready within {READY_DEADLINE:?} ({last}); its log ends: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn prometheus_wait_targets(&self) -> Result<(), LabError> {
        let t = Instant::now();
        loop {
            let last = match self.prometheus_query("up", None) {
                Ok(body) => match targets_up(&body) {
                    Ok(()) => return Ok(()),
                    Err(e) => e,
                },
                Err(e) => e.to_string(),
            };
            if t.elapsed() > TARGETS_DEADLINE {
                return Err(LabError::Cluster(format!(
                    "prometheus did not scrape both exporters within {TARGETS_DEADLINE:?}: {last}"
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The API's JSON answer to an instant query, or a range query over
    /// the last `range` at `step`.
    pub fn prometheus_query(
        &self,
        expr: &str,
        range: Option<(Duration, Duration)>,
    ) -> Result<String, LabError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        get_in_netns(
            &self.topo.netns(Aux::Gw),
            self.prometheus_addr(),
            &query_path(expr, range, now),
            &[],
        )
        .map_err(LabError::Cluster)
    }
}

/// Whether an answer to `up` has both nodes at 1; else what is missing.
pub fn targets_up(body: &str) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    let up: Vec<String> = result
        .iter()
        .filter(|r| r["value"][1].as_str() == Some("1"))
        .filter_map(|r| r["metric"]["instance"].as_str().map(str::to_string))
        .collect();
    if up.len() >= NODES.len() {
        Ok(())
    } else {
        Err(format!("targets up: {up:?} in {body}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_scrapes_both_nodes_with_the_password_from_a_file() {
        let y = config_yaml(
            &[
                ("node1".into(), Ipv4Addr::new(198, 51, 100, 11)),
                ("node2".into(), Ipv4Addr::new(198, 51, 100, 12)),
            ],
            Path::new("/var/lib/mailha-lab/prometheus/password"),
            Path::new("/var/lib/mailha-lab-relay/ca.pem"),
            Some(Path::new("/src/dist/prometheus/mailha-rules.yml")),
        );
        assert!(
            y.contains("scheme: https\n    tls_config:\n      ca_file: \"/var/lib/mailha-lab-relay/ca.pem\""),
            "{y}"
        );
        assert!(y.contains("targets: ['198.51.100.11:9664']"), "{y}");
        assert!(y.contains("instance: \"node2\""), "{y}");
        assert!(
            y.contains("password_file: \"/var/lib/mailha-lab/prometheus/password\""),
            "{y}"
        );
        assert!(y.contains("rule_files:\n  - \"/src/dist/prometheus/mailha-rules.yml\""));
        assert!(!y.contains("password:"), "never the password itself: {y}");
    }

    #[test]
    fn a_query_is_url_encoded_and_a_range_ends_now() {
        let p = query_path("mailha_lease_holder{node=\"node2\"} == 1", None, 0.0);
        assert_eq!(
            p,
            "/api/v1/query?query=mailha_lease_holder%7Bnode%3D%22node2%22%7D+%3D%3D+1"
        );
        let p = query_path(
            "up",
            Some((Duration::from_secs(60), Duration::from_secs(1))),
            1000.0,
        );
        assert_eq!(
            p,
            "/api/v1/query_range?query=up&start=940.000&end=1000.000&step=1"
        );
    }

    #[test]
    fn both_targets_must_be_up() {
        let one = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"instance":"node1"},"value":[1,"1"]},
            {"metric":{"instance":"node2"},"value":[1,"0"]}]}}"#;
        assert!(targets_up(one).is_err());
        let both = one.replace("[1,\"0\"]", "[1,\"1\"]");
        assert!(targets_up(&both).is_ok());
    }
}
