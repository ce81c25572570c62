//! The lock files a dead node's daemons left on the shared data, removed
//! at a takeover (the `stale_locks` parameter).
//!
//! Dovecot's dotlocks (`dovecot-uidlist.lock`, ...) hold `pid:host`. When
//! the host is another machine, Dovecot cannot ask whether that pid lives
//! and waits until the lock has not changed for its stale timeout (2
//! minutes for a mailbox's uidlist): every IMAP session that opens that
//! mailbox fails meanwhile. After a node died holding one, the survivor
//! knows better: its start mounted the filesystem under the lease, so no
//! process of the peer can reach these files any more, and none of its own
//! has had the mount open yet. Any file of those names is then a leftover.
//!
//! The walk is the child side of `mailha io stale-locks` (it reads a whole
//! tree, which a hung disk can hold in the kernel): it never follows a
//! symlink (each directory is opened with O_NOFOLLOW relative to its
//! parent, each file removed with unlinkat in the directory it was read
//! from), stays on the mount's filesystem, removes only regular files of
//! exactly the given names, and does not read a Maildir's `cur`, `new` and
//! `tmp` (they hold the messages, never a lock, and may be huge).

use nix::dir::{Dir, Type};
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What a walk did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleared {
    /// The files removed, under the root.
    pub removed: Vec<PathBuf>,
    /// Directories read.
    pub dirs: u64,
    /// What could not be opened, read or removed, each with its error.
    pub errors: Vec<String>,
}

impl Cleared {
    /// The child's answer: a summary line, then one removed path per line.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "removed {} in {} directories, {} errors\n",
            self.removed.len(),
            self.dirs,
            self.errors.len()
        );
        for p in &self.removed {
            s.push_str(&format!("{}\n", p.display()));
        }
        s
    }
}

const MAILDIR_PARTS: [&[u8]; 3] = [b"cur", b"new", b"tmp"];

fn open_dir(parent: impl AsFd, name: &CStr) -> nix::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn kind(dir: &OwnedFd, name: &CStr, t: Option<Type>) -> Option<Type> {
    // Some filesystems leave d_type unknown: ask, without following.
    t.or_else(|| {
        let st: FileStat =
            fstatat(dir.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
        match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFDIR => Some(Type::Directory),
            SFlag::S_IFREG => Some(Type::File),
            _ => None,
        }
    })
}

