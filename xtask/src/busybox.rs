//! Finds a statically linked busybox and checks it before it goes into the rootfs.
//!
//! In order: the binary the user names (`--busybox PATH` or `$BOXR_BUSYBOX`); the file at
//! `--url`, downloaded with curl and checked against `--sha256`; Debian's `busybox-static`
//! package, fetched with `apt-get download` (nothing is installed) and checked against the
//! SHA-256 that apt's package index lists for the downloaded version. Whatever the source, a
//! binary that is not statically linked is refused.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail, ensure};
use sha2::{Digest as _, Sha256};

use crate::{TempDir, on_path, output, run_cmd, step};

const PACKAGE: &str = "busybox-static";
const ENV: &str = "BOXR_BUSYBOX";

/// Where busybox comes from (command-line options shared by the tasks that build the rootfs).
#[derive(clap::Args)]
pub struct Source {
    /// Use this statically linked busybox binary [env: BOXR_BUSYBOX]. Default: Debian's
    /// busybox-static package, fetched with apt-get download.
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    busybox: Option<PathBuf>,
    /// Download a statically linked busybox binary from URL with curl (file:// works too).
    #[arg(long, value_name = "URL", requires = "sha256")]
    url: Option<String>,
    /// The SHA-256 of the file at --url, as 64 hex digits.
    #[arg(long, value_name = "HEX", requires = "url", value_parser = parse_sha256)]
    sha256: Option<String>,
}

/// A verified, statically linked busybox binary.
pub struct Busybox {
    pub bytes: Vec<u8>,
    pub sha256: String,
    /// Where it came from, for messages and the rootfs stamp.
    pub origin: String,
}

enum Choice {
    File(PathBuf),
    Url { url: String, sha256: String },
    Apt,
}

impl Source {
    fn choice(&self) -> Choice {
        match (&self.busybox, &self.url, &self.sha256) {
            (Some(path), ..) => Choice::File(path.clone()),
            (None, Some(url), Some(sha256)) => {
                Choice::Url { url: url.clone(), sha256: sha256.clone() }
            }
            _ => match std::env::var_os(ENV) {
                Some(path) if !path.is_empty() => Choice::File(path.into()),
                _ => Choice::Apt,
            },
        }
    }

    /// The SHA-256 of the busybox this source gives, when it is known without fetching anything
    /// (a local file or a URL with its digest); `None` for apt, which follows the archive.
    pub fn known_sha256(&self) -> Result<Option<String>> {
        Ok(match self.choice() {
            Choice::File(path) => Some(sha256_hex(&read(&path)?)),
            Choice::Url { sha256, .. } => Some(sha256),
            Choice::Apt => None,
        })
    }

    /// Gets busybox, using `cache` (a directory under target/) for downloads.
    pub fn fetch(&self, cache: &Path) -> Result<Busybox> {
        let busybox = match self.choice() {
            Choice::File(path) => {
                step(&format!("using busybox from {}", path.display()));
                let bytes = read(&path)?;
                Busybox { sha256: sha256_hex(&bytes), bytes, origin: path.display().to_string() }
            }
            Choice::Url { url, sha256 } => from_url(&url, &sha256, cache)?,
            Choice::Apt if on_path("apt-get") => from_apt(cache).with_context(|| {
                format!(
                    "getting Debian's {PACKAGE} with apt failed (alternatively pass --busybox PATH, \
                     set {ENV}, or pass --url URL --sha256 HEX)"
                )
            })?,
            Choice::Apt => bail!(
                "no busybox: this host has no apt-get to fetch Debian's {PACKAGE}; pass --busybox \
                 PATH (or set {ENV}) to a statically linked busybox, or --url URL --sha256 HEX to \
                 download one"
            ),
        };
        boxr_cli::elf::check_static_bytes(&busybox.bytes)
            .map_err(|e| anyhow!("busybox from {} is not usable: it is {e}", busybox.origin))?;
        Ok(busybox)
    }
}

fn from_url(url: &str, sha256: &str, cache: &Path) -> Result<Busybox> {
    ensure!(
        on_path("curl"),
        "--url needs curl, which is not installed: install it, or download the file yourself and \
         pass --busybox PATH"
    );
    let tmp = TempDir::new(cache, "download")?;
    let file = tmp.path().join("busybox");
    step(&format!("downloading {url}"));
    run_cmd(
        Command::new("curl")
            .args(["--fail", "--location", "--progress-bar", "--output"])
            .arg(&file)
            .arg(url),
    )?;
    let bytes = read(&file)?;
    check_digest(url, sha256, &sha256_hex(&bytes))?;
    Ok(Busybox { sha256: sha256.to_owned(), bytes, origin: url.to_owned() })
}

