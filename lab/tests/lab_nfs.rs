//! The lab's NFS server (issue 5, item 2): nfs-ganesha at
//! 198.51.100.30:/export in the lab's `nfs` namespace, the storage agent's
//! RPC NULL probe against it (healthy, frozen, partitioned), and the
//! `nfs-hang` drill in both modes.
//!
//! Root only: SKIPPED without root or the lab's programs, FAILS in CI
//! (tests/common/lab.rs). One lab for the whole scenario (a cluster takes
//! ~30 s to come up); a guard tears it down whatever happens.

use std::time::Duration;

mod common;

use common::*;

const GANESHA: &str = "/usr/bin/ganesha.nfsd";
const NFS_CAT: &str = "/usr/bin/nfs-cat";
/// The storage agent's monitor op timeout (its meta-data): the bound
/// Pacemaker puts on the probe, which gives up at its own 2 s.
const MONITOR_OP_TIMEOUT_MS: u64 = 20_000;

fn nfs(action: &str) -> serde_json::Value {
    let o = ok(lab().args(["nfs", action]), Duration::from_secs(60));
    serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", o.stdout))
}

/// The lab's server answers the agent's RPC NULL call while healthy,
/// fails it within the probe's deadline when frozen (connects still
/// complete) and when partitioned (connects time out), answers again once
/// restored; the export serves real data over NFSv4 and NFSv3 (libnfs, a
/// userspace client: this kernel has none); `nfs-hang` passes in both
/// modes with the probe failing in time and the stop bounded; `lab down`
/// ends a frozen server.
#[test]
fn the_lab_nfs_server_is_probed_in_time_and_every_stop_stays_bounded() {
    if !skip_unless_ready(
        "the_lab_nfs_server_is_probed_in_time_and_every_stop_stays_bounded",
        &[GANESHA, NFS_CAT, "/usr/bin/bindfs", "/usr/bin/swaks"],
    ) {
        return;
    }
    let guard = Teardown;
    drop(run(lab().args(["down"]), Duration::from_secs(60)));
    ok(lab().args(["up"]), Duration::from_secs(240));

    // Healthy: the probe answers, and the export is really served.
    let s = nfs("status");
    assert_eq!(s["answers"], true, "{s}");
    assert_eq!(s["export"], "198.51.100.30:/export");
    let v4 = exec(
        "client",
        &[NFS_CAT, "nfs://198.51.100.30/export/hello.txt?version=4"],
    );
    assert_eq!(
        v4.stdout, "served by the lab's nfs-ganesha\n",
        "{}",
        v4.stderr
    );
    let v3_path = format!(
        "nfs://198.51.100.30{}/nfs/export/hello.txt",
        base_dir().display()
    );
    let v3 = exec("client", &[NFS_CAT, &v3_path]);
    assert_eq!(
        v3.stdout, "served by the lab's nfs-ganesha\n",
        "{}",
        v3.stderr
    );

    // Frozen: TCP still connects, no RPC reply; the probe gives up at its
    // deadline, inside the monitor's op timeout (a bound, not a speed:
    // the speed is in bench/nfs.sh).
    let s = nfs("freeze");
    assert_eq!(
        (s["frozen"].clone(), s["answers"].clone()),
        (true.into(), false.into()),
        "{s}"
    );
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("no RPC reply within 2s"),
        "{s}"
    );
    assert!(
        s["probe_ms"].as_u64().unwrap() < MONITOR_OP_TIMEOUT_MS,
        "{s}"
    );
    let s = nfs("thaw");
    assert_eq!(s["answers"], true, "{s}");

    // Partitioned: the connect itself never completes.
    let s = nfs("partition");
    assert_eq!(
        (s["partitioned"].clone(), s["answers"].clone()),
        (true.into(), false.into()),
        "{s}"
    );
    assert!(s["error"].as_str().unwrap().contains("connect"), "{s}");
    assert!(
        s["probe_ms"].as_u64().unwrap() < MONITOR_OP_TIMEOUT_MS,
        "{s}"
    );
    let s = nfs("heal");
    assert_eq!(
        (s["partitioned"].clone(), s["answers"].clone()),
        (false.into(), true.into()),
        "{s}"
    );

    // The drill in both modes, on each node once: the storage agent's
    // monitor fails within its op timeout, its stop of the hung mount
    // returns in time with the mount gone, the server comes back, and the
    // mail never noticed.
    for (mode, node) in [("freeze", "active"), ("partition", "node2")] {
        let r = drill(&["nfs-hang", node, "--mode", mode]);
        let n = &r["nfs"];
        assert_eq!(n["mode"], mode, "{r}");
        assert_eq!(n["healthy_probe"]["rc"], 0, "{r}");
        assert_eq!(n["probe_failed_in_time"], true, "{r}");
        assert_ne!(n["fault_probe"]["rc"], 0, "{r}");
        assert_eq!(n["stop_in_time"], true, "{r}");
        assert_eq!(n["stop"]["rc"], 0, "{r}");
        assert!(n["released_by"].is_string(), "{r}");
        assert_eq!(n["restored"], true, "{r}");
        assert_eq!(n["data_on_nfs"], false, "{r}");
        assert_eq!(r["switched"], false, "{r}");
        assert_eq!(r["lost"], 0, "{r}");
        assert_eq!(r["double_mounts"], 0, "{r}");
        assert!(r["accepted"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["ok"], true, "{r}");
    }
    assert_eq!(nfs("status")["answers"], true);

    // A frozen server does not keep `lab down` from ending it.
    let pid = nfs("freeze")["ganesha_pid"].as_u64().unwrap();
    ok(lab().args(["down"]), Duration::from_secs(60));
    drop(guard);
    // Dead: gone, or a zombie its new parent (the host's init, once the
    // `up` that started it exited) has not reaped yet.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next());
    assert!(
        matches!(state, None | Some("Z")),
        "ganesha (pid {pid}) survived lab down: {stat}"
    );
}
