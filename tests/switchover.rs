//! `mailha switchover`: the decision over crm_mon states made by
//! Pacemaker's own tools (tests/fixtures/status/make.sh), and the binary
//! on a saved CIB (`CIB_file`) with the real crm_resource: nothing is
//! left pinned, whatever happens.

mod common;
use common::*;
use mailha::cib::xml::El;
use mailha::status::parse;
use mailha::switchover::{Keeper, Refusal, landed, plan, unfit};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("tests/fixtures/status").join(name)).unwrap()
}

fn cib(name: &str) -> El {
    El::parse(&fixture(name)).unwrap()
}

fn keeper(me: &str, edit: impl Fn(&mut mailha::lease::client::Status)) -> Keeper {
    let mut s: mailha::lease::client::Status = serde_json::from_value(serde_json::json!({
        "pid": 1, "node": me, "node_id": 1, "peer": "mail2", "peer_id": 2,
        "cluster": "mail", "device": "/dev/x", "role": "holding", "holds": true,
        "wanted": true, "released": false, "counter": 7, "renewal_age_ms": 100,
        "io_stalled_ms": null, "peer_unchanged_ms": 900, "peer_dead": false,
        "peer_holding": false, "peer_fenced": false, "host_dead_ms": 20000,
        "renew_ms": 1000, "fence_pending": null, "fences": [], "self_fenced": null
    }))
    .unwrap();
    edit(&mut s);
    Keeper::Asked {
        me: me.into(),
        answer: Ok(Box::new(s)),
    }
}

#[test]
fn a_healthy_pair_moves_the_chains_root_to_the_other_node() {
    let st = parse(&fixture("healthy.xml")).unwrap();
    let p = plan(&st, &cib("cib-healthy.xml"), None, &Keeper::NotUsed).unwrap();
    assert_eq!((p.from.as_str(), p.to.as_str()), ("mail1", "mail2"));
    assert_eq!(p.roots, ["lease"], "the lease carries the whole chain");
    for r in ["lease", "fs-data", "vip", "svc-postfix", "svc-mysql"] {
        assert!(p.stack.iter().any(|s| s == r), "{r} not in {:?}", p.stack);
    }
    assert!(
        !p.stack
            .iter()
            .any(|s| s.starts_with("fence-") || s == "ping"),
        "{:?}",
        p.stack
    );
    assert_eq!(p.constraint_ids(), ["cli-prefer-lease"]);
    assert_eq!(
        p.move_argv("lease"),
        [
            "crm_resource",
            "--move",
            "--resource",
            "lease",
            "--node",
            "mail2"
        ]
    );
    // The same with a healthy keeper here that sees its peer renew.
    assert!(
        plan(
            &st,
            &cib("cib-healthy.xml"),
            Some("mail2"),
            &keeper("mail1", |_| {})
        )
        .is_ok()
    );
}

#[test]
fn an_unknown_node_is_refused_with_a_suggestion() {
    let st = parse(&fixture("healthy.xml")).unwrap();
    let r = plan(
        &st,
        &cib("cib-healthy.xml"),
        Some("mial2"),
        &Keeper::NotUsed,
    )
    .unwrap_err();
    assert!(
        matches!(&r, Refusal::UnknownNode { hint, .. } if hint.contains("\"mail2\"")),
        "{r}"
    );
    let r = plan(&st, &cib("cib-healthy.xml"), Some("xyz"), &Keeper::NotUsed).unwrap_err();
    assert!(r.to_string().contains("mail1, mail2"), "{r}");
}

#[test]
fn the_node_already_running_the_mail_is_nothing_to_do() {
    let st = parse(&fixture("healthy.xml")).unwrap();
    assert_eq!(
        plan(
            &st,
            &cib("cib-healthy.xml"),
            Some("mail1"),
            &Keeper::NotUsed
        ),
        Err(Refusal::AlreadyThere("mail1".into()))
    );
}

