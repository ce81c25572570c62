//! The generated man pages and completions (`dist/`) are in step with the
//! code, and a page that is not says which and how to regenerate.

use std::path::Path;

#[test]
fn dist_and_the_changelog_are_in_step_with_the_code() {
    let problems = mailha_pkg::check(&mailha_pkg::repo());
    assert!(
        problems.is_empty(),
        "{}\nregenerate with `{}` and review the diff",
        problems.join("\n"),
        mailha_pkg::REGENERATE
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &p);
        } else {
            std::fs::copy(e.path(), p).unwrap();
        }
    }
}

#[test]
fn a_stale_missing_or_leftover_page_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    copy_dir(&mailha_pkg::repo().join("dist"), &dist);
    assert!(mailha_pkg::stale(&dist).is_empty());

    let page = dist.join("man/ocf_mailha_storage.7");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&page, text.replace("mount", "mnt")).unwrap();
    std::fs::remove_file(dist.join("completions/_mailha")).unwrap();
    std::fs::write(dist.join("man/mailha-gone.8"), "old").unwrap();

    let mut got = mailha_pkg::stale(&dist);
    got.sort();
    assert_eq!(
        got,
        [
            "dist/completions/_mailha is missing",
            "dist/man/mailha-gone.8 is no longer generated",
            "dist/man/ocf_mailha_storage.7 is out of date",
        ]
    );
    mailha_pkg::write(&dist).unwrap();
    assert!(mailha_pkg::stale(&dist).is_empty(), "gen repairs it");
}

#[test]
fn a_changelog_behind_the_version_is_named() {
    let v = mailha_pkg::man::version();
    let ok = format!("mailha ({v}-3) unstable; urgency=medium\n");
    assert!(mailha_pkg::version_problems(&ok).is_empty());
    let behind = "mailha (0.0.1-1) unstable; urgency=medium\n";
    let p = mailha_pkg::version_problems(behind);
    assert!(
        p.len() == 1 && p[0].contains("0.0.1-1") && p[0].contains(&v),
        "{p:?}"
    );
}

#[test]
fn each_agents_page_documents_every_parameter_of_its_table() {
    let specs: Vec<_> = mailha::faces::FACES
        .iter()
        .filter_map(|f| mailha::agents::spec(f.face))
        .collect();
    assert_eq!(specs.len(), 5, "service, storage, sender, lease, config");
    for spec in specs {
        let (name, page) = mailha_pkg::man::ocf_page(spec, Some("/x"));
        assert!(
            mailha_pkg::man::pages().iter().any(|(n, _)| *n == name),
            "{name} is not among the pages"
        );
        assert_eq!(name, format!("ocf_mailha_{}.7", spec.name));
        for p in spec.params {
            assert!(
                page.contains(&format!("\\fB{}\\fR", p.name.replace('-', "\\-"))),
                "{name}: parameter {} missing",
                p.name
            );
        }
        for a in spec.actions {
            let a_roff = a.name.replace('-', "\\-");
            assert!(page.contains(&a_roff), "{name}: action {}", a.name);
        }
    }
}

#[test]
fn the_fence_page_documents_every_parameter_of_its_metadata() {
    let xml = mailha::fence::metadata();
    let (name, page) = mailha_pkg::man::fence_page(&xml);
    assert_eq!(name, "fence_mailha.8");
    for chunk in xml.split("<parameter name=\"").skip(1) {
        let param = chunk.split('"').next().unwrap();
        assert!(
            page.contains(&format!("\\fB{param}\\fR")),
            "parameter {param} missing"
        );
    }
}

#[test]
fn the_config_page_has_every_key_of_the_config_reference() {
    let md = std::fs::read_to_string(mailha_pkg::repo().join("docs/config.md")).unwrap();
    let (_, page) = mailha_pkg::man::config_page(&md);
    // The first cell of every table row: a key, `[table]` or `[[array]]`.
    for line in md.lines().filter(|l| l.starts_with("| `")) {
        let key = line.split('`').nth(1).unwrap();
        let roff = key.replace('-', "\\-");
        assert!(
            page.contains(&roff),
            "key {key} missing from mailha.toml(5)"
        );
    }
}

#[test]
fn the_completions_offer_every_visible_verb_and_none_that_help_hides() {
    use clap::CommandFactory;
    // Every verb path under mailha, and whether `--help` hides it.
    fn walk(cmd: &clap::Command, path: &str, hidden: bool, out: &mut Vec<(String, bool)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let p = format!(
                "{path}__subcmd__{}",
                sub.get_name().replace('-', "__subcmd__")
            );
            let h = hidden || sub.is_hide_set();
            out.push((p.clone(), h));
            walk(sub, &p, h, out);
        }
    }
    let mut cmd = mailha::cli::Cli::command();
    cmd.build();
    let mut verbs = Vec::new();
    walk(&cmd, "mailha", false, &mut verbs);
    let bash =
        String::from_utf8(mailha_pkg::generated()["completions/mailha.bash"].clone()).unwrap();
    let has = |id: &str| bash.contains(&format!("{id})"));
    for (id, hidden) in &verbs {
        assert_eq!(has(id), !hidden, "{id} (hidden: {hidden})");
    }
    assert!(
        verbs
            .iter()
            .any(|(v, h)| v == "mailha__subcmd__package" && *h)
    );
    assert!(
        verbs
            .iter()
            .any(|(v, h)| v == "mailha__subcmd__config__subcmd__receive" && *h)
    );
    assert!(has("mailha__subcmd__config__subcmd__pull"));
    for arg in cmd.get_arguments().filter(|a| a.is_hide_set()) {
        let long = format!("--{}", arg.get_long().unwrap());
        assert!(!bash.contains(&long), "hidden {long} offered");
    }
}