/// A downloaded .deb and the index entry it must match.
struct Deb {
    path: PathBuf,
    entry: Entry,
}

fn from_apt(cache: &Path) -> Result<Busybox> {
    let dir = cache.join("apt");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let deb = match download_deb(&dir) {
        Ok(deb) => deb,
        Err(err) => {
            // Usually apt has no package lists yet (or stale ones): refresh them once.
            step(&format!("{err:#}; refreshing apt's package lists and retrying"));
            run_cmd(Command::new("apt-get").arg("update"))?;
            download_deb(&dir)?
        }
    };
    check_digest(
        &deb.path.display().to_string(),
        &deb.entry.sha256,
        &sha256_hex(&read(&deb.path)?),
    )?;

    let tmp = TempDir::new(cache, "deb")?;
    step(&format!("extracting busybox from {}", deb.path.display()));
    run_cmd(Command::new("dpkg-deb").arg("-x").arg(&deb.path).arg(tmp.path()))?;
    let binary = ["bin/busybox", "usr/bin/busybox"]
        .iter()
        .map(|p| tmp.path().join(p))
        .find(|p| p.is_file())
        .with_context(|| {
            format!("{} holds neither bin/busybox nor usr/bin/busybox", deb.path.display())
        })?;
    let bytes = read(&binary)?;
    let origin = format!("Debian's {PACKAGE} {} ({})", deb.entry.version, deb.entry.arch);
    Ok(Busybox { sha256: sha256_hex(&bytes), bytes, origin })
}

/// Asks apt for the candidate version of the package and downloads exactly that version.
fn download_deb(dir: &Path) -> Result<Deb> {
    step(&format!("looking up {PACKAGE} in apt's package index"));
    let index = output(Command::new("apt-cache").args(["show", "--no-all-versions", PACKAGE]))?;
    let entry = index_entry(&index)?;
    step(&format!(
        "downloading {PACKAGE} {} ({}) into {}",
        entry.version,
        entry.arch,
        dir.display()
    ));
    run_cmd(
        Command::new("apt-get")
            // Downloading into a directory apt's sandbox user may not write to; say so up front
            // rather than have apt warn that it falls back to root.
            .args(["-o", "APT::Sandbox::User=root", "download"])
            .arg(format!("{PACKAGE}:{}={}", entry.arch, entry.version))
            .current_dir(dir),
    )?;
    let path = dir.join(deb_file_name(PACKAGE, &entry.version, &entry.arch));
    ensure!(path.is_file(), "apt-get download did not produce {}", path.display());
    // The file name is apt's convention; the control fields say what the file really is.
    let control = output(Command::new("dpkg-deb").arg("--field").arg(&path).args([
        "Package",
        "Version",
        "Architecture",
    ]))?;
    let fields = stanzas(&control).into_iter().next().unwrap_or_default();
    for (name, want) in
        [("Package", PACKAGE), ("Version", &entry.version), ("Architecture", &entry.arch)]
    {
        let got = field(&fields, name).unwrap_or_default();
        ensure!(got == want, "{} has {name} {got:?}, expected {want:?}", path.display());
    }
    Ok(Deb { path, entry })
}

/// The fields of apt's index entry that the download is checked against.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    version: String,
    arch: String,
    sha256: String,
}

/// Picks the package's entry out of `apt-cache show --no-all-versions` output.
fn index_entry(index: &str) -> Result<Entry> {
    let stanza = stanzas(index)
        .into_iter()
        .find(|s| field(s, "Package") == Some(PACKAGE))
        .with_context(|| format!("apt's package index has no entry for {PACKAGE}"))?;
    let get = |name| {
        field(&stanza, name)
            .with_context(|| format!("apt's entry for {PACKAGE} has no {name} field"))
    };
    Ok(Entry {
        version: get("Version")?.to_owned(),
        arch: get("Architecture")?.to_owned(),
        sha256: parse_sha256(get("SHA256")?)
            .with_context(|| format!("apt's entry for {PACKAGE}"))?,
    })
}

type Stanza<'a> = Vec<(&'a str, &'a str)>;

/// Splits deb822 text (`apt-cache show`, `dpkg-deb --field`) into stanzas of `(field, value)`.
/// Continuation lines of multi-line fields are skipped: no field read here spans lines.
fn stanzas(text: &str) -> Vec<Stanza<'_>> {
    let mut all = vec![Vec::new()];
    for line in text.lines() {
        if line.trim().is_empty() {
            if all.last().is_some_and(|s| !s.is_empty()) {
                all.push(Vec::new());
            }
        } else if !line.starts_with([' ', '\t'])
            && let Some((name, value)) = line.split_once(':')
        {
            all.last_mut().expect("never empty").push((name.trim(), value.trim()));
        }
    }
    all.retain(|s| !s.is_empty());
    all
}

