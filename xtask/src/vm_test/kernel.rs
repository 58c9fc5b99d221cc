//! The guest's kernel and the modules it loads.
//!
//! By default Debian's current `linux-image-<abi>-amd64` (the dependency of `linux-image-amd64`):
//! downloaded with `apt-get download`, unpacked with `dpkg-deb -x` into a temporary directory,
//! never installed. What the VM needs is kept in `target/vm/kernel/<package>_<version>/`: the
//! uncompressed `vmlinux` (qemu boots it through its PVH entry point, seconds faster under
//! emulation than decompressing a bzImage) and the modules of [`MODULES`] with their
//! dependencies. `--kernel IMAGE` (and `--modules DIR` for its `lib/modules/<version>`) boots
//! any other kernel instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};

use crate::{TempDir, apt, on_path, remove_dir_if_exists, run_cmd, show, step};

/// The modules the guest loads (with their dependencies), unless the kernel has them built in:
/// the VM's virtio devices, 9p and ext4 (the rootfs image), then what containers use (overlayfs, veth, bridges,
/// nftables with NAT and the expressions boxr's rules use: the guest has no modprobe for the
/// kernel to load them on demand). `crc32c_generic` is a soft dependency (an algorithm looked up when the
/// module loads, not a symbol) of nf_tables' libcrc32c, so it is named here, before nf_tables.
pub const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_net",
    "9pnet_virtio",
    "9p",
    "overlay",
    "veth",
    "bridge",
    "crc32c_generic",
    "virtio_blk",
    "ext4",
    "nf_tables",
    "nft_chain_nat",
    "nft_nat",
    "nft_masq",
    "nft_ct",
    "nft_fib_ipv4",
];

/// Debian's metapackage that depends on the current kernel image package.
const META_PACKAGE: &str = "linux-image-amd64";

/// Bump when what is cached for a kernel changes.
const LAYOUT: u32 = 1;

pub struct Kernel {
    /// What qemu boots: an ELF vmlinux or a bzImage.
    pub image: PathBuf,
    /// Module files in load order, dependencies first.
    pub modules: Vec<PathBuf>,
    /// Where the kernel came from, for messages.
    pub origin: String,
}

/// Debian's kernel, from the cache under `cache` or fetched into it.
pub fn debian(cache: &Path) -> Result<Kernel> {
    ensure!(
        on_path("apt-cache") && on_path("dpkg-deb"),
        "no apt here to fetch Debian's kernel: pass --kernel IMAGE (and --modules DIR)"
    );
    let package = apt::dependency(META_PACKAGE, "linux-image-")?;
    let version = apt::candidate(&package)?;
    let dir = cache.join(format!("{package}_{version}"));
    let stamp = format!("layout {LAYOUT}\nmodules {}\n", MODULES.join(" "));
    let origin = format!("Debian's {package} {version}");
    if fs::read_to_string(dir.join("stamp")).is_ok_and(|s| s == stamp) {
        step(&format!("using {origin} from {}", dir.display()));
        return cached(&dir, origin);
    }

    // Other versions (and a half-done fetch of this one) are of no further use.
    if let Ok(entries) = fs::read_dir(cache) {
        for entry in entries.flatten() {
            remove_dir_if_exists(&entry.path())?;
        }
    }
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let deb = apt::download(&package, &version, &dir)?;
    let unpacked = TempDir::new(&dir, "unpacked")?;
    step(&format!("unpacking {}", deb.display()));
    run_cmd(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(unpacked.path()))?;
    fs::remove_file(&deb).with_context(|| format!("cannot remove {}", deb.display()))?;

    let boot = unpacked.path().join("boot");
    let vmlinuz = only_file(&boot, "vmlinuz-")?;
    let config = fs::read_to_string(only_file(&boot, "config-")?).unwrap_or_default();
    // qemu boots an ELF vmlinux only through its PVH entry point.
    let pvh = config.lines().any(|l| l == "CONFIG_PVH=y");
    let vmlinux = dir.join("vmlinux");
    match pvh.then(|| extract_vmlinux(&vmlinuz, &vmlinux)) {
        Some(Ok(())) => {}
        not_extracted => {
            if let Some(Err(err)) = not_extracted {
                step(&format!("booting the compressed image: {err:#}"));
            }
            copy(&vmlinuz, &dir.join("vmlinuz"))?;
        }
    }
    let tree = only_dir(&unpacked.path().join("lib/modules"))?;
    let modules = resolve_modules(&tree, &dir.join("modules"))?;
    fs::write(dir.join("modules/order"), names(&modules).join("\n"))
        .context("cannot write the module order")?;
    fs::write(dir.join("stamp"), stamp).context("cannot write the kernel cache's stamp")?;
    cached(&dir, origin)
}

