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

/// Whether the CIB file names `service`'s switch at all, read through a
/// small stack buffer: the common answer, no, then costs the monitor no
/// allocation of the whole file (~25 KB, fresh pages each run: page
/// faults are most of a monitor's CPU here, bench/monitor.sh).
pub fn mentions(mut cib: impl std::io::Read, service: &str) -> std::io::Result<bool> {
    let want = attr_name(service);
    let want = want.as_bytes();
    let mut buf = [0u8; 4096];
    if want.len() * 2 > buf.len() {
        let mut all = Vec::new();
        cib.read_to_end(&mut all)?;
        return Ok(all.windows(want.len()).any(|w| w == want));
    }
    // A match may straddle two reads: keep the last len-1 bytes in front.
    let keep = want.len().saturating_sub(1);
    let mut have = 0;
    loop {
        let n = match cib.read(&mut buf[have..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(false);
        }
        have += n;
        if buf[..have].windows(want.len()).any(|w| w == want) {
            return Ok(true);
        }
        if have > keep {
            buf.copy_within(have - keep..have, 0);
            have = keep;
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

    /// Hands out at most `step` bytes per read, as a pipe or a slow
    /// filesystem may.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_switch_is_found_wherever_the_reads_split_it() {
        let name = attr_name("postfix");
        // Padding puts the name across the 4 KiB buffer's edge and across
        // every small read's edge.
        for pad in [0, 1, 4080, 4085, 4095, 4096, 9000] {
            let text = format!("{}<nvpair name=\"{name}\" value=\"off\"/>", "x".repeat(pad));
            for step in [1, 3, 7, 4096, 100_000] {
                let r = Trickle {
                    data: text.as_bytes(),
                    step,
                };
                assert!(mentions(r, "postfix").unwrap(), "pad {pad} step {step}");
            }
            let r = Trickle {
                data: text.as_bytes(),
                step: 5,
            };
            assert!(!mentions(r, "dovecot").unwrap(), "pad {pad}");
        }
        // A longer name that merely starts like it is not it... but a
        // shorter one inside it is: the full parse decides (is_off).
        let text = format!("<nvpair name=\"{}\"/>", attr_name("postfix2"));
        assert!(mentions(text.as_bytes(), "postfix").unwrap());
        assert!(!is_off(&text, "postfix"));
        assert!(!mentions(&b""[..], "postfix").unwrap());
    }

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
