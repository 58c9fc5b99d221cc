//! A container's storage directory (default `/var/lib/boxr/<id>`): its writable rootfs layer
//! (`upper`, `work`, and the `merged` mount point of the overlay) and the log of a detached
//! container, and the files boxr generates for its `/etc` (`etc/`). Removed with the container.

use crate::config::Config;
use crate::errno::describe;
use crate::plan::RootfsLayer;
use anyhow::{Result, anyhow, bail};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const DEFAULT_STORAGE: &str = "/var/lib/boxr";
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
pub fn prepare(dir: &Path, config: &Config) -> Result<RootfsLayer> {
    if let Some(parent) = dir.parent() {
        mkdir(parent, 0o711, true)?;
    }
    mkdir(dir, 0o700, false)?;
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
    mkdir(&upper, 0o755, false)?;
    fs::set_permissions(&upper, fs::Permissions::from_mode(root.mode() & 0o7777))
        .and_then(|()| std::os::unix::fs::chown(&upper, Some(root.uid()), Some(root.gid())))
        .map_err(|e| anyhow!("cannot set up {}: {}", upper.display(), describe(&e)))?;
    mkdir(&work, 0o700, false)?;
    mkdir(&merged, 0o700, false)?;
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

/// Deletes a container's storage directory; a missing one is fine.
pub fn remove(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!("cannot remove {}: {}", dir.display(), describe(&e))),
    }
}