/// A kernel the user names, with the modules from `modules` (a `lib/modules/<version>` tree)
/// or none (then virtio-pci, 9p and friends must be built in).
pub fn custom(image: &Path, modules: Option<&Path>, cache: &Path) -> Result<Kernel> {
    ensure!(image.is_file(), "the kernel image {} does not exist", image.display());
    let modules = match modules {
        Some(tree) => {
            let out = cache.join("custom-modules");
            remove_dir_if_exists(&out)?;
            resolve_modules(tree, &out)?
        }
        None => {
            step("no --modules: the kernel must have virtio-pci, virtio-net and 9p built in");
            Vec::new()
        }
    };
    Ok(Kernel { image: image.to_path_buf(), modules, origin: image.display().to_string() })
}

fn cached(dir: &Path, origin: String) -> Result<Kernel> {
    let vmlinux = dir.join("vmlinux");
    let image = if vmlinux.is_file() { vmlinux } else { dir.join("vmlinuz") };
    let order = fs::read_to_string(dir.join("modules/order")).context("no module order")?;
    let modules = order.lines().map(|name| dir.join("modules").join(format!("{name}.ko")));
    Ok(Kernel { image, modules: modules.collect(), origin })
}

fn names(modules: &[PathBuf]) -> Vec<String> {
    modules.iter().filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned())).collect()
}

/// Decompresses the kernel in the bzImage `vmlinuz` into `vmlinux` (an ELF file).
fn extract_vmlinux(vmlinuz: &Path, vmlinux: &Path) -> Result<()> {
    let image = fs::read(vmlinuz).with_context(|| format!("cannot read {}", vmlinuz.display()))?;
    let payload = payload(&image)?;
    let (tool, args) = decompressor(payload)
        .context("the kernel is compressed with a method other than xz, zstd and gzip")?;
    ensure!(on_path(tool), "decompressing the kernel needs {tool}, which is not installed");
    step(&format!("extracting {} from {}", vmlinux.display(), vmlinuz.display()));
    let out = decompress(tool, args, payload)?;
    ensure!(out.starts_with(b"\x7fELF"), "{tool} did not produce an ELF file");
    fs::write(vmlinux, out).with_context(|| format!("cannot write {}", vmlinux.display()))
}

/// The compressed kernel inside a bzImage, without the 4-byte size the build appends to it.
fn payload(image: &[u8]) -> Result<&[u8]> {
    let u32_at = |at: usize| {
        image.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    ensure!(image.get(0x202..0x206) == Some(b"HdrS"), "not a bzImage (no HdrS header)");
    let protocol = image.get(0x206..0x208).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
    ensure!(protocol >= 0x208, "boot protocol {protocol:#x} predates payload fields");
    let setup_sects = match image[0x1f1] {
        0 => 4,
        n => usize::from(n),
    };
    let (offset, length) = (u32_at(0x248), u32_at(0x24c));
    let (Some(offset), Some(length)) = (offset, length) else { bail!("truncated bzImage") };
    let start = (setup_sects + 1) * 512 + offset as usize;
    let end = start + length as usize;
    ensure!(length > 4 && end <= image.len(), "the bzImage's payload lies outside the file");
    Ok(&image[start..end - 4])
}

/// The command line tool (and its arguments) that decompresses `payload` to stdout.
fn decompressor(payload: &[u8]) -> Option<(&'static str, &'static [&'static str])> {
    if payload.starts_with(b"\xfd7zXZ\x00") {
        Some(("xz", &["-dc"]))
    } else if payload.starts_with(b"\x28\xb5\x2f\xfd") {
        Some(("zstd", &["-dcq"]))
    } else if payload.starts_with(b"\x1f\x8b") {
        Some(("gzip", &["-dc"]))
    } else {
        None
    }
}

fn decompress(tool: &str, args: &[&str], data: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut cmd = Command::new(tool);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", show(&cmd)))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let output = std::thread::scope(|s| {
        // Feed stdin from a thread while this one drains stdout.
        s.spawn(move || stdin.write_all(data));
        child.wait_with_output()
    })
    .with_context(|| format!("{} failed", show(&cmd)))?;
    ensure!(output.status.success(), "{} failed ({})", show(&cmd), output.status);
    Ok(output.stdout)
}