fn refused_because(st_file: &str, to: Option<&str>, keeper: &Keeper, needle: &str) {
    let st = parse(&fixture(st_file)).unwrap();
    match plan(&st, &cib("cib-healthy.xml"), to, keeper) {
        Err(Refusal::Unfit { reasons, .. }) => assert!(
            reasons.iter().any(|r| r.contains(needle)),
            "{st_file}: {reasons:?} lacks {needle:?}"
        ),
        other => panic!("{st_file}: expected a refusal for {needle:?}, got {other:?}"),
    }
}

#[test]
fn a_standby_target_is_refused() {
    refused_because(
        "mail2-standby.xml",
        Some("mail2"),
        &Keeper::NotUsed,
        "standby",
    );
}

#[test]
fn an_offline_target_is_refused() {
    // node1 is down, the mail runs on mail2.
    refused_because("node1-down.xml", None, &Keeper::NotUsed, "mail1 is offline");
}

#[test]
fn a_target_without_network_is_refused() {
    refused_because("mail2-no-ping.xml", None, &Keeper::NotUsed, "ping");
}

#[test]
fn a_target_whose_keeper_fenced_itself_or_stopped_is_refused() {
    refused_because(
        "healthy.xml",
        None,
        &keeper("mail1", |s| s.peer_fenced = true),
        "fenced itself",
    );
    refused_because(
        "healthy.xml",
        None,
        &keeper("mail1", |s| s.peer_dead = true),
        "not running",
    );
    // Run on the target itself: its own keeper must answer and be fit.
    refused_because(
        "healthy.xml",
        None,
        &Keeper::Asked {
            me: "mail2".into(),
            answer: Err("the lease keeper (@mailha-lease) is not running".into()),
        },
        "cannot take the lease",
    );
    refused_because(
        "healthy.xml",
        None,
        &keeper("mail2", |s| s.self_fenced = Some("renewal failed".into())),
        "fenced itself",
    );
}

#[test]
fn fail_counts_at_the_migration_threshold_refuse_the_node_below_it_do_not() {
    // Pacemaker 3.0 prints a resource's fail count in its history (1 of
    // 10 on mail1 in this state); at 10 Pacemaker keeps it off mail1.
    let below = parse(&fixture("pacemaker-3.0/failed.xml")).unwrap();
    assert!(
        !unfit(&below, "mail1", &Keeper::NotUsed)
            .iter()
            .any(|r| r.contains("svc-postfix")),
        "{:?}",
        unfit(&below, "mail1", &Keeper::NotUsed)
    );
    let at = parse(&fixture("pacemaker-3.0/failed.xml").replace(
        r#"migration-threshold="10" fail-count="1""#,
        r#"migration-threshold="10" fail-count="10""#,
    ))
    .unwrap();
    let why = unfit(&at, "mail1", &Keeper::NotUsed);
    assert!(
        why.iter()
            .any(|r| r.contains("svc-postfix failed 10 times on mail1")),
        "{why:?}"
    );
    // INFINITY (a failed start) is at any threshold.
    let inf = parse(&fixture("pacemaker-3.0/failed.xml").replace(
        r#"migration-threshold="10" fail-count="1""#,
        r#"migration-threshold="10" fail-count="INFINITY""#,
    ))
    .unwrap();
    assert!(!unfit(&inf, "mail1", &Keeper::NotUsed).is_empty());
}

#[test]
fn a_leftover_constraint_is_cleared_first() {
    let st = parse(&fixture("healthy.xml")).unwrap();
    let r = plan(&st, &cib("cib-failed.xml"), None, &Keeper::NotUsed).unwrap_err();
    assert!(
        r.to_string().contains("cli-ban-svc-postfix-on-mail2")
            && r.to_string().contains("mailha switchover --clear"),
        "{r}"
    );
}

