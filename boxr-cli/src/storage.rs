//! A container's storage directory (default `/var/lib/boxr/<id>`): its writable rootfs layer
//! (`upper`, `work`, and the `merged` mount point of the overlay) and the log of a detached
//! container, and the files boxr generates for its `/etc` (`etc/`). Removed with the container.

use crate::config::Config;
use crate::errno::describe;
use crate::plan::RootfsLayer;
use crate::spawn;
use crate::userns::{IdMaps, to_host};
use anyhow::{Result, anyhow, bail};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const DEFAULT_STORAGE: &str = "/var/lib/boxr";

/// The storage directory when `--storage` is not given: [`DEFAULT_STORAGE`] for root; for
/// another user (rootless) `$XDG_DATA_HOME/boxr`, else `$HOME/.local/share/boxr`.
pub fn default_storage() -> Result<PathBuf> {
    if rustix::process::geteuid().is_root() {
        return Ok(PathBuf::from(DEFAULT_STORAGE));
    }
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("XDG_DATA_HOME") {
        return Ok(dir.join("boxr"));
    }
    match var("HOME") {
        Some(home) => Ok(home.join(".local/share/boxr")),
        None => {
            bail!("neither XDG_DATA_HOME nor HOME is set: give a storage directory with --storage")
        }
    }
}
const LOG_FILE: &str = "container.log";

/// The log of a detached container's stdout and stderr.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join(LOG_FILE)
}

fn mkdir(path: &Path, mode: u32, recursive: bool) -> Result<()> {
    fs::DirBuilder::new()
        .mode(mode)
        .recursive(recursive)
        .create(path)
        .map_err(|e| anyhow!("cannot create {}: {}", path.display(), describe(&e)))
}

/// Creates the container's storage directory `dir` and, unless the config asks for the rootfs
/// itself (`copy_on_write = false`, or a read-only rootfs), its overlay layer.
///
/// In a user namespace the init mounts the overlay as the container's root, a host uid of the
/// map's choosing: it gets the work directory, and the upper directory the owner the rootfs's
/// root shows inside (through the idmapped rootfs, the mapped one), and can reach both.
pub fn prepare(dir: &Path, config: &Config) -> Result<RootfsLayer> {
    let euid = rustix::process::geteuid().as_raw();
    let maps = config.user_namespace.as_ref().map(|ns| &ns.maps);
    let mounter = maps.and_then(IdMaps::root_on_host).filter(|&(uid, _)| uid != euid);
    if let Some(parent) = dir.parent() {
        mkdir(parent, 0o711, true)?;
    }
    mkdir(dir, if mounter.is_some() { 0o711 } else { 0o700 }, false)?;
    if !config.copy_on_write || config.readonly_rootfs {
        return Ok(RootfsLayer::Bind);
    }
    for path in [&config.rootfs, dir] {
        // These characters separate overlay mount options.
        if path.to_str().is_none_or(|p| p.contains([',', ':', '\\'])) {
            bail!(
                "{} cannot be part of an overlay: its path holds ',', ':' or '\\' (or is not UTF-8); move it, or set copy_on_write = false in {}",
                path.display(),
                config.file.display()
            );
        }
    }
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
    // The overlay's root directory takes the upper layer's owner and mode: the rootfs's own.
    let root = fs::metadata(&config.rootfs).map_err(|e| {
        anyhow!("cannot stat the rootfs {}: {}", config.rootfs.display(), describe(&e))
    })?;
    let idmapped = config.user_namespace.as_ref().is_some_and(|ns| ns.idmapped_rootfs);
    let owner = match maps {
        Some(maps) if idmapped => (
            to_host(&maps.uid, root.uid()).unwrap_or(root.uid()),
            to_host(&maps.gid, root.gid()).unwrap_or(root.gid()),
        ),
        _ => (root.uid(), root.gid()),
    };
    mkdir(&upper, 0o755, false)?;
    fs::set_permissions(&upper, fs::Permissions::from_mode(root.mode() & 0o7777))
        .map_err(|e| anyhow!("cannot set up {}: {}", upper.display(), describe(&e)))?;
    mkdir(&work, 0o700, false)?;
    mkdir(&merged, 0o700, false)?;
    // Only root can give a directory away; a user's are its own, as its container's root.
    if euid == 0 {
        let chown = |path: &Path, (uid, gid): (u32, u32)| {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| anyhow!("cannot set up {}: {}", path.display(), describe(&e)))
        };
        chown(&upper, owner)?;
        if let Some(mounter) = mounter {
            chown(&work, mounter)?;
        }
    }
    Ok(RootfsLayer::Overlay { upper, work, merged })
}

/// Writes a file boxr generates for the container (its `/etc/hosts`, …, given as `destination`)
/// into `<dir>/etc/`, mode 0644, and returns its path there: bound into the container, the
/// rootfs's own file is never written.
pub fn write_generated(dir: &Path, destination: &str, contents: &str) -> Result<PathBuf> {
    let etc = dir.join("etc");
    if !etc.is_dir() {
        mkdir(&etc, 0o755, false)?;
    }
    let name = destination.rsplit('/').next().unwrap_or(destination);
    let path = etc.join(name);
    fs::write(&path, contents)
        .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o644)))
        .map_err(|e| anyhow!("cannot write {}: {}", path.display(), describe(&e)))?;
    Ok(path)
}

/// Deletes a container's storage directory; a missing one is fine. Without root, a layer that
/// holds files of the container's other users (its subordinate ids) or overlay's inaccessible
/// work directory is removed by root in a user namespace with the container's `maps`.
pub fn remove(dir: &Path, maps: Option<&IdMaps>) -> Result<()> {
    let remove = || match fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        result => result,
    };
    let failed = |e: &std::io::Error| anyhow!("cannot remove {}: {}", dir.display(), describe(e));
    match (remove(), maps) {
        (Ok(()), _) => Ok(()),
        (Err(e), Some(maps)) if !rustix::process::geteuid().is_root() => {
            spawn::in_user_namespace(maps, remove).map_err(|inner| {
                anyhow!("{}; in the container's user namespace: {inner:#}", failed(&e))
            })
        }
        (Err(e), _) => Err(failed(&e)),
    }
}