/// Puts the [`MODULES`] that `tree` (a `lib/modules/<version>` directory) has as files, and
/// their dependencies, into `out` (decompressed); returns them in load order. Modules the
/// kernel has built in are skipped; others that are missing are reported and skipped.
fn resolve_modules(tree: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let mut files = BTreeMap::new();
    index(tree, &mut files)?;
    let builtin: BTreeSet<String> = fs::read_to_string(tree.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| module_name(Path::new(l)))
        .collect();
    let mut loaded = BTreeMap::new();
    let mut depends = |name: &str| -> Result<Option<Vec<String>>> {
        let Some(path) = files.get(name) else { return Ok(None) };
        let bytes = read_module(path)?;
        let deps = modinfo_depends(&bytes)
            .with_context(|| format!("cannot read the dependencies of {}", path.display()))?;
        loaded.insert(name.to_owned(), bytes);
        Ok(Some(deps))
    };
    let order = load_order(MODULES, &mut depends)?;
    let missing: Vec<_> = order.missing.iter().filter(|m| !builtin.contains(*m)).collect();
    if !missing.is_empty() {
        step(&format!("warning: {} has no module {missing:?}", tree.display()));
    }
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut paths = Vec::new();
    for name in order.load {
        let path = out.join(format!("{name}.ko"));
        fs::write(&path, &loaded[&name])
            .with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// Maps module names to the module files under `dir`.
fn index(dir: &Path, files: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            index(&path, files)?;
        } else if let Some(name) = module_name(&path) {
            files.insert(name, path);
        }
    }
    Ok(())
}

/// The module name of a module file (`kernel/net/9p/9pnet_virtio.ko.xz` → `9pnet_virtio`);
/// module names use `_` where file names may use `-`.
fn module_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"].iter().find_map(|e| file.strip_suffix(e))?;
    Some(stem.replace('-', "_"))
}

/// A module file's contents, decompressed.
fn read_module(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match decompressor(&bytes) {
        Some((tool, args)) if path.extension().is_some_and(|e| e != "ko") => {
            decompress(tool, args, &bytes)
                .with_context(|| format!("decompressing {}", path.display()))
        }
        _ => Ok(bytes),
    }
}

/// The names in the `depends=` entry of a module's `.modinfo` section.
fn modinfo_depends(elf: &[u8]) -> Result<Vec<String>> {
    let modinfo = section(elf, ".modinfo")?.context("no .modinfo section")?;
    let depends = modinfo
        .split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(b"depends="))
        .unwrap_or_default();
    let depends = std::str::from_utf8(depends).context("non-UTF-8 module names")?;
    Ok(depends.split(',').filter(|d| !d.is_empty()).map(|d| d.replace('-', "_")).collect())
}

