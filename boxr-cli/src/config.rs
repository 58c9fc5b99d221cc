//! The container config: a TOML file, parsed with serde, checked completely before anything is
//! created. Every error names `file:line:column` of the offending value.
//!
//! The schema is documented in docs/config.md.

use crate::ipam::Subnet;
use crate::network::{self, Mode};
use crate::paths;
use crate::ports::{self, PortMapping};
use crate::resources::{self, Field, RawResources, Resources};
use crate::security::{self, Available, CapName, LimitsAllowed};
use crate::users::{self, User};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A Linux namespace a container may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    Pid,
    Mount,
    Uts,
    Ipc,
    Net,
    User,
    Cgroup,
}

impl Namespace {
    pub fn name(self) -> &'static str {
        match self {
            Namespace::Pid => "pid",
            Namespace::Mount => "mount",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
        }
    }
}

fn yes() -> bool {
    true
}

const DEFAULT_CGROUP_PARENT: &str = "/boxr";

const DEFAULT_NAMESPACES: [Namespace; 5] =
    [Namespace::Pid, Namespace::Mount, Namespace::Uts, Namespace::Ipc, Namespace::Net];
/// What the workload must not see (runc's defaults): kernel memory, keys, timers, hardware and
/// firmware interfaces. Missing ones are skipped.
pub const DEFAULT_MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// What the workload may read but not write (runc's defaults): the kernel's tunables and
/// triggers. Missing ones are skipped.
pub const DEFAULT_READONLY_PATHS: [&str; 5] =
    ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A checked config: paths are absolute and exist, names are valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The config file, as the user named it.
    pub file: PathBuf,
    /// The rootfs directory, canonical.
    pub rootfs: PathBuf,
    pub hostname: Option<String>,
    pub namespaces: Vec<Namespace>,
    pub readonly_rootfs: bool,
    /// Run on an overlay of the rootfs with a writable layer of the container's own (the
    /// default), rather than on the rootfs directory itself.
    pub copy_on_write: bool,
    pub process: Process,
    pub mounts: Vec<Mount>,
    /// Container paths hidden from the workload ([`DEFAULT_MASKED_PATHS`] unless the config
    /// sets `masked_paths`): absolute, normalised, distinct.
    pub masked_paths: Vec<String>,
    /// Container paths made read-only ([`DEFAULT_READONLY_PATHS`] unless the config sets
    /// `readonly_paths`): absolute, normalised, distinct.
    pub readonly_paths: Vec<String>,
    /// The cgroup the container's cgroup is created in: absolute from each hierarchy's root,
    /// or relative to boxr's own cgroup.
    pub cgroup_parent: String,
    pub resources: Resources,
    pub network: network::Settings,
    /// Kernel parameters of the container's namespaces to set: (dotted key, value), sorted.
    pub sysctls: Vec<(String, String)>,
}

