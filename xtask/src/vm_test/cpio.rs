//! A writer for uncompressed "newc" cpio archives, the format the kernel unpacks as an
//! initramfs. Every entry is owned by root with mtime 0 (the archive depends only on its
//! contents); missing parent directories are added, mode 0755, before their first child.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;
const TRAILER: &str = "TRAILER!!!";

pub struct Writer<W: Write> {
    out: W,
    /// Bytes written so far, for the 4-byte alignment of names and data.
    offset: u64,
    next_ino: u32,
    dirs: BTreeSet<PathBuf>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Self { out, offset: 0, next_ino: 1, dirs: BTreeSet::new() }
    }

    /// A regular file (`path` is relative to the archive's root, like every path here).
    pub fn file(&mut self, path: &Path, mode: u32, data: &[u8]) -> Result<()> {
        let path = self.parents(path)?;
        self.entry(&path, S_IFREG | mode, (0, 0), data)
    }

    /// A character device node.
    pub fn char_dev(&mut self, path: &Path, mode: u32, major: u32, minor: u32) -> Result<()> {
        let path = self.parents(path)?;
        self.entry(&path, S_IFCHR | mode, (major, minor), &[])
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> Result<W> {
        self.header(Path::new(TRAILER), 0, 0, (0, 0))?;
        self.out.flush().context("cannot write the archive")?;
        Ok(self.out)
    }

    /// Normalises `path` to a relative path of plain components and adds its missing parents.
    fn parents(&mut self, path: &Path) -> Result<PathBuf> {
        let mut clean = PathBuf::new();
        for component in path.components() {
            match component {
                Component::Normal(c) => clean.push(c),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    bail!("{} is not a plain path for an archive", path.display())
                }
            }
        }
        if clean.as_os_str().is_empty() {
            bail!("{:?} names no archive entry", path.display().to_string());
        }
        let mut parent = PathBuf::new();
        let components: Vec<_> = clean.components().collect();
        for component in &components[..components.len() - 1] {
            parent.push(component);
            if self.dirs.insert(parent.clone()) {
                self.entry(&parent, S_IFDIR | 0o755, (0, 0), &[])?;
            }
        }
        Ok(clean)
    }

    /// One entry; `rdev` is the (major, minor) of a device node.
    fn entry(&mut self, path: &Path, mode: u32, rdev: (u32, u32), data: &[u8]) -> Result<()> {
        let size = u32::try_from(data.len())
            .with_context(|| format!("{} is too large for a cpio archive", path.display()))?;
        self.header(path, mode, size, rdev)?;
        self.write(data)?;
        self.pad()
    }

    fn header(&mut self, path: &Path, mode: u32, size: u32, rdev: (u32, u32)) -> Result<()> {
        let name = path.as_os_str().as_bytes();
        let ino = if mode == 0 { 0 } else { self.next_ino };
        self.next_ino += 1;
        let nlink = if mode & 0o170_000 == S_IFDIR { 2 } else { 1 };
        let fields = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            size,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).context("file name too long")?,
            0, // check
        ];
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for field in fields {
            let _ = write!(header, "{field:08X}");
        }
        self.write(header.as_bytes())?;
        self.write(name)?;
        self.write(&[0])?;
        self.pad()
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).context("cannot write the archive")?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Zero bytes up to the next multiple of 4.
    fn pad(&mut self) -> Result<()> {
        let n = (4 - self.offset % 4) % 4;
        self.write(&[0; 3][..n as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry read back from an archive: (name, mode, rdev major, rdev minor, data).
    type Entry = (String, u32, u32, u32, Vec<u8>);

    /// A minimal newc reader that checks the format while it reads.
    fn read_archive(mut bytes: &[u8]) -> Vec<Entry> {
        let total = bytes.len();
        let mut entries = Vec::new();
        let hex = |b: &[u8]| u32::from_str_radix(std::str::from_utf8(b).unwrap(), 16).unwrap();
        loop {
            assert_eq!((total - bytes.len()) % 4, 0, "header not aligned");
            assert_eq!(&bytes[..6], b"070701");
            let field = |i: usize| hex(&bytes[6 + 8 * i..14 + 8 * i]);
            let (mode, size, namesize) = (field(1), field(6) as usize, field(11) as usize);
            assert_eq!((field(2), field(3), field(5)), (0, 0, 0), "uid, gid, mtime");
            let (major, minor) = (field(9), field(10));
            let name_end = 110 + namesize;
            assert_eq!(bytes[name_end - 1], 0, "name not NUL-terminated");
            let name = String::from_utf8(bytes[110..name_end - 1].to_vec()).unwrap();
            let data_start = name_end.next_multiple_of(4);
            let data = bytes[data_start..data_start + size].to_vec();
            bytes = &bytes[(data_start + size).next_multiple_of(4)..];
            if name == TRAILER {
                assert!(bytes.is_empty(), "data after the trailer");
                return entries;
            }
            entries.push((name, mode, major, minor, data));
        }
    }

    #[test]
    fn writes_entries_parents_first_and_aligned() {
        let mut w = Writer::new(Vec::new());
        w.file(Path::new("/bin/busybox"), 0o755, b"ELF!!").unwrap();
        w.file(Path::new("bin/sh"), 0o755, b"busybox").unwrap(); // bin is there already
        w.char_dev(Path::new("dev/console"), 0o600, 5, 1).unwrap();
        w.file(Path::new("./init"), 0o755, b"#!/bin/sh\n").unwrap();
        let entries = read_archive(&w.finish().unwrap());
        let summary: Vec<_> =
            entries.iter().map(|(n, m, ma, mi, d)| (n.as_str(), *m, *ma, *mi, d.len())).collect();
        assert_eq!(
            summary,
            [
                ("bin", S_IFDIR | 0o755, 0, 0, 0),
                ("bin/busybox", S_IFREG | 0o755, 0, 0, 5),
                ("bin/sh", S_IFREG | 0o755, 0, 0, 7),
                ("dev", S_IFDIR | 0o755, 0, 0, 0),
                ("dev/console", S_IFCHR | 0o600, 5, 1, 0),
                ("init", S_IFREG | 0o755, 0, 0, 10),
            ]
        );
        assert_eq!(entries[2].4, b"busybox");
    }

    #[test]
    fn the_first_header_is_exactly_newc() {
        let mut w = Writer::new(Vec::new());
        w.file(Path::new("a"), 0o644, b"xyz").unwrap();
        let bytes = w.finish().unwrap();
        let expected = "070701\
                        00000001000081A4000000000000000000000001\
                        0000000000000003000000000000000000000000\
                        000000000000000200000000";
        assert_eq!(std::str::from_utf8(&bytes[..110]).unwrap(), expected);
        // name "a\0" (110 + 2 → padded to 112), then the data padded to 116.
        assert_eq!(&bytes[110..116], b"a\0xyz\0");
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn bad_paths_are_refused() {
        let mut w = Writer::new(Vec::new());
        assert!(w.file(Path::new("../etc/passwd"), 0o644, b"").is_err());
        assert!(w.file(Path::new("/"), 0o644, b"").is_err());
    }
}
