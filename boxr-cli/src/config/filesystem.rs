//! The rootfs, the config's mounts and the kernel paths masked or made read-only.

use super::*;

impl Checker<'_> {
    pub(super) fn rootfs(&self, raw: &Spanned<String>) -> Result<PathBuf, ConfigError> {
        let err = |msg: String| self.src.error(raw.span(), msg);
        let given = self.host_path(raw.get_ref());
        let rootfs = fs::canonicalize(&given).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (build the busybox rootfs with `cargo xtask build-rootfs`, or fix the path)"
            } else {
                ""
            };
            err(format!("rootfs {}: {}{hint}", given.display(), crate::errno::describe(&e)))
        })?;
        if !rootfs.is_dir() {
            return Err(err(format!("rootfs {} is not a directory", given.display())));
        }
        if rootfs == Path::new("/") {
            return Err(err(
                "rootfs must not be the host's / : give a directory holding the container's files"
                    .into(),
            ));
        }
        for dir in ["proc", "sys", "dev"] {
            let path = rootfs.join(dir);
            if fs::symlink_metadata(&path).is_ok_and(|meta| !meta.is_dir()) {
                return Err(err(format!(
                    "{} must be a real directory, not a symlink or file: the container's /{dir} is mounted there",
                    path.display()
                )));
            }
        }
        Ok(rootfs)
    }
    pub(super) fn mount(&self, m: RawMount, rootfs: &Path) -> Result<Mount, ConfigError> {
        let dest_span = m.destination.span();
        let given = self.no_nul(m.destination, "mounts.destination")?;
        let (destination, target) = paths::normalize(&given)
            .and_then(|d| check_destination(&d).map(|()| d))
            .and_then(|d| {
                let target = paths::resolve_in_rootfs(rootfs, &d)?;
                check_destination(&target)
                    .map_err(|msg| format!("it resolves to {target} in the rootfs, and {msg}"))?;
                Ok((d, target))
            })
            .map_err(|msg| {
                self.src.error(dest_span.clone(), format!("mount destination {given:?}: {msg}"))
            })?;
        let readonly = m.readonly.unwrap_or(false);
        let kind = match *m.kind.get_ref() {
            RawMountKind::Bind => {
                if let Some(size) = &m.size {
                    return Err(self.src.error(size.span(), "size applies to tmpfs mounts only"));
                }
                let Some(source) = m.source else {
                    return Err(self
                        .src
                        .error(m.kind.span(), "a bind mount needs a source (a host path)"));
                };
                let span = source.span();
                let given = self.host_path(source.get_ref());
                let canonical = fs::canonicalize(&given).map_err(|e| {
                    self.src.error(
                        span.clone(),
                        format!("bind source {}: {}", given.display(), crate::errno::describe(&e)),
                    )
                })?;
                let file = !canonical.is_dir();
                if canonical.to_str().is_none_or(|s| s.contains('\0')) {
                    return Err(self.src.error(
                        span,
                        format!("bind source {} is not valid UTF-8", given.display()),
                    ));
                }
                MountKind::Bind { source: canonical, file }
            }
            RawMountKind::Tmpfs => {
                if let Some(source) = &m.source {
                    return Err(self.src.error(source.span(), "a tmpfs mount takes no source"));
                }
                let size = match m.size {
                    Some(size) => {
                        let span = size.span();
                        Some(parse_size(size.get_ref()).map_err(|msg| self.src.error(span, msg))?)
                    }
                    None => None,
                };
                MountKind::Tmpfs { size }
            }
        };
        Ok(Mount { destination, target, kind, readonly })
    }
    /// `masked_paths` or `readonly_paths`: `defaults` when absent, else the given container
    /// paths (an empty list relaxes them all).
    pub(super) fn kernel_paths(
        &self,
        raw: Option<Vec<Spanned<String>>>,
        defaults: &[&str],
        key: &str,
    ) -> Result<Vec<String>, ConfigError> {
        let Some(raw) = raw else { return Ok(defaults.iter().map(|p| p.to_string()).collect()) };
        let mut paths: Vec<String> = Vec::with_capacity(raw.len());
        for entry in raw {
            let span = entry.span();
            let given = self.no_nul(entry, key)?;
            let path = paths::normalize(&given)
                .and_then(|p| if p == "/" { Err("must not be / itself".into()) } else { Ok(p) })
                .map_err(|m| self.src.error(span.clone(), format!("{key}: {given:?} {m}")))?;
            if paths.contains(&path) {
                return Err(self.src.error(span, format!("{key}: {path} is listed twice")));
            }
            paths.push(path);
        }
        Ok(paths)
    }
}

/// Refuses destinations boxr itself owns: `/`, `/proc`, `/sys`, `/dev` and anything under
/// `/proc` or `/sys` (mounting there can hide the kernel's own files from security checks).
fn check_destination(dest: &str) -> Result<(), String> {
    if matches!(dest, "/" | "/dev") {
        return Err("boxr mounts this itself; choose another destination".into());
    }
    if ["/proc", "/sys"].iter().any(|p| dest == *p || dest.starts_with(&format!("{p}/"))) {
        return Err("mounts on or under /proc and /sys are not allowed".into());
    }
    Ok(())
}
