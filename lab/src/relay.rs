//! The lab's mail relay for alerts, in the `gw` namespace: a real Postfix
//! that only accepts mail over STARTTLS (a lab CA made at `lab up`) after
//! SASL AUTH checked by Dovecot's auth service, and delivers it to a
//! Maildir on the host that tests and benchmarks read.
//!
//! Everything lives under `{base}-relay/` (the gw namespace is a network
//! namespace only, so its daemons see the host's files):
//!
//! ```text
//! ca.pem ca.key relay.pem relay.key   the lab CA and the relay's certificate
//! password                            the SASL password (0600), also copied
//!                                     into each node as /etc/mailha/relay-password
//! postfix/{conf,queue,data}           a private Postfix instance
//! dovecot/{dovecot.conf,users,run,state}  Dovecot, auth only (no protocols)
//! mail/ops/{new,cur,tmp}              the Maildir of ALERT_RCPT
//! postfix.log dovecot.log
//! ```
//!
//! Daemons are started with `nsenter --net=/run/netns/<gw>`: a network
//! namespace only, no mount namespace (`ip netns exec` would make one, a
//! copy of the host's mounts pinned by a long-lived daemon). `lab down`
//! kills what runs in the gw namespace before deleting it.

use super::LabError;
use super::cmd::{Cmd, Runner};
use super::topology::Aux;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Submission port: STARTTLS required, AUTH required.
pub const PORT: u16 = 587;
/// The SASL user the nodes log in as.
pub const USER: &str = "mailha-alerts";
/// Where alert mail goes (the relay's only mailbox).
pub const ALERT_RCPT: &str = "ops@alerts.lab.test";
/// Paths inside each node (lab/postfix.toml's [alerts.smtp] names them).
pub const NODE_CA: &str = "/etc/mailha/lab-ca.pem";
pub const NODE_PASSWORD: &str = "/etc/mailha/relay-password";
/// The relay's name in its certificate (besides its address).
pub const NAME: &str = "relay.lab.test";

/// The relay's files under a lab base dir.
#[derive(Debug, Clone)]
pub struct Relay {
    pub dir: PathBuf,
}

