//! `[process]` and what runs it: arguments, environment, cwd, hostname, user, capabilities,
//! seccomp, rlimits, sysctls.

use super::*;
use crate::seccomp;
use crate::userns::to_host;

impl Checker<'_> {
    pub(super) fn process(
        &self,
        raw: Option<Spanned<RawProcess>>,
        overrides: &Overrides,
        hostname: Option<&str>,
        rootfs: &Path,
        user_namespace: Option<&UserNamespace>,
    ) -> Result<Process, ConfigError> {
        let (span, raw) = match raw {
            Some(p) => (p.span(), p.into_inner()),
            None => (0..0, RawProcess::default()),
        };
        let user = self.user(raw.user, &raw.additional_gids, rootfs, user_namespace)?;
        let user_namespace = user_namespace.is_some();
        let args = if overrides.args.is_empty() {
            let Some(raw_args) = raw.args.filter(|a| !a.get_ref().is_empty()) else {
                return Err(self.src.error(
                    span,
                    "process.args is missing or empty: give the command to run (or pass it after `--`)",
                ));
            };
            raw_args
                .into_inner()
                .into_iter()
                .map(|a| self.no_nul(a, "process.args"))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            for arg in &overrides.args {
                no_nul_flag(arg, "command")?;
            }
            overrides.args.clone()
        };
        let mut env = Vec::new();
        for entry in raw.env {
            let span = entry.span();
            let entry = self.no_nul(entry, "process.env")?;
            check_env_entry(&entry)
                .map_err(|m| self.src.error(span, format!("process.env: {m}")))?;
            set_env(&mut env, entry);
        }
        for entry in &overrides.env {
            no_nul_flag(entry, "-e")?;
            let entry = match entry.split_once('=') {
                Some(_) => entry.clone(),
                None => match std::env::var(entry) {
                    Ok(v) => format!("{entry}={v}"),
                    Err(_) => continue,
                },
            };
            check_env_entry(&entry)
                .map_err(|message| ConfigError { at: format!("-e {entry}"), message })?;
            set_env(&mut env, entry);
        }
        for (key, default) in
            [("PATH", DEFAULT_PATH.to_string()), ("HOME", format!("HOME={}", user.home))]
                .into_iter()
                .chain(hostname.map(|h| ("HOSTNAME", format!("HOSTNAME={h}"))))
        {
            if !env.iter().any(|e| env_key(e) == key) {
                env.push(default);
            }
        }
        let cwd = match raw.cwd {
            Some(cwd) => {
                let span = cwd.span();
                let cwd = self.no_nul(cwd, "process.cwd")?;
                paths::normalize(&cwd)
                    .map_err(|m| self.src.error(span, format!("process.cwd {cwd:?}: {m}")))?
            }
            None => "/".to_string(),
        };
        let available = Available::detect(user_namespace);
        let (capabilities, added_capabilities) =
            self.capabilities(&raw.cap_add, &raw.cap_drop, available)?;
        let seccomp = self.seccomp(raw.seccomp, capabilities)?;
        let allowed = LimitsAllowed::detect(user_namespace);
        let rlimits = self.rlimits(&raw.rlimits, &allowed)?;
        let oom_score_adj = match &raw.oom_score_adj {
            Some(v) => Some(
                security::check_oom_score_adj(*v.get_ref(), &allowed)
                    .map_err(|m| self.src.error(v.span(), format!("process.oom_score_adj: {m}")))?,
            ),
            None => None,
        };
        Ok(Process {
            args,
            env,
            cwd,
            capabilities,
            added_capabilities,
            no_new_privileges: raw.no_new_privileges,
            user,
            seccomp,
            rlimits,
            oom_score_adj,
        })
    }
    pub(super) fn hostname(
        &self,
        raw: Option<Spanned<String>>,
        flag: Option<&str>,
        namespaces: &[Namespace],
    ) -> Result<Option<String>, ConfigError> {
        let (name, at) = match (flag, &raw) {
            (Some(name), _) => (name, "--hostname".to_string()),
            (None, Some(raw)) => {
                let (line, col) = line_column(self.src.text, raw.span().start);
                (raw.get_ref().as_str(), format!("{}:{line}:{col}", self.src.file.display()))
            }
            (None, None) => return Ok(None),
        };
        let err = |message: String| ConfigError { at: at.clone(), message };
        if let Some(problem) = hostname_problem(name) {
            return Err(err(format!("invalid hostname {name:?}: {problem}")));
        }
        if !namespaces.contains(&Namespace::Uts) {
            return Err(err(format!(
                "setting the hostname needs the \"uts\" namespace: add \"uts\" to namespaces in {}",
                self.src.file.display()
            )));
        }
        Ok(Some(name.to_string()))
    }
    /// `process.seccomp`: "default" (docker's profile), "unconfined" or a profile file (relative
    /// to the config's directory), compiled here for the workload's capabilities, so that a bad
    /// profile is reported before anything is created. Its warnings go to stderr.
    pub(super) fn seccomp(
        &self,
        raw: Option<Spanned<toml::Value>>,
        capabilities: u64,
    ) -> Result<Vec<seccomp::Instruction>, ConfigError> {
        let span = raw.as_ref().map_or(0..0, Spanned::span);
        let err = |m: String| self.src.error(span.clone(), format!("process.seccomp: {m}"));
        let value = raw.map_or_else(|| toml::Value::from("default"), Spanned::into_inner);
        let profile = match value {
            toml::Value::String(s) if s == "unconfined" => return Ok(Vec::new()),
            toml::Value::String(s) if s == "default" => seccomp::Profile::docker_default(),
            toml::Value::String(s) if s.is_empty() || s.contains('\0') => {
                return Err(err(format!(
                    "{s:?} is not a profile: give \"default\", \"unconfined\" or a JSON profile's path"
                )));
            }
            toml::Value::String(s) => seccomp::Profile::load(&self.host_path(&s)).map_err(&err)?,
            toml::Value::Boolean(on) => {
                let instead = if on { "default" } else { "unconfined" };
                return Err(err(format!(
                    "{on} is no longer accepted: use \"{instead}\" (or a JSON profile's path)"
                )));
            }
            other => {
                return Err(err(format!(
                    "expected a string, found {}: give \"default\", \"unconfined\" or a JSON profile's path",
                    other.type_str()
                )));
            }
        };
        for warning in profile.warnings() {
            eprintln!("boxr: warning: {warning}");
        }
        seccomp::compile(&profile, capabilities).map_err(err)
    }
    /// `[process.rlimits]`: `NAME = { soft = N, hard = N }`, -1 or "unlimited" for no limit.
    pub(super) fn rlimits(
        &self,
        raw: &BTreeMap<Spanned<String>, Spanned<RawRlimit>>,
        allowed: &LimitsAllowed,
    ) -> Result<Vec<boxr_plan::Rlimit>, ConfigError> {
        let mut limits: Vec<boxr_plan::Rlimit> = Vec::new();
        for (name, entry) in raw {
            let at = |span, m: String| {
                self.src.error(span, format!("process.rlimits.{}: {m}", name.get_ref()))
            };
            let resource = security::rlimit_resource(name.get_ref())
                .map_err(|m| self.src.error(name.span(), format!("process.rlimits: {m}")))?;
            if limits.iter().any(|l| l.resource == resource) {
                return Err(at(name.span(), "this limit is given twice".into()));
            }
            let value = |v: &Spanned<RawScalar>| match v.get_ref() {
                RawScalar::Int(-1) => Ok(boxr_plan::RLIM_INFINITY),
                RawScalar::Int(n) => u64::try_from(*n).map_err(|_| {
                    at(v.span(), format!("{n} is not a limit (-1 or \"unlimited\" for none)"))
                }),
                RawScalar::Text(t) if t == "unlimited" => Ok(boxr_plan::RLIM_INFINITY),
                RawScalar::Text(t) => Err(at(
                    v.span(),
                    format!("{t:?} is not a limit: give a number, or -1 or \"unlimited\""),
                )),
            };
            let entry = entry.get_ref();
            let limit = boxr_plan::Rlimit {
                resource,
                soft: value(&entry.soft)?,
                hard: value(&entry.hard)?,
            };
            security::check_rlimit(limit, allowed).map_err(|m| at(entry.hard.span(), m))?;
            limits.push(limit);
        }
        Ok(limits)
    }
    /// `[sysctls]`: kernel parameters of the container's own namespaces.
    pub(super) fn sysctls(
        &self,
        raw: BTreeMap<Spanned<String>, Spanned<RawScalar>>,
        namespaces: &[Namespace],
        hostname: Option<&str>,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let mut sysctls = Vec::with_capacity(raw.len());
        for (key, value) in raw {
            let text = match value.get_ref() {
                RawScalar::Int(n) => n.to_string(),
                RawScalar::Text(t) => t.clone(),
            };
            let err = |m: String| self.src.error(key.span(), format!("sysctls: {m}"));
            security::check_sysctl(key.get_ref(), &text, namespaces).map_err(err)?;
            if key.get_ref() == "kernel.hostname" && hostname.is_some() {
                return Err(err(
                    "kernel.hostname and hostname both set the hostname: keep one".into()
                ));
            }
            sysctls.push((key.into_inner(), text));
        }
        Ok(sysctls)
    }
    /// `process.user` and `process.additional_gids`, resolved in the rootfs's /etc files. In a
    /// user namespace they must be mapped; where `setgroups` is denied (a user mapping only its
    /// own ids) supplementary groups cannot be set.
    pub(super) fn user(
        &self,
        spec: Option<Spanned<String>>,
        additional: &[Spanned<u32>],
        rootfs: &Path,
        user_namespace: Option<&UserNamespace>,
    ) -> Result<User, ConfigError> {
        let at = spec.as_ref().map_or(0..0, Spanned::span);
        let err = |m: String| self.src.error(at.clone(), format!("process.user: {m}"));
        let read = |path| users::read_in_rootfs(rootfs, path).map_err(&err);
        let passwd = users::parse_passwd(&read("etc/passwd")?.unwrap_or_default());
        let group = users::parse_group(&read("etc/group")?.unwrap_or_default());
        let gids: Vec<u32> = additional.iter().map(|g| *g.get_ref()).collect();
        let user =
            users::resolve(spec.as_ref().map(|s| s.get_ref().as_str()), &gids, &passwd, &group)
                .map_err(&err)?;
        let Some(ns) = user_namespace else { return Ok(user) };
        let maps = &ns.maps;
        if to_host(&maps.uid, user.uid).is_none() || to_host(&maps.gid, user.gid).is_none() {
            return Err(err(format!(
                "{}:{} is not mapped in the \"user\" namespace (see uid_map and gid_map)",
                user.uid, user.gid
            )));
        }
        for gid in additional {
            if !maps.allows_setgroups() {
                return Err(self.src.error(
                    gid.span(),
                    "process.additional_gids: supplementary groups need setgroups, which the kernel denies in a user namespace whose maps a user wrote itself (give yourself /etc/subuid and /etc/subgid ranges and install uidmap)",
                ));
            }
            if to_host(&maps.gid, *gid.get_ref()).is_none() {
                return Err(self.src.error(
                    gid.span(),
                    format!(
                        "process.additional_gids: group {} is not mapped in the \"user\" namespace (see gid_map)",
                        gid.get_ref()
                    ),
                ));
            }
        }
        if let Some(gid) = user
            .groups
            .iter()
            .find(|&&g| maps.allows_setgroups() && to_host(&maps.gid, g).is_none())
        {
            return Err(err(format!(
                "its supplementary group {gid} (from the rootfs's /etc/group) is not mapped in the \"user\" namespace (see gid_map)"
            )));
        }
        Ok(user)
    }
    /// `process.cap_add` and `process.cap_drop` over docker's default set.
    pub(super) fn capabilities(
        &self,
        cap_add: &[Spanned<String>],
        cap_drop: &[Spanned<String>],
        available: Available,
    ) -> Result<(u64, u64), ConfigError> {
        let names = |list: &[Spanned<String>], key: &str| {
            list.iter()
                .map(|n| {
                    CapName::parse(n.get_ref())
                        .map_err(|m| self.src.error(n.span(), format!("process.{key}: {m}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let (add, drop) = (names(cap_add, "cap_add")?, names(cap_drop, "cap_drop")?);
        let set = security::capability_set(&add, &drop, available).map_err(|missing| {
            let at = add.iter().position(|c| *c == CapName::One(missing)).unwrap_or(0);
            self.src.error(
                cap_add[at].span(),
                format!(
                    "process.cap_add: boxr itself lacks CAP_{} (it is not in its bounding set), so no container it starts can have it",
                    security::cap_name(missing)
                ),
            )
        })?;
        let added = security::capability_set(&add, &[CapName::All], available).unwrap_or(0);
        Ok((set, added))
    }
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

pub(crate) fn check_env_entry(entry: &str) -> Result<(), String> {
    match entry.split_once('=') {
        Some((key, _)) if !key.is_empty() => Ok(()),
        _ => Err(format!("{entry:?} is not of the form KEY=VALUE")),
    }
}

/// Sets `entry` in `env`, replacing an entry with the same key.
pub(crate) fn set_env(env: &mut Vec<String>, entry: String) {
    let key = env_key(&entry);
    match env.iter_mut().find(|e| env_key(e) == key) {
        Some(existing) => *existing = entry,
        None => env.push(entry),
    }
}

/// Why `name` is not a valid hostname, if it is not (RFC 1123 labels, at most 64 bytes).
fn hostname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 64 {
        return Some("it must be 1 to 64 characters long");
    }
    for label in name.split('.') {
        if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
            return Some("labels between dots must be non-empty and not start or end with '-'");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Some("only letters, digits, '-' and '.' are allowed");
        }
    }
    None
}