impl Config {
    pub fn has(&self, ns: Namespace) -> bool {
        self.namespaces.contains(&ns)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub args: Vec<String>,
    /// `KEY=VALUE` entries, keys unique, PATH and HOME always present.
    pub env: Vec<String>,
    /// Absolute and normalised.
    pub cwd: String,
    /// The workload's capabilities (bit N is capability N): docker's default with `cap_add`
    /// and `cap_drop` applied.
    pub capabilities: u64,
    /// The capabilities `cap_add` names (`ALL`: every available one): a non-root user gets
    /// these as ambient capabilities.
    pub added_capabilities: u64,
    /// Run with `no_new_privs` (the default): no exec can grant more privileges.
    pub no_new_privileges: bool,
    /// Who the workload runs as (root unless `user` says otherwise).
    pub user: User,
    /// Confine the workload's syscalls with docker's default seccomp profile (the default).
    pub seccomp: bool,
    /// Resource limits to set, each resource once, checked against boxr's own.
    pub rlimits: Vec<boxr_plan::Rlimit>,
    /// The workload's `oom_score_adj`, if set.
    pub oom_score_adj: Option<i16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute and normalised, inside the container, as the config gives it.
    pub destination: String,
    /// The destination with the rootfs's symlinks resolved (inside the rootfs): where the
    /// init mounts, creating missing directories along a path without symlinks.
    pub target: String,
    pub kind: MountKind,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A host path, canonical; `file` when it is not a directory.
    Bind { source: PathBuf, file: bool },
    /// A tmpfs of at most `size` bytes (the kernel's default, half of RAM, when `None`).
    Tmpfs { size: Option<u64> },
}

/// A config error at a place in the file (or, for command-line overrides, naming the flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `file:line:column` or the flag.
    pub at: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Values given on the command line that replace or extend the config's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces `process.args` when not empty.
    pub args: Vec<String>,
    /// `KEY=VALUE` (or `KEY`, taking the value from boxr's own environment).
    pub env: Vec<String>,
    pub hostname: Option<String>,
    /// `--memory`, `--cpus`, … as given, replacing `[resources]` values.
    pub resources: ResourceFlags,
    /// `--network MODE`, replacing `network.mode` (and adding or removing the "net" namespace
    /// to match).
    pub network: Option<String>,
    /// `-p` mappings, published on top of `network.ports`.
    pub publish: Vec<String>,
}

/// The `boxr run` resource flags, named as docker's, unparsed.
#[derive(Debug, Clone, Default)]
pub struct ResourceFlags {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpus: Option<String>,
    pub cpu_shares: Option<String>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    rootfs: Spanned<String>,
    hostname: Option<Spanned<String>>,
    namespaces: Option<Spanned<Vec<Spanned<Namespace>>>>,
    #[serde(default)]
    readonly_rootfs: bool,
    #[serde(default = "yes")]
    copy_on_write: bool,
    process: Option<Spanned<RawProcess>>,
    #[serde(default)]
    mounts: Vec<RawMount>,
    masked_paths: Option<Vec<Spanned<String>>>,
    readonly_paths: Option<Vec<Spanned<String>>>,
    cgroup_parent: Option<Spanned<String>>,
    resources: Option<RawResourceTable>,
    network: Option<Spanned<RawNetwork>>,
    #[serde(default)]
    sysctls: BTreeMap<Spanned<String>, Spanned<RawScalar>>,
}

/// A value given as a number or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawScalar {
    Int(i64),
    Text(String),
}

/// A `[process.rlimits]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRlimit {
    soft: Spanned<RawScalar>,
    hard: Spanned<RawScalar>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    mode: Option<Spanned<Mode>>,
    bridge: Option<Spanned<String>>,
    subnet: Option<Spanned<String>>,
    ports: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawResourceTable {
    memory: Option<Spanned<RawSize>>,
    memory_swap: Option<Spanned<RawSize>>,
    cpus: Option<Spanned<f64>>,
    cpu_shares: Option<Spanned<i64>>,
    cpu_weight: Option<Spanned<i64>>,
    cpuset_cpus: Option<Spanned<String>>,
    pids_limit: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    args: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    env: Vec<Spanned<String>>,
    cwd: Option<Spanned<String>>,
    #[serde(default)]
    cap_add: Vec<Spanned<String>>,
    #[serde(default)]
    cap_drop: Vec<Spanned<String>>,
    #[serde(default = "yes")]
    no_new_privileges: bool,
    user: Option<Spanned<String>>,
    #[serde(default)]
    additional_gids: Vec<Spanned<u32>>,
    #[serde(default)]
    rlimits: BTreeMap<Spanned<String>, Spanned<RawRlimit>>,
    oom_score_adj: Option<Spanned<i64>>,
    #[serde(default = "yes")]
    seccomp: bool,
}

