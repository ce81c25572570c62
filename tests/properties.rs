//! Properties over generated configs: whatever `mailha check` accepts
//! renders a CIB that crm_verify accepts, rendering is deterministic, and
//! the loader never panics on any input.

mod common;
use common::*;
use proptest::prelude::*;

fn service_strategy(i: usize) -> impl Strategy<Value = String> {
    let deps = proptest::collection::vec(0..i.max(1), 0..=i.min(3));
    let probe = prop_oneof![
        Just(String::new()),
        Just("probe = { type = \"smtp\" }\n".to_string()),
        Just("probe = { type = \"mysql\", socket = \"/run/mysqld/mysqld.sock\" }\n".to_string()),
        Just(
            "probe = { type = \"http\", port = 8080, path = \"/ok\", expect = 204 }\n".to_string()
        ),
        Just("probe = { type = \"command\", argv = [\"/bin/true\"] }\n".to_string()),
    ];
    let agent = prop_oneof![
        4 => Just(String::new()),
        1 => Just("agent = \"ocf:heartbeat:Dummy\"\n".to_string()),
    ];
    (deps, probe, agent, any::<bool>(), any::<bool>(), 1u32..30).prop_map(
        move |(deps, probe, agent, watch, clone, iv)| {
            let mut s = format!("[services.s{i}]\nstart = [\"/usr/sbin/d{i}\", \"--start\"]\n");
            if i > 0 && !deps.is_empty() {
                let mut names: Vec<String> = deps.iter().map(|d| format!("\"s{d}\"")).collect();
                names.dedup();
                names.sort();
                names.dedup();
                s.push_str(&format!("depends_on = [{}]\n", names.join(", ")));
            }
            s.push_str(&probe);
            s.push_str(&agent);
            s.push_str(&format!(
                "watch = {watch}\nclone = {clone}\nmonitor_interval = \"{iv}s\"\n"
            ));
            s
        },
    )
}

fn config_strategy() -> impl Strategy<Value = String> {
    let names = ("[a-z][a-z0-9]{0,6}", "[a-z][a-z0-9]{0,6}");
    let links = 1usize..=2;
    let mounts = 0usize..=3;
    let nservices = 0usize..=6;
    let profile = prop_oneof![Just("none"), Just("postfix"), Just("eyou")];
    let fencing = prop_oneof![Just("lease"), Just("none"), Just("sbd")];
    let policy = (1u32..20, 1u64..3600, 0u32..1000);
    (names, links, mounts, nservices, profile, fencing, policy, any::<bool>())
        .prop_flat_map(|(names, links, mounts, n, profile, fencing, policy, lease)| {
            let svcs: Vec<_> = (0..n).map(service_strategy).collect();
            (Just((names, links, mounts, profile, fencing, policy, lease)), svcs)
        })
        .prop_map(|((names, links, mounts, profile, fencing, policy, lease), svcs)| {
            let addrs = |host: u8| {
                let mut v = vec![format!("\"203.0.113.{host}\"")];
                if links == 2 {
                    v.push(format!("\"198.51.100.{host}\""));
                }
                v.join(", ")
            };
            let mut t = format!(
                "[cluster]\nname = \"c\"\n[[cluster.nodes]]\nname = \"{}\"\naddresses = [{}]\n[[cluster.nodes]]\nname = \"{}\"\naddresses = [{}]\n",
                names.0, addrs(11), names.1, addrs(12)
            );
            t.push_str("[vip]\naddress = \"198.51.100.100\"\nprefix = 24\nnic = \"eth0\"\n");
            t.push_str("[network]\nping_targets = [\"198.51.100.1\"]\n");
            if lease {
                t.push_str("[storage.lease]\ndevice = \"/dev/sdz\"\n");
            }
            for m in 0..mounts {
                t.push_str(&format!("[[storage.mounts]]\ndevice = \"LABEL=d{m}\"\nmount_point = \"/srv/m{m}\"\n"));
            }
            t.push_str(&format!(
                "[policy]\nmigration_threshold = {}\nfailure_timeout = \"{}s\"\nresource_stickiness = {}\n",
                policy.0, policy.1, policy.2
            ));
            t.push_str(&format!("[fencing]\nmode = \"{fencing}\"\n"));
            t.push_str(&format!("[services]\nprofile = \"{profile}\"\neyou_root = \"/nonexistent/eyou\"\n"));
            for s in svcs {
                t.push_str(&s);
            }
            t
        })
}

/// Whatever loads renders the same bytes twice and crm_verify accepts it.
/// The property is vacuous when nothing loads (a generator that drifted
/// from the schema would make every case an early return), so the run
/// also counts the configs that loaded and fails below a quarter.
#[test]
fn whatever_check_accepts_crm_verify_accepts() {
    use proptest::test_runner::{TestCaseError, TestRunner};
    const CASES: u32 = 48;
    let loaded = std::cell::Cell::new(0u32);
    let verify = have_crm_verify();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    });
    runner
        .run(&config_strategy(), |text| {
            let Ok(l) = load(&text) else { return Ok(()) };
            loaded.set(loaded.get() + 1);
            let full = mailha::cib::render_full(&l.config);
            prop_assert_eq!(
                &full,
                &mailha::cib::render_full(&load(&text).unwrap().config)
            );
            if verify {
                let nodes: Vec<&str> = l
                    .config
                    .cluster
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect();
                if let Err(e) = crm_verify(&full, &nodes) {
                    return Err(TestCaseError::fail(format!(
                        "crm_verify rejected:\n{e}\n{text}"
                    )));
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(
        loaded.get() * 4 >= CASES,
        "only {} of {CASES} generated configs loaded: the generator no longer makes valid configs",
        loaded.get()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    // Fuzzing the loader: arbitrary bytes, and arbitrary edits of a valid
    // config, must give a result or an error, never a panic.
    #[test]
    fn the_loader_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = load(&text);
    }

    #[test]
    fn the_loader_never_panics_on_mangled_configs(pos in 0usize..BASE.len(), junk in "\\PC{0,12}") {
        let mut text = BASE.to_string();
        let pos = (0..=pos).rev().find(|p| text.is_char_boundary(*p)).unwrap_or(0);
        text.insert_str(pos, &junk);
        let _ = load(&text);
    }

    #[test]
    fn the_shell_tokenizer_never_panics(text in "\\PC{0,200}") {
        let _ = mailha::shellvars::parse(&text);
    }
}