/// Removes every regular file named one of `names` below `root`.
pub fn clear(root: &Path, names: &[String]) -> Result<Cleared, String> {
    let fail = |e: nix::Error| format!("{}: {e}", root.display());
    let top = nix::fcntl::open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail)?;
    let dev = fstat(top.as_fd()).map_err(fail)?.st_dev;
    let names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
    let mut out = Cleared::default();
    // Depth first with an explicit stack: a deep tree cannot overflow
    // ours, and each directory's descriptor is closed before its
    // children are opened (no descriptor per level is kept).
    let mut stack: Vec<(OwnedFd, PathBuf)> = vec![(top, PathBuf::new())];
    while let Some((fd, rel)) = stack.pop() {
        let shown = || root.join(&rel).display().to_string();
        let listed = fd
            .try_clone()
            .map_err(|e| e.to_string())
            .and_then(|d| Dir::from_fd(d).map_err(|e| e.to_string()));
        let mut dir = match listed {
            Ok(d) => d,
            Err(e) => {
                out.errors.push(format!("{}: {e}", shown()));
                continue;
            }
        };
        out.dirs += 1;
        let mut subdirs: Vec<CString> = Vec::new();
        let mut doomed: Vec<CString> = Vec::new();
        for entry in dir.iter() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.errors.push(format!("{}: {e}", shown()));
                    break;
                }
            };
            let name = entry.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            match kind(&fd, name, entry.file_type()) {
                Some(Type::Directory) => subdirs.push(name.to_owned()),
                Some(Type::File) if names.contains(&bytes) => doomed.push(name.to_owned()),
                _ => {}
            }
        }
        drop(dir);
        for name in doomed {
            let p = rel.join(OsStr::from_bytes(name.to_bytes()));
            match unlinkat(fd.as_fd(), name.as_c_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) => out.removed.push(p),
                Err(e) => out.errors.push(format!("{}: {e}", root.join(&p).display())),
            }
        }
        let maildir = MAILDIR_PARTS
            .iter()
            .all(|part| subdirs.iter().any(|s| s.to_bytes() == *part));
        for name in subdirs {
            if maildir && MAILDIR_PARTS.contains(&name.to_bytes()) {
                continue;
            }
            let p = rel.join(OsStr::from_bytes(name.to_bytes()));
            match open_dir(fd.as_fd(), name.as_c_str()) {
                // Another filesystem mounted below: not this mount's data.
                Ok(child) if fstat(child.as_fd()).is_ok_and(|st| st.st_dev != dev) => {}
                Ok(child) => stack.push((child, p)),
                Err(e) => out.errors.push(format!("{}: {e}", root.join(&p).display())),
            }
        }
        drop(fd);
    }
    out.removed.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn names() -> Vec<String> {
        vec!["dovecot-uidlist.lock".into(), "subscriptions.lock".into()]
    }

    fn maildir(at: &Path) {
        for d in ["cur", "new", "tmp"] {
            fs::create_dir_all(at.join(d)).unwrap();
        }
    }

    #[test]
    fn a_dead_nodes_locks_are_removed_in_every_mailbox_and_nothing_else_is() {
        let t = tempfile::tempdir().unwrap();
        let inbox = t.path().join("vmail/lab.test/user1/Maildir");
        let sent = inbox.join(".Sent");
        maildir(&inbox);
        maildir(&sent);
        fs::write(inbox.join("dovecot-uidlist"), "3 V1 N2\n").unwrap();
        fs::write(inbox.join("dovecot-uidlist.lock"), "4242:node1").unwrap();
        fs::write(sent.join("dovecot-uidlist.lock"), "4242:node1").unwrap();
        fs::write(t.path().join("vmail/subscriptions.lock"), "1:node1").unwrap();
        fs::write(inbox.join("cur/1.M1.node1:2,S"), "Subject: hi\n").unwrap();
        fs::write(inbox.join("dovecot-uidlist.lock.bak"), "kept").unwrap();

        let c = clear(t.path(), &names()).unwrap();

        assert_eq!(
            c.removed,
            [
                PathBuf::from("vmail/lab.test/user1/Maildir/.Sent/dovecot-uidlist.lock"),
                PathBuf::from("vmail/lab.test/user1/Maildir/dovecot-uidlist.lock"),
                PathBuf::from("vmail/subscriptions.lock"),
            ]
        );
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert!(inbox.join("dovecot-uidlist").exists());
        assert!(inbox.join("cur/1.M1.node1:2,S").exists());
        assert!(inbox.join("dovecot-uidlist.lock.bak").exists());
    }

    #[test]
    fn a_maildirs_message_directories_are_not_read() {
        let t = tempfile::tempdir().unwrap();
        maildir(t.path());
        // Never there in Dovecot's layout: if it were, only a read of
        // `cur` would find it.
        fs::write(t.path().join("cur/dovecot-uidlist.lock"), "1:x").unwrap();
        let c = clear(t.path(), &names()).unwrap();
        assert!(c.removed.is_empty(), "{c:?}");
        assert_eq!(c.dirs, 1, "only the Maildir itself was read");
        // A directory that is no Maildir (no `tmp`) is read whole.
        fs::remove_dir(t.path().join("tmp")).unwrap();
        let c = clear(t.path(), &names()).unwrap();
        assert_eq!(c.removed, [PathBuf::from("cur/dovecot-uidlist.lock")]);
    }

    #[test]
    fn a_symlink_is_never_followed_nor_removed() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("dovecot-uidlist.lock"), "precious").unwrap();
        let data = t.path().join("data");
        fs::create_dir(&data).unwrap();
        std::os::unix::fs::symlink(&outside, data.join("linked-dir")).unwrap();
        std::os::unix::fs::symlink(
            outside.join("dovecot-uidlist.lock"),
            data.join("dovecot-uidlist.lock"),
        )
        .unwrap();
        // A directory of a lock's name is no lock either.
        fs::create_dir(data.join("subscriptions.lock")).unwrap();

        let c = clear(&data, &names()).unwrap();

        assert!(c.removed.is_empty(), "{c:?}");
        assert_eq!(
            fs::read_to_string(outside.join("dovecot-uidlist.lock")).unwrap(),
            "precious"
        );
        assert!(data.join("dovecot-uidlist.lock").symlink_metadata().is_ok());
        assert!(data.join("subscriptions.lock").is_dir());
    }

    #[test]
    fn the_root_itself_must_be_a_directory_not_a_symlink_to_one() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(clear(&link, &names()).is_err());
    }

    #[test]
    fn the_answer_names_what_was_removed() {
        let c = Cleared {
            removed: vec![PathBuf::from("a/dovecot-uidlist.lock")],
            dirs: 7,
            errors: vec!["x: EACCES".into()],
        };
        assert_eq!(
            c.to_text(),
            "removed 1 in 7 directories, 1 errors\na/dovecot-uidlist.lock\n"
        );
    }
}
