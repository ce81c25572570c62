//! mailha's OCF resource agents. Each is a face of the one binary,
//! selected by argv[0] (see `faces::FACES`), and built on `crate::ocf`.

pub mod config;
pub mod lease;
pub mod sender;
pub mod service;
pub mod storage;

use crate::faces::Face;
use crate::ocf::AgentSpec;

/// The parameter table of the OCF agent a face is (None: not an OCF
/// agent). Its meta-data and its man page both come from it, so a new
/// agent's face must name its table here.
pub fn spec(face: Face) -> Option<&'static AgentSpec> {
    match face {
        Face::ServiceAgent => Some(&service::SPEC),
        Face::StorageAgent => Some(&storage::SPEC),
        Face::SenderAgent => Some(&sender::SPEC),
        Face::LeaseAgent => Some(&lease::SPEC),
        Face::ConfigAgent => Some(&config::SPEC),
        Face::Cli | Face::AlertAgent | Face::FenceAgent => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::faces::{FACES, OCF_DIR};

    #[test]
    fn every_ocf_face_has_the_table_of_the_agent_it_installs() {
        for f in FACES {
            match (super::spec(f.face), f.link) {
                (Some(spec), Some(link)) => {
                    assert_eq!(spec.name, f.name);
                    assert_eq!(link, format!("{OCF_DIR}/{}", spec.name));
                }
                (None, link) => assert!(
                    !link.is_some_and(|l| l.starts_with(OCF_DIR)),
                    "{link:?} is in the OCF directory but has no parameter table"
                ),
                (Some(_), None) => panic!("{}: an agent that is not installed", f.name),
            }
        }
    }
}
