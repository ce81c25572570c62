//! /proc/self/mountinfo, parsed. "Is it mounted" is answered here and
//! never by a stat() of the mount point, which hangs on a dead server or
//! disk.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub major_minor: (u32, u32),
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
}

/// The kernel escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the whole file; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let (maj, min) = f.get(2)?.split_once(':')?;
            let mut r = right.split(' ');
            let fstype = r.next()?.to_string();
            let source = unescape(r.next()?);
            Some(MountEntry {
                major_minor: (maj.parse().ok()?, min.parse().ok()?),
                mount_point: unescape(f.get(4)?),
                fstype,
                source,
            })
        })
        .collect()
}

/// The entry mounted on `dir` last (the one that is visible), if any.
pub fn find<'a>(entries: &'a [MountEntry], dir: &str) -> Option<&'a MountEntry> {
    entries.iter().rev().find(|e| e.mount_point == dir)
}

pub fn read() -> std::io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// The mount table of `pid`'s mount namespace, as that process sees it.
pub fn read_of(proc_root: &std::path::Path, pid: u32) -> std::io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read_to_string(
        proc_root.join(pid.to_string()).join("mountinfo"),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
36 22 7:3 / /srv/mail\\040data rw,noatime - ext4 /run/lab/data rw,mmp
40 22 0:45 / /nfs_data rw,relatime - nfs4 198.51.100.30:/export rw,vers=4.2
41 22 7:4 / /srv/mail\\040data rw - ext4 /dev/loop4 rw
";

    #[test]
    fn entries_are_parsed_and_unescaped() {
        let e = parse(SAMPLE);
        assert_eq!(e.len(), 4);
        assert_eq!(e[1].mount_point, "/srv/mail data");
        assert_eq!(e[1].major_minor, (7, 3));
        assert_eq!(e[2].source, "198.51.100.30:/export");
        assert_eq!(e[2].fstype, "nfs4");
    }

    #[test]
    fn the_visible_mount_is_the_last_on_a_directory() {
        let e = parse(SAMPLE);
        assert_eq!(find(&e, "/srv/mail data").unwrap().major_minor, (7, 4));
        assert!(find(&e, "/srv").is_none());
    }

    #[test]
    fn junk_lines_are_skipped() {
        assert!(parse("garbage\n1 2 x y z - \n").is_empty());
    }
}
