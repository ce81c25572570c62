//! mailha in the nodes from its Debian package, as an administrator
//! installs it (issue 14): the .deb is staged in each node's disk and
//! `dpkg -i` runs inside the booted node, maintainer scripts and all. The
//! `upgrade` drill installs a newer version of the same package on a
//! running node.

use super::cmd::Cmd;
use super::{Lab, LabError, plan};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a node finds the packages the lab gives it (in its own disk: the
/// lab's base dir is hidden from the nodes).
pub const NODE_DIR: &str = "var/cache/mailha-lab";

/// dpkg, man-db's trigger included, takes under a second here; a node
/// under drill load may be slower.
const DPKG_DEADLINE: Duration = Duration::from_secs(180);

/// The version an upgrade drill gives the re-versioned package: higher than
/// `version` in dpkg's order (a `+` suffix sorts after the bare revision).
pub fn upgraded_version(version: &str, n: u32) -> String {
    format!("{version}+lab{n}")
}

/// The `Version:` field of a control file replaced; None when it has none.
pub fn with_version(control: &str, version: &str) -> Option<String> {
    let mut found = false;
    let out: Vec<String> = control
        .lines()
        .map(|l| {
            if l.starts_with("Version:") {
                found = true;
                format!("Version: {version}")
            } else {
                l.to_string()
            }
        })
        .collect();
    found.then(|| out.join("\n") + "\n")
}

/// A .deb's name as Debian names it: `<package>_<version>_<arch>.deb`.
pub fn file_name(version: &str) -> String {
    format!("mailha_{version}_amd64.deb")
}

impl Lab<'_> {
    /// The lab's copy of the package the nodes install (under the base
    /// dir, so a rebuild of the tree during the lab changes nothing).
    pub fn keep_package(&self, deb: &Path) -> Result<PathBuf, LabError> {
        let dir = self.base_dir.join("packages");
        std::fs::create_dir_all(&dir).map_err(LabError::io(&dir))?;
        let name = deb
            .file_name()
            .ok_or_else(|| LabError::Cluster(format!("{}: not a file", deb.display())))?;
        let kept = dir.join(name);
        std::fs::copy(deb, &kept).map_err(LabError::io(deb))?;
        Ok(kept)
    }

    /// The package put where node `root`'s dpkg will find it; returns its
    /// path inside the node.
    pub fn stage_package(&self, deb: &Path, root: &Path) -> Result<String, LabError> {
        let dir = root.join(NODE_DIR);
        std::fs::create_dir_all(&dir).map_err(LabError::io(&dir))?;
        let name = deb
            .file_name()
            .ok_or_else(|| LabError::Cluster(format!("{}: not a file", deb.display())))?;
        std::fs::copy(deb, dir.join(name)).map_err(LabError::io(deb))?;
        Ok(format!("/{NODE_DIR}/{}", name.to_string_lossy()))
    }

    /// `dpkg -i` of a staged package inside the running node `pid1`.
    pub fn dpkg_install(&self, node: &str, pid1: u32, in_node: &str) -> Result<(), LabError> {
        let o = self
            .runner
            .run(&plan::in_node(pid1, &["dpkg", "-i", in_node]).deadline(DPKG_DEADLINE))?;
        if !o.success() {
            return Err(LabError::Cluster(format!(
                "{node}: dpkg -i {in_node}: {}{}",
                o.stdout.trim(),
                o.stderr.trim()
            )));
        }
        Ok(())
    }

    /// The installed package's version in node `pid1`.
    pub fn installed_version(&self, pid1: u32) -> Result<String, LabError> {
        let o = self.runner.run_ok(
            &plan::in_node(pid1, &["dpkg-query", "-W", "-f", "${Version}", "mailha"])
                .deadline(Duration::from_secs(30)),
        )?;
        Ok(o.stdout.trim().to_string())
    }

    /// The same package with a higher version, built under `dir`: what an
    /// upgrade looks like to dpkg (prerm upgrade, files replaced, postinst
    /// configure from the old version) with a binary known to work.
    pub fn reversioned(&self, deb: &Path, dir: &Path, version: &str) -> Result<PathBuf, LabError> {
        let tree = dir.join("tree");
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(dir).map_err(LabError::io(dir))?;
        self.runner.run_ok(
            &Cmd::new("dpkg-deb")
                .arg("--raw-extract")
                .arg(deb.display().to_string())
                .arg(tree.display().to_string())
                .deadline(Duration::from_secs(60)),
        )?;
        let control = tree.join("DEBIAN/control");
        let text = std::fs::read_to_string(&control).map_err(LabError::io(&control))?;
        let new = with_version(&text, version).ok_or_else(|| {
            LabError::Cluster(format!(
                "{}: its control file has no Version",
                deb.display()
            ))
        })?;
        std::fs::write(&control, new).map_err(LabError::io(&control))?;
        let out = dir.join(file_name(version));
        self.runner.run_ok(
            &Cmd::new("dpkg-deb")
                .args(["-Zgzip", "--build"])
                .arg(tree.display().to_string())
                .arg(out.display().to_string())
                .deadline(Duration::from_secs(120)),
        )?;
        let _ = std::fs::remove_dir_all(&tree);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_gets_a_version_dpkg_orders_after_the_installed_one() {
        let v = upgraded_version("0.1.0-1", 1);
        assert_eq!(v, "0.1.0-1+lab1");
        let o = std::process::Command::new("dpkg")
            .args(["--compare-versions", &v, "gt", "0.1.0-1"])
            .status();
        // dpkg is on every Debian machine this runs on.
        assert!(o.expect("dpkg").success(), "{v} must sort after 0.1.0-1");
    }

    #[test]
    fn only_the_version_field_of_a_control_file_changes() {
        let c = "Package: mailha\nVersion: 0.1.0-1\nDepends: x\n";
        assert_eq!(
            with_version(c, "0.1.0-1+lab1").unwrap(),
            "Package: mailha\nVersion: 0.1.0-1+lab1\nDepends: x\n"
        );
        assert_eq!(with_version("Package: mailha\n", "1"), None);
    }
}