impl Default for RawProcess {
    /// No `[process]` table: serde's defaults.
    fn default() -> Self {
        RawProcess {
            args: None,
            env: Vec::new(),
            cwd: None,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            no_new_privileges: true,
            user: None,
            additional_gids: Vec::new(),
            rlimits: BTreeMap::new(),
            oom_score_adj: None,
            seccomp: true,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMount {
    #[serde(rename = "type")]
    kind: Spanned<RawMountKind>,
    source: Option<Spanned<String>>,
    destination: Spanned<String>,
    readonly: Option<bool>,
    size: Option<Spanned<RawSize>>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawMountKind {
    Bind,
    Tmpfs,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(i64),
    Text(String),
}

/// The config file's text, for turning byte offsets into `file:line:column`.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError { at: self.at(span), message: message.into() }
    }

    /// `file:line:column` of the start of `span`.
    fn at(&self, span: Range<usize>) -> String {
        let (line, column) = line_column(self.text, span.start);
        format!("{}:{line}:{column}", self.file.display())
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Reads, parses and checks a config file, applying the command-line overrides.
pub fn load(file: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
    let text = fs::read_to_string(file).map_err(|e| ConfigError {
        at: file.display().to_string(),
        message: format!("cannot read config: {}", crate::errno::describe(&e)),
    })?;
    parse(file, &text, overrides)
}

/// Parses and checks config text; `file` names it in errors and anchors relative paths.
pub fn parse(file: &Path, text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
    let src = Source { file, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let message = e.message().trim_end().to_string();
        match e.span() {
            Some(span) => src.error(span, message),
            None => ConfigError { at: file.display().to_string(), message },
        }
    })?;
    let base = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Checker { src, base }.check(raw, overrides)
}

struct Checker<'a> {
    src: Source<'a>,
    base: &'a Path,
}

impl Checker<'_> {
    fn check(&self, raw: RawConfig, overrides: &Overrides) -> Result<Config, ConfigError> {
        let rootfs = self.rootfs(&raw.rootfs)?;
        let explicit_namespaces = raw.namespaces.as_ref().map(Spanned::span);
        let mut namespaces = self.namespaces(raw.namespaces)?;
        let network = self.network(raw.network, overrides, &mut namespaces, explicit_namespaces)?;
        let hostname = self.hostname(raw.hostname, overrides.hostname.as_deref(), &namespaces)?;
        let process =
            self.process(raw.process, overrides, hostname.as_deref(), &rootfs, &namespaces)?;
        let sysctls = self.sysctls(raw.sysctls, &namespaces, hostname.as_deref())?;
        let mut seen = HashSet::new();
        let mut mounts = Vec::with_capacity(raw.mounts.len());
        for m in raw.mounts {
            let span = m.destination.span();
            let mount = self.mount(m, &rootfs)?;
            if !seen.insert(mount.target.clone()) {
                return Err(self.src.error(
                    span,
                    format!(
                        "duplicate mount destination {} (in the rootfs: {}): each destination may be mounted once",
                        mount.destination, mount.target
                    ),
                ));
            }
            mounts.push(mount);
        }
        Ok(Config {
            file: self.src.file.to_path_buf(),
            rootfs,
            hostname,
            namespaces,
            readonly_rootfs: raw.readonly_rootfs,
            copy_on_write: raw.copy_on_write,
            process,
            mounts,
            masked_paths: self.kernel_paths(
                raw.masked_paths,
                &DEFAULT_MASKED_PATHS,
                "masked_paths",
            )?,
            readonly_paths: self.kernel_paths(
                raw.readonly_paths,
                &DEFAULT_READONLY_PATHS,
                "readonly_paths",
            )?,
            cgroup_parent: self.cgroup_parent(raw.cgroup_parent)?,
            resources: self.resources(raw.resources.unwrap_or_default(), &overrides.resources)?,
            network,
            sysctls,
        })
    }

    /// `[network]` with `--network` and `-p` on top. The mode decides the "net" namespace: with
    /// the default namespaces, or with `--network`, it is added or removed to match; a config
    /// whose own `namespaces` contradict its own mode is refused.
    fn network(
        &self,
        raw: Option<Spanned<RawNetwork>>,
        overrides: &Overrides,
        namespaces: &mut Vec<Namespace>,
        explicit_namespaces: Option<Range<usize>>,
    ) -> Result<network::Settings, ConfigError> {
        let (table, raw) = match raw {
            Some(t) => (Some(t.span()), t.into_inner()),
            None => (None, RawNetwork::default()),
        };
        let flag = match overrides.network.as_deref() {
            Some(m) => Some(Mode::parse(m).ok_or_else(|| ConfigError {
                at: "--network".into(),
                message: format!("unknown network mode {m:?}: use none, host or bridge"),
            })?),
            None => None,
        };
        let has_net = namespaces.contains(&Namespace::Net);
        let file_mode = match (&raw.mode, &table) {
            (Some(mode), _) => Some((*mode.get_ref(), mode.span())),
            (None, Some(span)) => Some((Mode::Bridge, span.clone())),
            (None, None) => None,
        };
        let mode = match (flag, &file_mode) {
            (Some(mode), _) => mode,
            (None, Some((mode, _))) => *mode,
            (None, None) if has_net => Mode::None,
            (None, None) => Mode::Host,
        };
        if (mode != Mode::Host) != has_net {
            if let (None, Some(_), Some((_, span))) = (flag, &explicit_namespaces, &file_mode) {
                let message = if has_net {
                    "network mode \"host\" shares the host's network: remove \"net\" from namespaces"
                        .to_string()
                } else {
                    format!(
                        "network mode \"{}\" needs the \"net\" namespace: add \"net\" to namespaces",
                        mode.name()
                    )
                };
                return Err(self.src.error(span.clone(), message));
            }
            if has_net {
                namespaces.retain(|ns| *ns != Namespace::Net);
            } else {
                namespaces.push(Namespace::Net);
            }
        }
        // Bridge settings in a config whose own mode is another are a mistake; with another
        // mode from --network they are just not used.
        let bridge_only = |span: Range<usize>, key: &str| -> Result<(), ConfigError> {
            match &file_mode {
                Some((file_mode, _)) if *file_mode != Mode::Bridge && flag.is_none() => {
                    Err(self.src.error(
                        span,
                        format!(
                            "network.{key} applies to bridge mode only, and mode is \"{}\"",
                            file_mode.name()
                        ),
                    ))
                }
                _ => Ok(()),
            }
        };
        let bridge = match raw.bridge {
            Some(name) => {
                bridge_only(name.span(), "bridge")?;
                network::check_bridge_name(name.get_ref())
                    .map_err(|m| self.src.error(name.span(), format!("network.bridge: {m}")))?;
                name.into_inner()
            }
            None => network::DEFAULT_BRIDGE.to_string(),
        };
        let subnet = match raw.subnet {
            Some(text) => {
                bridge_only(text.span(), "subnet")?;
                let subnet = Subnet::parse(text.get_ref())
                    .and_then(|s| match mode {
                        Mode::Bridge => network::check_subnet_free(s, &bridge).map(|()| s),
                        _ => Ok(s),
                    })
                    .map_err(|m| self.src.error(text.span(), format!("network.subnet: {m}")))?;
                Some(subnet)
            }
            None => None,
        };
        let mut ports = Vec::new();
        let mut origins = Vec::new();
        if let Some(list) = raw.ports {
            bridge_only(list.span(), "ports")?;
            for entry in list.into_inner() {
                let port = PortMapping::parse(entry.get_ref())
                    .map_err(|m| self.src.error(entry.span(), format!("network.ports: {m}")))?;
                ports.push(port);
                origins.push(self.src.at(entry.span()));
            }
        }
        for text in &overrides.publish {
            let at = format!("-p {text}");
            let port = PortMapping::parse(text)
                .map_err(|message| ConfigError { at: at.clone(), message })?;
            if mode != Mode::Bridge {
                return Err(ConfigError {
                    at,
                    message: format!(
                        "publishing a port needs bridge mode, and the network mode is \"{}\": use --network bridge",
                        mode.name()
                    ),
                });
            }
            ports.push(port);
            origins.push(at);
        }
        ports::check_distinct(&ports)
            .map_err(|(i, message)| ConfigError { at: origins[i].clone(), message })?;
        if mode != Mode::Bridge {
            ports.clear();
        }
        Ok(network::Settings { mode, bridge, subnet, ports })
    }

    /// `masked_paths` or `readonly_paths`: `defaults` when absent, else the given container
    /// paths (an empty list relaxes them all).
    fn kernel_paths(
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

    fn cgroup_parent(&self, raw: Option<Spanned<String>>) -> Result<String, ConfigError> {
        let Some(raw) = raw else { return Ok(DEFAULT_CGROUP_PARENT.to_string()) };
        let value = raw.get_ref();
        let ok = !value.is_empty()
            && !value.split('/').any(|p| p == ".." || p == ".")
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
        if !ok || value == "/" {
            return Err(self.src.error(
                raw.span(),
                format!("cgroup_parent {value:?}: give a cgroup path such as \"/boxr\" (letters, digits, '_', '.', '-', no '..')"),
            ));
        }
        Ok(value.trim_end_matches('/').to_string())
    }

    /// `[resources]` with the command-line flags on top, checked as the kernel would.
    fn resources(
        &self,
        t: RawResourceTable,
        flags: &ResourceFlags,
    ) -> Result<Resources, ConfigError> {
        let mut spans: Vec<(Field, Range<usize>)> = Vec::new();
        let mut take = |field: Field, span: Option<Range<usize>>| {
            if let Some(span) = span {
                spans.push((field, span));
            }
        };
        take(Field::Memory, t.memory.as_ref().map(Spanned::span));
        take(Field::MemorySwap, t.memory_swap.as_ref().map(Spanned::span));
        take(Field::Cpus, t.cpus.as_ref().map(Spanned::span));
        take(Field::CpuShares, t.cpu_shares.as_ref().map(Spanned::span));
        take(Field::CpuWeight, t.cpu_weight.as_ref().map(Spanned::span));
        take(Field::CpusetCpus, t.cpuset_cpus.as_ref().map(Spanned::span));
        take(Field::PidsLimit, t.pids_limit.as_ref().map(Spanned::span));
        let size =
            |v: Option<Spanned<RawSize>>, field: Field| -> Result<Option<i64>, ConfigError> {
                let Some(v) = v else { return Ok(None) };
                match v.get_ref() {
                    RawSize::Bytes(n) => Ok(Some(*n)),
                    RawSize::Text(t) => parse_size_text(t)
                        .and_then(|n| i64::try_from(n).map_err(|_| format!("{t:?} is too large")))
                        .map(Some)
                        .map_err(|m| self.src.error(v.span(), format!("resources.{field}: {m}"))),
                }
            };
        let mut raw = RawResources {
            memory: size(t.memory, Field::Memory)?,
            memory_swap: size(t.memory_swap, Field::MemorySwap)?,
            cpus: t.cpus.map(Spanned::into_inner),
            cpu_shares: t.cpu_shares.map(Spanned::into_inner),
            cpu_weight: t.cpu_weight.map(Spanned::into_inner),
            cpuset_cpus: t.cpuset_cpus.map(Spanned::into_inner),
            pids_limit: t.pids_limit.map(Spanned::into_inner),
        };
        let mut from_flag = Vec::new();
        apply_resource_flags(&mut raw, flags, &mut from_flag)?;
        let online =
            fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_else(|_| "0".into());
        resources::check(&raw, &online).map_err(|(field, message)| {
            if let Some(flag) = from_flag.iter().find(|(f, _)| *f == field).map(|(_, flag)| flag) {
                return ConfigError { at: flag.to_string(), message };
            }
            match spans.iter().find(|(f, _)| *f == field) {
                Some((_, span)) => {
                    self.src.error(span.clone(), format!("resources.{field}: {message}"))
                }
                None => ConfigError {
                    at: self.src.file.display().to_string(),
                    message: format!("resources.{field}: {message}"),
                },
            }
        })
    }

    fn host_path(&self, value: &str) -> PathBuf {
        self.base.join(value)
    }

    fn rootfs(&self, raw: &Spanned<String>) -> Result<PathBuf, ConfigError> {
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

    fn namespaces(
        &self,
        raw: Option<Spanned<Vec<Spanned<Namespace>>>>,
    ) -> Result<Vec<Namespace>, ConfigError> {
        let Some(raw) = raw else { return Ok(DEFAULT_NAMESPACES.to_vec()) };
        let mut namespaces = Vec::new();
        for ns in raw.get_ref() {
            if namespaces.contains(ns.get_ref()) {
                return Err(self.src.error(
                    ns.span(),
                    format!("namespace \"{}\" is listed twice", ns.get_ref().name()),
                ));
            }
            namespaces.push(*ns.get_ref());
        }
        let need = |ns: Namespace, why: &str| {
            if namespaces.contains(&ns) {
                Ok(())
            } else {
                Err(self
                    .src
                    .error(raw.span(), format!("namespaces must include \"{}\": {why}", ns.name())))
            }
        };
        need(
            Namespace::Mount,
            "boxr sets up the container's mounts and pivots into the rootfs in its own mount namespace",
        )?;
        if namespaces.contains(&Namespace::User) {
            need(
                Namespace::Pid,
                "with \"user\", /proc can only be mounted for a PID namespace the container owns",
            )?;
        }
        Ok(namespaces)
    }

    fn hostname(
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

    fn process(
        &self,
        raw: Option<Spanned<RawProcess>>,
        overrides: &Overrides,
        hostname: Option<&str>,
        rootfs: &Path,
        namespaces: &[Namespace],
    ) -> Result<Process, ConfigError> {
        let (span, raw) = match raw {
            Some(p) => (p.span(), p.into_inner()),
            None => (0..0, RawProcess::default()),
        };
        let user_namespace = namespaces.contains(&Namespace::User);
        let user = self.user(raw.user, &raw.additional_gids, rootfs, user_namespace)?;
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
            seccomp: raw.seccomp,
            rlimits,
            oom_score_adj,
        })
    }

    /// `[process.rlimits]`: `NAME = { soft = N, hard = N }`, -1 or "unlimited" for no limit.
    fn rlimits(
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
    fn sysctls(
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
    /// user namespace only root is mapped, and `setgroups` is denied.
    fn user(
        &self,
        spec: Option<Spanned<String>>,
        additional: &[Spanned<u32>],
        rootfs: &Path,
        user_namespace: bool,
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
        if user_namespace {
            if let Some(gid) = additional.first() {
                return Err(self.src.error(
                    gid.span(),
                    "process.additional_gids: a container with the \"user\" namespace cannot have supplementary groups (setgroups is denied there)",
                ));
            }
            if (user.uid, user.gid) != (0, 0) {
                return Err(err(format!(
                    "{}:{} is not mapped in the \"user\" namespace, where only root (0:0) is",
                    user.uid, user.gid
                )));
            }
        }
        Ok(user)
    }

    /// `process.cap_add` and `process.cap_drop` over docker's default set.
    fn capabilities(
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

    fn mount(&self, m: RawMount, rootfs: &Path) -> Result<Mount, ConfigError> {
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

    fn no_nul(&self, value: Spanned<String>, field: &str) -> Result<String, ConfigError> {
        if value.get_ref().contains('\0') {
            return Err(self.src.error(value.span(), format!("{field} holds a NUL character")));
        }
        Ok(value.into_inner())
    }
}

fn no_nul_flag(value: &str, flag: &str) -> Result<(), ConfigError> {
    if value.contains('\0') {
        return Err(ConfigError {
            at: flag.to_string(),
            message: format!("{value:?} holds a NUL character"),
        });
    }
    Ok(())
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

/// Parses a size: bytes as an integer, or a string with an optional k/m/g suffix (powers of
/// 1024, case-insensitive, an optional trailing "b").
pub fn parse_size_text(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, shift) = match t.as_bytes().last() {
        Some(b'k') => (&t[..t.len() - 1], 10),
        Some(b'm') => (&t[..t.len() - 1], 20),
        Some(b'g') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let bad = || {
        format!("invalid size {text:?}: give bytes, or a number with a k, m or g suffix (\"64m\")")
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("size {text:?} is too large"))
}

/// Puts the `boxr run` resource flags over the config's values, noting which came from a flag.
fn apply_resource_flags(
    raw: &mut RawResources,
    flags: &ResourceFlags,
    from_flag: &mut Vec<(Field, &'static str)>,
) -> Result<(), ConfigError> {
    fn parsed<T>(
        value: &Option<String>,
        flag: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        value
            .as_deref()
            .map(|v| parse(v).map_err(|message| ConfigError { at: flag.to_string(), message }))
            .transpose()
    }
    let size = |v: &str| -> Result<i64, String> {
        if v.trim() == "-1" {
            return Ok(-1);
        }
        parse_size_text(v).and_then(|n| i64::try_from(n).map_err(|_| format!("{v:?} is too large")))
    };
    let int = |v: &str| v.trim().parse::<i64>().map_err(|_| format!("{v:?} is not a whole number"));
    let float = |v: &str| {
        v.trim().parse::<f64>().map_err(|_| format!("{v:?} is not a number of CPUs such as 0.5"))
    };
    let mut set = |field: Field, flag: &'static str, present: bool| {
        if present {
            from_flag.push((field, flag));
        }
    };
    set(Field::Memory, "--memory", flags.memory.is_some());
    set(Field::MemorySwap, "--memory-swap", flags.memory_swap.is_some());
    set(Field::Cpus, "--cpus", flags.cpus.is_some());
    set(Field::CpuShares, "--cpu-shares", flags.cpu_shares.is_some());
    set(Field::CpusetCpus, "--cpuset-cpus", flags.cpuset_cpus.is_some());
    set(Field::PidsLimit, "--pids-limit", flags.pids_limit.is_some());
    if let Some(v) = parsed(&flags.memory, "--memory", size)? {
        raw.memory = Some(v);
    }
    if let Some(v) = parsed(&flags.memory_swap, "--memory-swap", size)? {
        raw.memory_swap = Some(v);
    }
    if let Some(v) = parsed(&flags.cpus, "--cpus", float)? {
        raw.cpus = Some(v);
    }
    if let Some(v) = parsed(&flags.cpu_shares, "--cpu-shares", int)? {
        raw.cpu_shares = Some(v);
        raw.cpu_weight = None;
    }
    if let Some(v) = parsed(&flags.cpuset_cpus, "--cpuset-cpus", |v| Ok(v.to_string()))? {
        raw.cpuset_cpus = Some(v);
    }
    if let Some(v) = parsed(&flags.pids_limit, "--pids-limit", int)? {
        raw.pids_limit = Some(v);
    }
    Ok(())
}

fn parse_size(raw: &RawSize) -> Result<u64, String> {
    let size = match raw {
        RawSize::Bytes(n) => {
            u64::try_from(*n).map_err(|_| format!("size {n} must not be negative"))?
        }
        RawSize::Text(t) => parse_size_text(t)?,
    };
    if size == 0 {
        return Err("size must be more than 0 (leave it out for the kernel's default)".into());
    }
    Ok(size)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
