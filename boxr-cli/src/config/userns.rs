//! The "user" namespace: `uid_map`, `gid_map`, `idmapped_rootfs`, and what boxr run by a user
//! other than root (rootless) implies: always a user namespace, no cgroups, no bridge.

use super::*;
use crate::userns::{self, IdMaps, IdRange};

/// The raw values of the top-level keys this checker reads.
pub(super) struct RawUserNamespace {
    pub uid_map: Option<Spanned<Vec<Spanned<String>>>>,
    pub gid_map: Option<Spanned<Vec<Spanned<String>>>>,
    pub idmapped_rootfs: Option<Spanned<bool>>,
}

impl Checker<'_> {
    /// The user namespace's maps, if the container has one; rootless boxr always gives it one.
    pub(super) fn user_namespace(
        &self,
        raw: RawUserNamespace,
        namespaces: &mut Vec<Namespace>,
        namespaces_at: Option<Range<usize>>,
    ) -> Result<Option<UserNamespace>, ConfigError> {
        let (euid, egid) =
            (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
        let rootless = euid != 0;
        if rootless && !namespaces.contains(&Namespace::User) {
            if !namespaces.contains(&Namespace::Pid) {
                return Err(self.src.error(
                    namespaces_at.unwrap_or(0..0),
                    "namespaces must include \"pid\": boxr run without root gives the container a user namespace, where /proc can only be mounted for a PID namespace the container owns",
                ));
            }
            namespaces.push(Namespace::User);
        }
        if !namespaces.contains(&Namespace::User) {
            let given = [
                raw.uid_map.as_ref().map(|m| ("uid_map", m.span())),
                raw.gid_map.as_ref().map(|m| ("gid_map", m.span())),
                raw.idmapped_rootfs.as_ref().map(|m| ("idmapped_rootfs", m.span())),
            ];
            if let Some((key, span)) = given.into_iter().flatten().next() {
                return Err(self.src.error(
                    span,
                    format!("{key} needs the \"user\" namespace: add \"user\" to namespaces"),
                ));
            }
            return Ok(None);
        }
        let explicit = raw.uid_map.is_some() || raw.gid_map.is_some();
        let one_span = raw.uid_map.as_ref().or(raw.gid_map.as_ref()).map(Spanned::span);
        let uid = raw.uid_map.map(|m| self.id_map(m, "uid_map")).transpose()?;
        let gid = raw.gid_map.map(|m| self.id_map(m, "gid_map")).transpose()?;
        let maps = match (uid, gid, one_span) {
            (Some(uid), Some(gid), _) => IdMaps::new(uid, gid, euid, egid),
            (None, None, _) => IdMaps::default_for(euid, egid),
            (_, _, span) => {
                return Err(self.src.error(
                    span.unwrap_or(0..0),
                    "give both uid_map and gid_map (the container's root needs a uid and a gid)",
                ));
            }
        };
        let idmapped_rootfs = match raw.idmapped_rootfs {
            Some(v) if *v.get_ref() && rootless => {
                return Err(self.src.error(
                    v.span(),
                    "idmapped_rootfs: only root can make idmapped mounts; as a user, own the rootfs yourself (its files then show as the container's root) and leave idmapped_rootfs out",
                ));
            }
            Some(v) => *v.get_ref(),
            None => explicit && !rootless,
        };
        Ok(Some(UserNamespace { maps, idmapped_rootfs }))
    }

    /// One of `uid_map` and `gid_map`: `CONTAINER_ID:HOST_ID:SIZE` entries, container root
    /// among them.
    fn id_map(
        &self,
        raw: Spanned<Vec<Spanned<String>>>,
        key: &str,
    ) -> Result<Vec<IdRange>, ConfigError> {
        let span = raw.span();
        let ranges = raw
            .into_inner()
            .into_iter()
            .map(|entry| {
                IdRange::parse(entry.get_ref())
                    .map_err(|m| self.src.error(entry.span(), format!("{key}: {m}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        userns::check_map(&ranges)
            .map_err(|m| self.src.error(span.clone(), format!("{key}: {m}")))?;
        if userns::to_host(&ranges, 0).is_none() {
            return Err(self.src.error(
                span,
                format!("{key} must map the container's root (0): boxr-init runs as it"),
            ));
        }
        Ok(ranges)
    }

    /// What a rootless boxr cannot do, refused up front: cgroups (resource limits, a cgroup
    /// parent) and bridge networking.
    pub(super) fn rootless_limits(
        &self,
        resources: Option<Range<usize>>,
        cgroup_parent: Option<Range<usize>>,
        network: &network::Settings,
        network_at: Option<Range<usize>>,
        overrides: &Overrides,
    ) -> Result<(), ConfigError> {
        if rustix::process::geteuid().is_root() {
            return Ok(());
        }
        let at = |span: Option<Range<usize>>, flag: &str| match span {
            Some(span) => self.src.at(span),
            None => flag.to_string(),
        };
        let flags = &overrides.resources;
        let flag_given = [
            flags.memory.as_ref(),
            flags.memory_swap.as_ref(),
            flags.cpus.as_ref(),
            flags.cpu_shares.as_ref(),
            flags.cpuset_cpus.as_ref(),
            flags.pids_limit.as_ref(),
        ]
        .iter()
        .any(Option::is_some);
        if resources.is_some() || flag_given {
            return Err(ConfigError {
                at: at(resources, "resource flags"),
                message: "resource limits need cgroups, which boxr run by a user other than root does not create: run as root, or leave out [resources] and --memory, --cpus, …".into(),
            });
        }
        if let Some(span) = cgroup_parent {
            return Err(self.src.error(
                span,
                "cgroup_parent: boxr run by a user other than root creates no cgroups; leave it out",
            ));
        }
        if network.mode == Mode::Bridge {
            return Err(ConfigError {
                at: at(network_at, "--network"),
                message: "bridge networking needs root (it creates links and firewall rules on the host): run as root, or use network mode \"none\" or \"host\"".into(),
            });
        }
        Ok(())
    }
}