fn field<'a>(stanza: &Stanza<'a>, name: &str) -> Option<&'a str> {
    stanza.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, v)| v)
}

/// The file name `apt-get download` gives a package: the epoch's `:` is written `%3a`.
fn deb_file_name(package: &str, version: &str, arch: &str) -> String {
    format!("{package}_{}_{arch}.deb", version.replace(':', "%3a"))
}

/// Validates a SHA-256 written in hex; returns it in lower case.
fn parse_sha256(hex: &str) -> Result<String> {
    ensure!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hex:?} is not a SHA-256 (64 hex digits)"
    );
    Ok(hex.to_ascii_lowercase())
}

/// Fails, naming both digests, unless `actual` (lower-case hex) is the `expected` one.
fn check_digest(what: &str, expected: &str, actual: &str) -> Result<()> {
    ensure!(expected == actual, "SHA-256 mismatch for {what}: expected {expected}, got {actual}");
    Ok(())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW: &str = "\
Package: busybox-static
Version: 1:1.35.0-4+deb12u1+b1
Installed-Size: 2071
Maintainer: Debian Install System Team <debian-boot@lists.debian.org>
Architecture: amd64
Description-en: Standalone rescue shell with tons of builtin utilities
 BusyBox combines tiny versions of many common UNIX utilities into a single
 .
 Version: 9.9 (a continuation line that only looks like a field)
Filename: pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb
Size: 928188
SHA256: 3D3FDBE91D4660C873E14B092C213FE81C1DA6362DAA236EB25D0171EB108744

";

    #[test]
    fn reads_the_index_entry() {
        assert_eq!(
            index_entry(SHOW).unwrap(),
            Entry {
                version: "1:1.35.0-4+deb12u1+b1".into(),
                arch: "amd64".into(),
                sha256: "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744".into(),
            }
        );
    }

    #[test]
    fn picks_the_right_stanza() {
        let other = "Package: busybox\nVersion: 1\nArchitecture: amd64\nSHA256: 00\n\n";
        let entry = index_entry(&format!("{other}{SHOW}")).unwrap();
        assert_eq!(entry.version, "1:1.35.0-4+deb12u1+b1");
    }

    #[test]
    fn index_errors_say_what_is_missing() {
        let err = index_entry("").unwrap_err().to_string();
        assert!(err.contains("no entry for busybox-static"), "{err}");

        let no_sha = SHOW.replace("SHA256:", "MD5sum:");
        let err = index_entry(&no_sha).unwrap_err().to_string();
        assert!(err.contains("no SHA256 field"), "{err}");

        let short_sha = "Package: busybox-static\nVersion: 1\nArchitecture: amd64\nSHA256: abc\n";
        let err = format!("{:#}", index_entry(short_sha).unwrap_err());
        assert!(err.contains("\"abc\" is not a SHA-256"), "{err}");
    }

    #[test]
    fn stanzas_split_on_blank_lines() {
        let text = "\nA: 1\nB:  two words \n\n\n C: continuation\nD:4\n";
        assert_eq!(stanzas(text), vec![vec![("A", "1"), ("B", "two words")], vec![("D", "4")]]);
        assert_eq!(field(&stanzas(text)[0], "b"), Some("two words"));
    }

    #[test]
    fn deb_file_name_quotes_the_epoch() {
        assert_eq!(
            deb_file_name("busybox-static", "1:1.35.0-4+deb12u1+b1", "amd64"),
            "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"
        );
        assert_eq!(deb_file_name("p", "2.0-1", "arm64"), "p_2.0-1_arm64.deb");
    }

    #[test]
    fn digest_mismatch_names_both_digests() {
        let expected = "a".repeat(64);
        let actual = sha256_hex(b"");
        let err = check_digest("file:///tmp/busybox", &expected, &actual).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("SHA-256 mismatch for file:///tmp/busybox: expected {expected}, got {actual}")
        );
        check_digest("x", &actual, &actual).unwrap();
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sha256_argument_is_validated() {
        assert_eq!(parse_sha256(&"AB".repeat(32)).unwrap(), "ab".repeat(32));
        assert!(parse_sha256("xyz").is_err());
        assert!(parse_sha256(&"g".repeat(64)).is_err());
    }
}
