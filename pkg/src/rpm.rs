//! The .rpm for the original's users (CentOS then, Rocky/Alma 9 now):
//! the same files as the .deb, from the same `mailha install --root` of
//! the shipped binary. Written with the `rpm` crate, the library
//! cargo-generate-rpm is built on: cargo-generate-rpm (0.21) packs every
//! asset as a regular file, so the seven faces would be seven copies of
//! the binary instead of symlinks.

use mailha::install::{Content, plan};
use std::path::Path;

/// What the package needs at run time, in EL's names (pacemaker-cli is
/// Debian's pacemaker-cli-utils).
pub const REQUIRES: &[&str] = &["corosync", "pacemaker", "pacemaker-cli", "resource-agents"];

/// %post: the directories (as the .deb's postinst). Starts nothing.
const POST: &str = "/usr/sbin/mailha package configure >/dev/null\n";

/// %preun: refuse an erase (`$1` = 0; an upgrade is 1) while this node
/// runs mailha's resources or its lease keeper (as the .deb's prerm).
const PREUN: &str =
    "if [ \"$1\" = 0 ]; then timeout 60 /usr/sbin/mailha package may-remove || exit 1; fi\n";

/// Builds the rpm of `stage` (a `mailha install --root` of the binary to
/// ship) into `out`: every file and symlink of the install plan, with
/// the plan's modes; the plan's directories are made by %post.
pub fn build(stage: &Path, version: &str, out: &Path) -> Result<(), rpm::Error> {
    let mut b = rpm::PackageBuilder::new(
        "mailha",
        version,
        crate::LICENSE,
        "x86_64",
        "High availability for two-node mail servers (Corosync + Pacemaker)",
    );
    b.using_config(
        rpm::BuildConfig::default()
            .compression(rpm::CompressionType::Gzip)
            .source_date(0u32),
    );
    b.description(crate::DESCRIPTION)
        .post_install_script(POST)
        .pre_uninstall_script(PREUN);
    for r in REQUIRES {
        b.requires(rpm::Dependency::any(*r));
    }
    for e in plan() {
        let src = stage.join(e.path.trim_start_matches('/'));
        match &e.content {
            Content::Binary | Content::File(_) => {
                let mut o = rpm::FileOptions::new(&e.path).permissions(e.mode as u16);
                if e.path.starts_with("/etc/") {
                    o = o.config().noreplace();
                }
                if e.path.starts_with(mailha::install::DOC_DIR) {
                    o = o.doc();
                }
                b.with_file(&src, o)?;
            }
            Content::Link(target) => {
                b.with_symlink(rpm::FileOptions::symlink(&e.path, target))?;
            }
            Content::Dir | Content::Spool => {}
        }
    }
    b.build()?.write_file(out)
}
