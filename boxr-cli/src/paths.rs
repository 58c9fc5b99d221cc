//! Paths inside the container: normalising them, and resolving them against the rootfs image
//! the way the container will see them (symlinks followed, but never out of the rootfs).
//!
//! The frontend resolves mount destinations so that boxr-init can create missing mount points
//! along a path without symlinks. This is not the security boundary: the init resolves every
//! target again with `openat2(RESOLVE_IN_ROOT)`, so a rootfs changed in between can only make
//! the setup fail, never reach the host.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

/// Linux's limit on symlinks followed in one lookup.
const MAX_SYMLINKS: usize = 40;

/// Normalises an absolute path inside the container: collapses `//` and `.`, refuses `..`.
pub fn normalize(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err("must be an absolute path (start with /)".into());
    }
    if path.split('/').any(|part| part == "..") {
        return Err("must not contain '..'".into());
    }
    Ok(join(path.split('/').filter(|p| !p.is_empty() && *p != ".")))
}

fn join<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let joined: String = parts.into_iter().flat_map(|p| ["/", p]).collect();
    if joined.is_empty() { "/".to_string() } else { joined }
}

/// Resolves `path` (absolute) inside `rootfs` as a lookup in a chroot would: symlinks are
/// followed, absolute ones from the rootfs, and `..` never climbs above it. Missing components
/// are kept as they are. The result is absolute, normalised and free of symlinks that exist.
pub fn resolve_in_rootfs(rootfs: &Path, path: &str) -> Result<String, String> {
    let mut todo: VecDeque<String> = path.split('/').map(str::to_string).collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut followed = 0;
    while let Some(part) = todo.pop_front() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let on_host: PathBuf =
            resolved.iter().fold(rootfs.to_path_buf(), |p, c| p.join(c)).join(&part);
        let is_link = fs::symlink_metadata(&on_host).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            resolved.push(part);
            continue;
        }
        followed += 1;
        if followed > MAX_SYMLINKS {
            return Err(format!(
                "too many levels of symlinks in the rootfs (more than {MAX_SYMLINKS})"
            ));
        }
        let target = fs::read_link(&on_host)
            .map_err(|e| format!("cannot read symlink {}: {e}", on_host.display()))?;
        let target = target
            .to_str()
            .ok_or_else(|| format!("symlink {} is not valid UTF-8", on_host.display()))?;
        if target.starts_with('/') {
            resolved.clear();
        }
        for (i, p) in target.split('/').enumerate() {
            todo.insert(i, p.to_string());
        }
    }
    Ok(join(resolved.iter().map(String::as_str)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn normalises() {
        assert_eq!(normalize("/a//b/./c/").unwrap(), "/a/b/c");
        assert_eq!(normalize("/").unwrap(), "/");
        assert!(normalize("a").is_err());
        assert!(normalize("/a/../b").is_err());
    }

    #[test]
    fn resolves_symlinks_inside_the_rootfs() {
        let root = std::env::temp_dir().join(format!("boxr-paths-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("real/dir")).unwrap();
        symlink("/real", root.join("abs")).unwrap();
        symlink("real/dir", root.join("rel")).unwrap();
        symlink("../../../../etc", root.join("climb")).unwrap();
        symlink("/host/only", root.join("dangling")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let r = |p: &str| resolve_in_rootfs(&root, p);
        assert_eq!(r("/abs/dir/x").unwrap(), "/real/dir/x");
        assert_eq!(r("/rel/y").unwrap(), "/real/dir/y");
        assert_eq!(r("/climb/passwd").unwrap(), "/etc/passwd");
        assert_eq!(r("/dangling/sub").unwrap(), "/host/only/sub");
        assert_eq!(r("/missing/a").unwrap(), "/missing/a");
        assert!(r("/loop").unwrap_err().contains("too many levels of symlinks"));
        fs::remove_dir_all(&root).unwrap();
    }
}
