//! UUID and LABEL of a filesystem from its superblock, so `UUID=` and
//! `LABEL=` work without udev (the lab has none). Pure over the first
//! 64 KiB of the device; the read itself happens in a child with a
//! deadline (`device::read_identity`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub fstype: &'static str,
    pub uuid: String,
    pub label: String,
    /// ext4 multi-mount protection is on (`INCOMPAT_MMP`).
    pub mmp: bool,
    /// ext4's journal needs recovery (`INCOMPAT_RECOVER`): the filesystem
    /// is mounted somewhere, or was not unmounted cleanly. Never change its
    /// features then.
    pub in_use: bool,
}

const EXT4_INCOMPAT_RECOVER: u32 = 0x0004;
const EXT4_INCOMPAT_MMP: u32 = 0x0100;

fn uuid_string(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn label_string(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).trim().to_string()
}

/// ext2/3/4: superblock at 1024, magic 0xEF53 at +0x38, incompatible
/// features at +0x60, UUID at +0x68, volume name at +0x78. XFS: "XFSB" at
/// 0, UUID at 32, name at 108.
pub fn identify(head: &[u8]) -> Option<Identity> {
    if head.len() >= 1024 + 0x88 && head[1024 + 0x38..1024 + 0x3a] == [0x53, 0xef] {
        let sb = &head[1024..];
        let incompat = u32::from_le_bytes([sb[0x60], sb[0x61], sb[0x62], sb[0x63]]);
        return Some(Identity {
            fstype: "ext4",
            uuid: uuid_string(&sb[0x68..0x78]),
            label: label_string(&sb[0x78..0x88]),
            mmp: incompat & EXT4_INCOMPAT_MMP != 0,
            in_use: incompat & EXT4_INCOMPAT_RECOVER != 0,
        });
    }
    if head.len() >= 120 && &head[0..4] == b"XFSB" {
        return Some(Identity {
            fstype: "xfs",
            uuid: uuid_string(&head[32..48]),
            label: label_string(&head[108..120]),
            mmp: false,
            in_use: false,
        });
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An image made by mkfs.ext4 with `args`, as the lab makes its disks;
    /// None (test skipped, said on stderr past the harness's capture) only
    /// when mkfs.ext4 is not installed, and never in CI (env `CI`). A
    /// mkfs.ext4 that runs and fails is a failure: the MMP tests would
    /// otherwise pass without having looked at a filesystem.
    pub(crate) fn ext4_image(args: &[&str]) -> Option<(tempfile::TempDir, std::path::PathBuf)> {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        let out = std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .args(args)
            .arg(&img)
            .output();
        match out {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "mkfs.ext4 missing in CI (scripts/install-deps.sh installs e2fsprogs)"
                );
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "SKIPPED: mkfs.ext4 not installed");
                None
            }
            Err(e) => panic!("mkfs.ext4: {e}"),
            Ok(o) => {
                assert!(
                    o.status.success(),
                    "mkfs.ext4 {args:?} failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr)
                );
                Some((dir, img))
            }
        }
    }

    #[test]
    fn a_failing_mkfs_is_a_failure_not_a_skip() {
        let installed = std::process::Command::new("mkfs.ext4")
            .arg("-V")
            .output()
            .is_ok();
        let r = std::panic::catch_unwind(|| ext4_image(&["-O", "no-such-feature"]).is_some());
        match r {
            Err(_) => assert!(installed, "a missing mkfs.ext4 is a skip"),
            Ok(made) => assert!(
                !installed && !made,
                "mkfs.ext4 is installed and failed: that must fail the test, not skip it"
            ),
        }
    }

    #[test]
    fn a_real_ext4_superblock_is_identified() {
        let Some((_dir, img)) = ext4_image(&[
            "-L",
            "maildata",
            "-U",
            "74efe5c0-3b1a-4f7e-9a57-2c0c3e4f1a10",
        ]) else {
            return;
        };
        let head = std::fs::read(&img).unwrap()[..65536].to_vec();
        let id = identify(&head).unwrap();
        assert_eq!(id.label, "maildata");
        assert_eq!(id.uuid, "74efe5c0-3b1a-4f7e-9a57-2c0c3e4f1a10");
        assert!(!id.mmp, "mkfs.ext4 leaves MMP off by default");
        assert!(!id.in_use);

        let ok = std::process::Command::new("tune2fs")
            .args(["-O", "mmp"])
            .arg(&img)
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "tune2fs -O mmp");
        let head = std::fs::read(&img).unwrap()[..65536].to_vec();
        assert!(
            identify(&head).unwrap().mmp,
            "MMP seen after tune2fs -O mmp"
        );
    }

    #[test]
    fn a_journal_that_needs_recovery_means_in_use() {
        let mut head = vec![0u8; 4096];
        head[1024 + 0x38] = 0x53;
        head[1024 + 0x39] = 0xef;
        head[1024 + 0x60] = 0x04 | 0x40;
        let id = identify(&head).unwrap();
        assert!(id.in_use);
        assert!(!id.mmp);
    }

    #[test]
    fn zeroes_are_no_filesystem() {
        assert_eq!(identify(&[0u8; 65536]), None);
        assert_eq!(identify(&[0u8; 10]), None);
    }
}