#[test]
fn the_move_has_landed_when_the_whole_stack_runs_on_the_target() {
    let st = parse(&fixture("healthy.xml")).unwrap();
    let p = plan(&st, &cib("cib-healthy.xml"), None, &Keeper::NotUsed).unwrap();
    assert!(!landed(&st, &p));
    assert!(landed(&parse(&fixture("node1-down.xml")).unwrap(), &p));
    assert!(!landed(&parse(&fixture("mail2-standby.xml")).unwrap(), &p));
}

fn saved_cib(name: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::copy(repo().join("tests/fixtures/status").join(name), f.path()).unwrap();
    f
}

fn mailha(cib: &std::path::Path, args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("mailha")
        .unwrap()
        .env("CIB_file", cib)
        .arg("--config")
        .arg(repo().join("examples/postfix.toml"))
        .arg("switchover")
        .args(args)
        .output()
        .unwrap()
}

fn cli_constraints(cib: &std::path::Path) -> Vec<String> {
    let c = El::parse(&std::fs::read_to_string(cib).unwrap()).unwrap();
    mailha::switchover::leftovers(&c)
        .into_iter()
        .map(|l| l.id)
        .collect()
}

#[test]
fn a_dry_run_prints_the_commands_and_changes_nothing() {
    if !have_crm_verify() {
        return;
    }
    let f = saved_cib("cib-healthy.xml");
    let before = std::fs::read_to_string(f.path()).unwrap();
    let o = mailha(f.path(), &["--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("from mail1 to mail2")
            && out.contains("crm_resource --move --resource lease --node mail2")
            && out.contains("crm_resource --clear --resource lease"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(f.path()).unwrap(), before);
}

#[test]
fn a_move_that_does_not_land_leaves_nothing_pinned() {
    if !have_crm_verify() {
        return;
    }
    // A saved CIB: crm_resource writes the constraint, but no cluster acts
    // on it, so the wait runs out; the guard must remove it.
    let f = saved_cib("cib-healthy.xml");
    let o = mailha(f.path(), &["--wait=2s"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not done within 2s") && err.contains("removed cli-prefer-lease"),
        "{err}"
    );
    assert!(cli_constraints(f.path()).is_empty(), "{err}");
}

#[test]
fn refusals_exit_2_and_change_nothing() {
    if !have_crm_verify() {
        return;
    }
    let f = saved_cib("cib-healthy.xml");
    let before = std::fs::read_to_string(f.path()).unwrap();
    let o = mailha(f.path(), &["--to", "mial2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("did you mean \"mail2\"?"), "{err}");
    assert_eq!(std::fs::read_to_string(f.path()).unwrap(), before);
}

#[test]
fn clear_removes_what_crm_resource_left_and_says_which() {
    if !have_crm_verify() {
        return;
    }
    let f = saved_cib("cib-failed.xml");
    // A preference crm_mon does not list (it shows bans only).
    let o = std::process::Command::new("crm_resource")
        .env("CIB_file", f.path())
        .args(["--move", "--resource", "lease", "--node", "mail2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        cli_constraints(f.path()),
        ["cli-ban-svc-postfix-on-mail2", "cli-prefer-lease"]
    );
    let st = assert_cmd::Command::cargo_bin("mailha")
        .unwrap()
        .env("CIB_file", f.path())
        .arg("--config")
        .arg(repo().join("examples/postfix.toml"))
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(
        text.contains("leftover preference of lease on mail2"),
        "{text}"
    );

    let o = mailha(f.path(), &["--clear", "--dry-run"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("would remove cli-prefer-lease"));
    assert_eq!(
        cli_constraints(f.path()).len(),
        2,
        "a dry run changes nothing"
    );

    let o = mailha(f.path(), &["--clear"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("removed cli-ban-svc-postfix-on-mail2 (ban of svc-postfix on mail2)")
            && out.contains("removed cli-prefer-lease (preference of lease on mail2)"),
        "{out}"
    );
    assert!(cli_constraints(f.path()).is_empty());
    let o = mailha(f.path(), &["--clear"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to clear"));
}
