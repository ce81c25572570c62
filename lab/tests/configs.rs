//! The lab's own configs (lab/configs/*.toml) as the lab loads them: valid,
//! and accepted by Pacemaker's crm_verify once rendered.

#[path = "../../tests/common/mod.rs"]
mod product;

use mailha::cib;
use mailha_lab::{provision, topology::Topology};
use product::{crm_verify, have_crm_verify};

#[test]
fn the_labs_eyou_config_on_its_stand_in_tree_is_accepted_by_crm_verify() {
    let cfg = provision::load_lab_config(
        provision::Profile::Eyou,
        None,
        &Topology::new(""),
        Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .config;
    let xml = cib::render_full(&cfg);
    for svc in ["svc-mysql", "svc-memcache_session", "svc-smtp", "svc-imap"] {
        assert!(xml.contains(&format!("<primitive id=\"{svc}\"")), "{svc}");
    }
    assert!(
        !xml.contains("svc-gearman"),
        "not installed in the stand-in"
    );
    if have_crm_verify()
        && let Err(e) = crm_verify(&xml, &["node1", "node2"])
    {
        panic!("crm_verify rejected lab/configs/eyou.toml: {e}");
    }
}