/// The contents of the section `name` of a 64-bit little-endian ELF file.
fn section<'a>(elf: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    ensure!(elf.starts_with(b"\x7fELF\x02\x01"), "not a 64-bit little-endian ELF file");
    let get = |at: usize, len: usize| elf.get(at..at + len).context("truncated ELF file");
    let num = |at: usize, len: usize| -> Result<usize> {
        let mut buf = [0u8; 8];
        buf[..len].copy_from_slice(get(at, len)?);
        usize::try_from(u64::from_le_bytes(buf)).context("ELF offset out of range")
    };
    let (shoff, shentsize, shnum, shstrndx) =
        (num(0x28, 8)?, num(0x3a, 2)?, num(0x3c, 2)?, num(0x3e, 2)?);
    let header = |i: usize| -> Result<(usize, &'a [u8])> {
        let at = shoff + i * shentsize;
        Ok((num(at, 4)?, get(num(at + 0x18, 8)?, num(at + 0x20, 8)?)?))
    };
    let (_, names) = header(shstrndx)?;
    for i in 0..shnum {
        let (name_at, data) = header(i)?;
        let section_name = names.get(name_at..).unwrap_or_default();
        let section_name = section_name.split(|&b| b == 0).next().unwrap_or_default();
        if section_name == name.as_bytes() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

#[derive(Debug, PartialEq, Eq)]
struct Order {
    /// Modules to load, each after its dependencies.
    load: Vec<String>,
    /// Wanted modules (or dependencies) that are not available as files.
    missing: Vec<String>,
}

/// The load order of `wanted` and their dependencies; `depends` gives a module's dependencies,
/// or `None` if there is no file for it.
fn load_order(
    wanted: &[&str],
    depends: &mut dyn FnMut(&str) -> Result<Option<Vec<String>>>,
) -> Result<Order> {
    fn visit(
        name: &str,
        depends: &mut dyn FnMut(&str) -> Result<Option<Vec<String>>>,
        visiting: &mut Vec<String>,
        order: &mut Order,
    ) -> Result<()> {
        if order.load.iter().chain(&order.missing).any(|m| m == name) {
            return Ok(());
        }
        if visiting.iter().any(|m| m == name) {
            bail!("modules depend on each other in a cycle: {} → {name}", visiting.join(" → "));
        }
        let Some(deps) = depends(name)? else {
            order.missing.push(name.to_owned());
            return Ok(());
        };
        visiting.push(name.to_owned());
        for dep in &deps {
            visit(dep, depends, visiting, order)?;
        }
        visiting.pop();
        order.load.push(name.to_owned());
        Ok(())
    }
    let mut order = Order { load: Vec::new(), missing: Vec::new() };
    for name in wanted {
        visit(name, depends, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

/// The one file in `dir` whose name starts with `prefix`.
fn only_file(dir: &Path, prefix: &str) -> Result<PathBuf> {
    let mut found = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)));
    match (found.next(), found.next()) {
        (Some(path), None) => Ok(path),
        _ => bail!("{} does not hold exactly one {prefix}* file", dir.display()),
    }
}

/// The one directory in `dir` (the package's `lib/modules/<version>`).
fn only_dir(dir: &Path) -> Result<PathBuf> {
    let mut found = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir());
    match (found.next(), found.next()) {
        (Some(path), None) => Ok(path),
        _ => bail!("{} does not hold exactly one directory", dir.display()),
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bzImage-shaped buffer: `setup_sects` setup sectors, then the payload at `offset`.
    fn bzimage(setup_sects: u8, offset: u32, payload: &[u8]) -> Vec<u8> {
        let start = (usize::from(setup_sects.max(1)) + 1) * 512 + offset as usize;
        let mut image = vec![0u8; start];
        image[0x1f1] = setup_sects;
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        image[0x248..0x24c].copy_from_slice(&offset.to_le_bytes());
        image[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        image.extend_from_slice(payload);
        image.extend_from_slice(b"trailing signature");
        image
    }

    #[test]
    fn finds_the_payload_of_a_bzimage() {
        let data = b"\xfd7zXZ\x00compressed kernel\x11\x22\x33\x44";
        let image = bzimage(39, 716, data);
        let payload = payload(&image).unwrap();
        assert_eq!(payload, &data[..data.len() - 4], "without the appended size");
        assert_eq!(decompressor(payload).map(|d| d.0), Some("xz"));
        assert_eq!(decompressor(b"\x28\xb5\x2f\xfd..").map(|d| d.0), Some("zstd"));
        assert_eq!(decompressor(b"\x1f\x8b..").map(|d| d.0), Some("gzip"));
        assert_eq!(decompressor(b"\x02\x21\x4c\x18"), None); // lz4
    }

    #[test]
    fn rejects_what_is_not_a_bzimage() {
        assert!(payload(&[0; 4096]).is_err());
        let mut image = bzimage(4, 0, b"\x1f\x8bdata");
        let len = image.len();
        image[0x24c..0x250].copy_from_slice(&(len as u32).to_le_bytes());
        assert!(payload(&image).unwrap_err().to_string().contains("outside"));
        let mut old = bzimage(4, 0, b"\x1f\x8bdata");
        old[0x206..0x208].copy_from_slice(&0x204u16.to_le_bytes());
        assert!(payload(&old).is_err());
    }

    /// A minimal ELF64 file with the given sections (plus the section name table).
    fn elf(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut names = vec![0u8];
        let mut data = Vec::new();
        let mut headers = vec![[0u8; 64]]; // the null section
        let place = |name_at: usize, bytes: &[u8], data: &mut Vec<u8>| {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&(name_at as u32).to_le_bytes());
            h[0x18..0x20].copy_from_slice(&((64 + data.len()) as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            data.extend_from_slice(bytes);
            h
        };
        for (name, bytes) in sections {
            let at = names.len();
            names.extend_from_slice(name.as_bytes());
            names.push(0);
            headers.push(place(at, bytes, &mut data));
        }
        let at = names.len();
        names.extend_from_slice(b".shstrtab\0");
        let names_copy = names.clone();
        headers.push(place(at, &names_copy, &mut data));
        let mut file = vec![0u8; 64];
        file[..6].copy_from_slice(b"\x7fELF\x02\x01");
        file[0x28..0x30].copy_from_slice(&((64 + data.len()) as u64).to_le_bytes());
        file[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        file[0x3c..0x3e].copy_from_slice(&(headers.len() as u16).to_le_bytes());
        file[0x3e..0x40].copy_from_slice(&((headers.len() - 1) as u16).to_le_bytes());
        file.extend_from_slice(&data);
        headers.iter().for_each(|h| file.extend_from_slice(h));
        file
    }

    #[test]
    fn reads_the_dependencies_from_modinfo() {
        let module = elf(&[
            (".text", b"\x90\x90"),
            (".modinfo", b"license=GPL\0depends=netfs,fscache,9p-net\0name=9p\0"),
        ]);
        assert_eq!(modinfo_depends(&module).unwrap(), ["netfs", "fscache", "9p_net"]);
        let leaf = elf(&[(".modinfo", b"depends=\0name=virtio_ring\0")]);
        assert_eq!(modinfo_depends(&leaf).unwrap(), Vec::<String>::new());
        assert!(modinfo_depends(&elf(&[(".text", b"")])).is_err());
        assert!(modinfo_depends(b"not an elf").is_err());
        assert!(modinfo_depends(&module[..100]).is_err());
    }

    fn graph(edges: &[(&str, &[&str])]) -> impl FnMut(&str) -> Result<Option<Vec<String>>> {
        let map: BTreeMap<String, Vec<String>> = edges
            .iter()
            .map(|(m, deps)| (m.to_string(), deps.iter().map(|d| d.to_string()).collect()))
            .collect();
        move |name| Ok(map.get(name).cloned())
    }

    #[test]
    fn loads_dependencies_first_and_once() {
        let mut deps = graph(&[
            ("9p", &["9pnet", "netfs", "fscache"]),
            ("9pnet_virtio", &["9pnet", "virtio", "virtio_ring"]),
            ("9pnet", &[]),
            ("netfs", &[]),
            ("fscache", &["netfs"]),
            ("virtio", &[]),
            ("virtio_ring", &[]),
            ("veth", &["missing_dep"]),
        ]);
        let order = load_order(&["9pnet_virtio", "9p", "overlay", "veth"], &mut deps).unwrap();
        assert_eq!(
            order.load,
            ["9pnet", "virtio", "virtio_ring", "9pnet_virtio", "netfs", "fscache", "9p", "veth"]
        );
        assert_eq!(order.missing, ["overlay", "missing_dep"]);
    }

    #[test]
    fn dependency_cycles_are_errors() {
        let mut deps = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]);
        let err = load_order(&["a"], &mut deps).unwrap_err().to_string();
        assert!(err.contains("a → b → c → a"), "{err}");
    }

    #[test]
    fn module_names_from_file_names() {
        let name = |p: &str| module_name(Path::new(p));
        assert_eq!(name("kernel/net/9p/9pnet_virtio.ko").as_deref(), Some("9pnet_virtio"));
        assert_eq!(name("kernel/fs/nls/nls-utf8.ko.xz").as_deref(), Some("nls_utf8"));
        assert_eq!(name("kernel/fs/overlay/overlay.ko.zst").as_deref(), Some("overlay"));
        assert_eq!(name("modules.order"), None);
    }
}
