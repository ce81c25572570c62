//! Watch on/off per service, cluster-wide and live (the original's
//! HA_WATCH, which had to be edited on each node by hand).
//!
//! The state is an nvpair `mailha-watch-SERVICE = off` in mailha's own
//! property set of the CIB, so both nodes agree and `mailha apply` keeps
//! it. The service agent reads it at every monitor from the CIB file
//! Pacemaker keeps on local disk (a file read: the monitor path creates no
//! process), so the next monitor honours a change without restarting the
//! daemon.

use crate::cib::xml::El;
use quick_xml::events::Event;

pub const PREFIX: &str = "mailha-watch-";
pub const CIB_FILE: &str = "/var/lib/pacemaker/cib/cib.xml";

pub fn attr_name(service: &str) -> String {
    format!("{PREFIX}{service}")
}

/// Whether the CIB text says watching `service` is off. Scans for the one
/// nvpair instead of building a tree: this runs at every monitor.
pub fn is_off(cib_xml: &str, service: &str) -> bool {
    let want = attr_name(service);
    // The common case, no switch for this service, costs one substring
    // search instead of an XML scan of the whole file.
    if !cib_xml.contains(want.as_str()) {
        return false;
    }
    let mut r = quick_xml::Reader::from_str(cib_xml);
    let mut in_set = false;
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) if e.name().0 == "cluster_property_set" => {
                in_set = attr(&e, "id").as_deref() == Some(crate::cib::MAILHA_SET_ID);
            }
            Ok(Event::End(e)) if e.name().0 == "cluster_property_set" => in_set = false,
            // Cluster properties live in crm_config only.
            Ok(Event::End(e)) if e.name().0 == "crm_config" => return false,
            Ok(Event::Empty(e)) if e.name().0 == "crm_config" => return false,
            Ok(Event::Empty(e)) | Ok(Event::Start(e))
                if in_set
                    && e.name().0 == "nvpair"
                    && attr(&e, "name").as_deref() == Some(want.as_str()) =>
            {
                return attr(&e, "value").as_deref() == Some("off");
            }
            Ok(Event::Eof) | Err(_) => return false,
            _ => {}
        }
    }
}

fn attr(e: &quick_xml::events::BytesStart, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| {
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .ok()
            .map(|v| v.into_owned())
    })
}

/// The services whose watching is off, from a parsed CIB (or any tree
/// holding a crm_config).
pub fn off_list(cib: &El) -> Vec<String> {
    fn walk(e: &El, out: &mut Vec<String>) {
        if e.name == "cluster_property_set" && e.get("id") == Some(crate::cib::MAILHA_SET_ID) {
            for p in &e.children {
                if let (Some(n), Some("off")) = (p.get("name"), p.get("value"))
                    && let Some(svc) = n.strip_prefix(PREFIX)
                {
                    out.push(svc.to_string());
                }
            }
        }
        for c in &e.children {
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    walk(cib, &mut out);
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CIB: &str = r#"<cib><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="a" name="mailha-watch-smtp" value="off"/></cluster_property_set>
<cluster_property_set id="mailha">
  <nvpair id="mailha-mailha-config-digest" name="mailha-config-digest" value="x"/>
  <nvpair id="mailha-mailha-watch-crtmpd" name="mailha-watch-crtmpd" value="off"/>
  <nvpair id="mailha-mailha-watch-pop" name="mailha-watch-pop" value="on"/>
</cluster_property_set></crm_config></configuration></cib>"#;

    #[test]
    fn only_mailhas_own_set_counts() {
        assert!(is_off(CIB, "crtmpd"));
        assert!(!is_off(CIB, "pop"));
        assert!(
            !is_off(CIB, "smtp"),
            "a look-alike in another set is ignored"
        );
        assert!(!is_off("not xml <", "crtmpd"));
        let elsewhere = r#"<cib><configuration><crm_config/><resources>
<cluster_property_set id="mailha"><nvpair id="z" name="mailha-watch-imap" value="off"/></cluster_property_set>
</resources></configuration></cib>"#;
        assert!(
            !is_off(elsewhere, "imap"),
            "only crm_config holds cluster properties"
        );
        assert_eq!(
            off_list(&El::parse(CIB).unwrap()),
            vec!["crtmpd".to_string()]
        );
    }
}
