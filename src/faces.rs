//! The faces of the one binary: which file name (argv[0]) selects which
//! agent, and where each is installed. The one table read by the CLI's
//! dispatch, `mailha install`, the package's file list and the man pages,
//! so it sits below all of them (it names paths, never code above it).

use std::path::Path;

/// Where the binary itself is installed; every face is a symlink to it.
pub const BIN_PATH: &str = "/usr/sbin/mailha";

/// Which face of the binary argv[0] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Cli,
    /// `alert_mailha`: Pacemaker's alert agent; records into the spool.
    AlertAgent,
    /// `ocf:mailha:service`.
    ServiceAgent,
    /// `ocf:mailha:storage`.
    StorageAgent,
    /// `ocf:mailha:sender`: the alert sender as a cloned resource.
    SenderAgent,
    /// `ocf:mailha:lease`.
    LeaseAgent,
    /// `ocf:mailha:config`: the config sync's catch-up, cloned.
    ConfigAgent,
    /// `fence_mailha`: the fence agent.
    FenceAgent,
}

/// One face: the file name argv[0] carries, the face it selects, and
/// where it is installed (None: the binary itself, at `BIN_PATH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaceEntry {
    pub name: &'static str,
    pub face: Face,
    pub link: Option<&'static str>,
}

const fn face(name: &'static str, face: Face, link: Option<&'static str>) -> FaceEntry {
    FaceEntry { name, face, link }
}

/// The OCF agents' directory (`ocf:mailha:TYPE` is `OCF_DIR/TYPE`).
pub const OCF_DIR: &str = "/usr/lib/ocf/resource.d/mailha";

/// Each agent adds its row here when it lands. Any other name is the
/// CLI, so a renamed or versioned binary still works as `mailha`.
pub const FACES: &[FaceEntry] = &[
    face("mailha", Face::Cli, None),
    face(
        "alert_mailha",
        Face::AlertAgent,
        Some(crate::cib::ALERT_AGENT_PATH),
    ),
    face(
        "service",
        Face::ServiceAgent,
        Some("/usr/lib/ocf/resource.d/mailha/service"),
    ),
    face(
        "storage",
        Face::StorageAgent,
        Some("/usr/lib/ocf/resource.d/mailha/storage"),
    ),
    face(
        "sender",
        Face::SenderAgent,
        Some("/usr/lib/ocf/resource.d/mailha/sender"),
    ),
    face(
        "lease",
        Face::LeaseAgent,
        Some("/usr/lib/ocf/resource.d/mailha/lease"),
    ),
    face(
        "config",
        Face::ConfigAgent,
        Some("/usr/lib/ocf/resource.d/mailha/config"),
    ),
    face(
        crate::fence::NAME,
        Face::FenceAgent,
        Some("/usr/sbin/fence_mailha"),
    ),
];

pub fn face_of(argv0: &Path) -> Face {
    let name = argv0.file_name().and_then(|n| n.to_str()).unwrap_or("");
    FACES
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.face)
        .unwrap_or(Face::Cli)
}

/// What the symlink at `link` points to: `BIN_PATH` relative to the
/// link's directory (Debian policy 10.5: links within one top-level
/// directory are relative, so an install under another root, a chroot or
/// the lab's pinned tree, resolves inside it).
pub fn link_target(link: &str) -> String {
    let dir: Vec<&str> = link
        .trim_start_matches('/')
        .rsplit_once('/')
        .map(|(d, _)| d.split('/').collect())
        .unwrap_or_default();
    let bin: Vec<&str> = BIN_PATH.trim_start_matches('/').split('/').collect();
    let common = dir.iter().zip(&bin).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; dir.len() - common];
    parts.extend(&bin[common..]);
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_selects_the_face_and_any_other_name_is_the_cli() {
        assert_eq!(
            face_of(Path::new("/usr/lib/ocf/resource.d/mailha/storage")),
            Face::StorageAgent
        );
        assert_eq!(face_of(Path::new("fence_mailha")), Face::FenceAgent);
        assert_eq!(face_of(Path::new("/tmp/mailha-0.2")), Face::Cli);
    }

    #[test]
    fn every_face_links_relatively_to_the_binary() {
        assert_eq!(link_target("/usr/sbin/fence_mailha"), "mailha");
        assert_eq!(
            link_target("/usr/lib/ocf/resource.d/mailha/lease"),
            "../../../../sbin/mailha"
        );
        assert_eq!(
            link_target("/usr/lib/mailha/alert_mailha"),
            "../../sbin/mailha"
        );
        for f in FACES {
            if let Some(l) = f.link {
                let dir = Path::new(l).parent().unwrap();
                let resolved = dir.join(link_target(l));
                let mut norm = std::path::PathBuf::new();
                for c in resolved.components() {
                    match c {
                        std::path::Component::ParentDir => {
                            norm.pop();
                        }
                        c => norm.push(c),
                    }
                }
                assert_eq!(norm, Path::new(BIN_PATH), "{l}");
            }
        }
    }
}