impl Relay {
    /// `{base}-relay`, beside the base dir rather than in it: the base
    /// dir is root-only (it holds the lab's ssh key), and Postfix's and
    /// Dovecot's unprivileged processes must reach their files.
    pub fn new(base_dir: &Path) -> Relay {
        let mut name = base_dir
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "mailha-lab".into());
        name.push("-relay");
        Relay {
            dir: base_dir.with_file_name(name),
        }
    }
    pub fn postfix_conf(&self) -> PathBuf {
        self.dir.join("postfix/conf")
    }
    pub fn dovecot_conf(&self) -> PathBuf {
        self.dir.join("dovecot/dovecot.conf")
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn password_file(&self) -> PathBuf {
        self.dir.join("password")
    }
    /// The alert mailbox (a Maildir): delivered mail is in `new/`.
    pub fn maildir(&self) -> PathBuf {
        self.dir.join("mail/ops")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("postfix.log")
    }
    /// Delivered mails, oldest first (Maildir names start with the time).
    pub fn delivered(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.maildir().join("new"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
    /// How many mails the relay accepted so far (its cleanup logged a
    /// message-id for each), delivered or not yet.
    pub fn accepted(&self) -> usize {
        accepted_in(&std::fs::read_to_string(self.log()).unwrap_or_default())
    }
    /// `postfix start|stop` argv for this instance (run it in the gw
    /// namespace: `mailha lab exec gw -- ...`).
    pub fn postfix_argv(&self, verb: &str) -> Vec<String> {
        vec![
            "/usr/sbin/postfix".into(),
            "-c".into(),
            self.postfix_conf().display().to_string(),
            verb.into(),
        ]
    }
}

/// Postfix's main.cf: no chroot, own queue/data/log, virtual delivery of
/// one domain into the Maildir, relaying for nobody. STARTTLS and AUTH are
/// enforced on the submission service in master.cf.
pub fn main_cf(r: &Relay, addr: &str, uid: u32, gid: u32) -> String {
    let d = r.dir.display();
    format!(
        "# written by `mailha lab up`: the lab's alert relay
compatibility_level = 3.6
queue_directory = {d}/postfix/queue
data_directory = {d}/postfix/data
maillog_file = {d}/postfix.log
maillog_file_prefixes = {d}
inet_interfaces = {addr}
inet_protocols = ipv4
myhostname = {NAME}
mydestination =
mynetworks =
smtpd_peername_lookup = no
alias_maps =
alias_database =
virtual_mailbox_domains = alerts.lab.test
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = inline:{{ {ALERT_RCPT}=ops/ }}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = {uid}
smtputf8_enable = yes
smtpd_tls_cert_file = {d}/relay.pem
smtpd_tls_key_file = {d}/relay.key
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_auth_enable = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
"
    )
}

/// master.cf: the submission port on the gw address, nothing chrooted.
pub fn master_cf(addr: &str) -> String {
    format!(
        "{addr}:{PORT} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
tlsmgr unix - - n 1000? 1 tlsmgr
"
    )
}

/// Dovecot as an authentication server only: no mail protocols, one
/// passwd-file user, the auth socket inside Postfix's queue where smtpd
/// (`smtpd_sasl_path = private/auth`) finds it.
pub fn dovecot_conf(r: &Relay) -> String {
    let d = r.dir.display();
    format!(
        "# written by `mailha lab up`: auth for the lab's alert relay
protocols = none
base_dir = {d}/dovecot/run
state_dir = {d}/dovecot/state
instance_name = mailha-lab-relay
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/dovecot/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {d}/postfix/queue/private/auth {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
"
    )
}

/// A password made at `lab up` (24 random bytes, hex): the lab's, never
/// a constant in the repo.
pub(crate) fn new_password() -> Result<String, LabError> {
    use std::io::Read;
    let mut b = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(LabError::io(Path::new("/dev/urandom")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), LabError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(LabError::io(path))?;
    f.write_all(text.as_bytes()).map_err(LabError::io(path))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(LabError::io(path))
}

fn ids(user: &str, group: &str) -> Result<(u32, u32), LabError> {
    let u = nix::unistd::User::from_name(user).ok().flatten();
    let g = nix::unistd::Group::from_name(group).ok().flatten();
    match (u, g) {
        (Some(u), Some(g)) => Ok((u.uid.as_raw(), g.gid.as_raw())),
        _ => Err(LabError::Prerequisites(vec![format!(
            "user {user} / group {group}"
        )])),
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), LabError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(LabError::io(path))
}

fn in_gw(netns: &str, argv: &[String]) -> Cmd {
    Cmd::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .arg("--")
        .args(argv.iter().cloned())
        .deadline(Duration::from_secs(30))
}

/// What the nodes need to use the relay: the CA certificate and the
/// password (both text).
#[derive(Debug, Clone)]
pub struct ForNodes {
    pub ca_pem: String,
    pub password: String,
}

/// Makes the CA, the relay's certificate, the password and the configs,
/// then starts Dovecot and Postfix in the gw namespace and waits until the
/// submission port answers there.
pub fn up(runner: &dyn Runner, netns: &str, base_dir: &Path) -> Result<ForNodes, LabError> {
    let r = Relay::new(base_dir);
    if r.dir.exists() {
        std::fs::remove_dir_all(&r.dir).map_err(LabError::io(&r.dir))?;
    }
    for d in [
        "postfix/conf",
        "postfix/queue",
        "postfix/data",
        "dovecot/run",
        "dovecot/state",
        "mail",
    ] {
        let p = r.dir.join(d);
        std::fs::create_dir_all(&p).map_err(LabError::io(&p))?;
    }
    {
        // postfix and nobody must get through to their own dirs.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&r.dir, std::fs::Permissions::from_mode(0o755))
            .map_err(LabError::io(&r.dir))?;
    }
    let (pf_uid, pf_gid) = ids("postfix", "postfix")?;
    let (nb_uid, nb_gid) = ids("nobody", "nogroup")?;
    chown(&r.dir.join("postfix/data"), pf_uid, pf_gid)?;
    chown(&r.dir.join("mail"), nb_uid, nb_gid)?;

    // The lab CA and the relay's certificate: name and address in the SAN,
    // so a client that verifies (lettre does) accepts it either way.
    let addr = Aux::Gw.addr().to_string();
    let d = r.dir.display().to_string();
    let openssl = |args: &[&str]| {
        Cmd::new("openssl")
            .args(args.iter().copied())
            .deadline(Duration::from_secs(60))
    };
    runner.run_ok(&openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=mailha lab CA",
        "-keyout",
        &format!("{d}/ca.key"),
        "-out",
        &format!("{d}/ca.pem"),
    ]))?;
    issue(
        runner,
        &r.dir,
        &r.dir,
        "relay",
        NAME,
        &format!("DNS:{NAME}, IP:{addr}"),
    )?;

    let password = new_password()?;
    write(&r.password_file(), &format!("{password}\n"), 0o600)?;
    let users = r.dir.join("dovecot/users");
    write(&users, &format!("{USER}:{{PLAIN}}{password}\n"), 0o640)?;
    let (_, dc_gid) = ids("root", "dovecot")?;
    chown(&users, 0, dc_gid)?;
    write(
        &r.postfix_conf().join("main.cf"),
        &main_cf(&r, &addr, nb_uid, nb_gid),
        0o644,
    )?;
    write(
        &r.postfix_conf().join("master.cf"),
        &master_cf(&addr),
        0o644,
    )?;
    write(&r.dovecot_conf(), &dovecot_conf(&r), 0o644)?;

    // Postfix first (it makes queue/private), then Dovecot's socket in it.
    runner.run_ok(&in_gw(netns, &r.postfix_argv("start")))?;
    runner.run_ok(&in_gw(
        netns,
        &[
            "/usr/sbin/dovecot".into(),
            "-c".into(),
            r.dovecot_conf().display().to_string(),
        ],
    ))?;
    let sock = r.dir.join("postfix/queue/private/auth");
    let t = Instant::now();
    while !sock.exists() {
        if t.elapsed() > Duration::from_secs(20) {
            return Err(LabError::Cluster(format!(
                "the relay's auth socket {} did not appear",
                sock.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ca_pem = std::fs::read_to_string(r.ca()).map_err(LabError::io(&r.ca()))?;
    Ok(ForNodes { ca_pem, password })
}

/// A server certificate signed by the lab CA in `ca_dir` (`ca.pem`,
/// `ca.key`): `{out}/{stem}.pem` and its key `{out}/{stem}.key` (0600),
/// for `cn` with `san` (`DNS:..., IP:...`): a client that verifies the
/// address it connected to (lettre, Prometheus) accepts it.
pub fn issue(
    runner: &dyn Runner,
    ca_dir: &Path,
    out: &Path,
    stem: &str,
    cn: &str,
    san: &str,
) -> Result<(), LabError> {
    let openssl = |args: &[&str]| {
        Cmd::new("openssl")
            .args(args.iter().copied())
            .deadline(Duration::from_secs(60))
    };
    let (ca, o) = (ca_dir.display().to_string(), out.display().to_string());
    let key = out.join(format!("{stem}.key"));
    runner.run_ok(&openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &format!("/CN={cn}"),
        "-keyout",
        &format!("{o}/{stem}.key"),
        "-out",
        &format!("{o}/{stem}.csr"),
    ]))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .map_err(LabError::io(&key))?;
    }
    write(
        &out.join(format!("{stem}.ext")),
        &format!(
            "subjectAltName = {san}\nextendedKeyUsage = serverAuth\nbasicConstraints = CA:FALSE\n"
        ),
        0o644,
    )?;
    runner.run_ok(&openssl(&[
        "x509",
        "-req",
        "-in",
        &format!("{o}/{stem}.csr"),
        "-CA",
        &format!("{ca}/ca.pem"),
        "-CAkey",
        &format!("{ca}/ca.key"),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        &format!("{o}/{stem}.ext"),
        "-out",
        &format!("{o}/{stem}.pem"),
    ]))?;
    Ok(())
}

/// The mails accepted in a relay log: Postfix's cleanup logs one
/// `QUEUEID: message-id=<...>` line per message it enqueued.
pub fn accepted_in(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("/cleanup[") && l.contains(": message-id="))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_demands_tls_and_auth_and_relays_for_nobody() {
        let r = Relay::new(Path::new("/var/lib/mailha-lab-x"));
        let m = main_cf(&r, "198.51.100.1", 65534, 65534);
        for line in [
            "smtpd_tls_security_level = encrypt",
            "smtpd_tls_auth_only = yes",
            "smtpd_sasl_type = dovecot",
            "smtpd_relay_restrictions = permit_sasl_authenticated, reject",
            "mynetworks =\n",
            "inet_interfaces = 198.51.100.1",
        ] {
            assert!(m.contains(line), "{line:?} missing:\n{m}");
        }
        assert!(master_cf("198.51.100.1").starts_with("198.51.100.1:587 inet n - n"));
        let d = dovecot_conf(&r);
        assert!(d.contains("unix_listener /var/lib/mailha-lab-x-relay/postfix/queue/private/auth"));
        assert!(d.contains("protocols = none\n"));
    }

    #[test]
    fn a_mail_counts_as_accepted_once_cleanup_enqueued_it() {
        let log = "Dec 05 21:36:01 relay postfix/smtpd[27194]: DCDFB11E411: client=unknown[198.51.100.11], sasl_method=PLAIN\n\
                   Dec 05 21:36:01 relay postfix/cleanup[27202]: DCDFB11E411: message-id=<0179-0001@node1>\n\
                   Dec 05 21:36:01 relay postfix/qmgr[24449]: DCDFB11E411: from=<mailha@lab.test>, size=27493, nrcpt=1 (queue active)\n\
                   Dec 05 21:36:01 relay postfix/cleanup[27202]: DD55511E3C9: message-id=<0179-0002@node2>\n";
        assert_eq!(accepted_in(log), 2);
        assert_eq!(accepted_in(""), 0);
    }

    #[test]
    fn passwords_are_fresh_and_long() {
        let a = new_password().unwrap();
        assert_eq!(a.len(), 48);
        assert_ne!(a, new_password().unwrap());
    }
}
