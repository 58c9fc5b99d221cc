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

mod filesystem;
mod limits;
mod networking;
mod process;
mod userns;

pub(crate) use process::{check_env_entry, set_env};

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
    /// The "user" namespace's maps, when the container has one.
    pub user_namespace: Option<UserNamespace>,
}

/// A container's user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNamespace {
    pub maps: crate::userns::IdMaps,
    /// Mount the rootfs idmapped with the namespace, so that its files' owners show inside as
    /// they are on disk (root-owned files as owned by the container's root).
    pub idmapped_rootfs: bool,
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
    /// The workload's seccomp filter, compiled from `seccomp` for its capabilities (docker's
    /// default profile unless the config names another); empty: "unconfined".
    pub seccomp: Vec<crate::seccomp::Instruction>,
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
    resources: Option<Spanned<RawResourceTable>>,
    network: Option<Spanned<RawNetwork>>,
    #[serde(default)]
    sysctls: BTreeMap<Spanned<String>, Spanned<RawScalar>>,
    uid_map: Option<Spanned<Vec<Spanned<String>>>>,
    gid_map: Option<Spanned<Vec<Spanned<String>>>>,
    idmapped_rootfs: Option<Spanned<bool>>,
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
    /// "default", "unconfined" or a profile's path; any TOML value, for a helpful error.
    seccomp: Option<Spanned<toml::Value>>,
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
            seccomp: None,
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
        let user_namespace = self.user_namespace(
            userns::RawUserNamespace {
                uid_map: raw.uid_map,
                gid_map: raw.gid_map,
                idmapped_rootfs: raw.idmapped_rootfs,
            },
            &mut namespaces,
            explicit_namespaces.clone(),
        )?;
        let network_at = raw.network.as_ref().map(Spanned::span);
        let network = self.network(raw.network, overrides, &mut namespaces, explicit_namespaces)?;
        self.rootless_limits(
            raw.resources.as_ref().map(Spanned::span),
            raw.cgroup_parent.as_ref().map(Spanned::span),
            &network,
            network_at,
            overrides,
        )?;
        let hostname = self.hostname(raw.hostname, overrides.hostname.as_deref(), &namespaces)?;
        let process = self.process(
            raw.process,
            overrides,
            hostname.as_deref(),
            &rootfs,
            user_namespace.as_ref(),
        )?;
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
            resources: self.resources(
                raw.resources.map(Spanned::into_inner).unwrap_or_default(),
                &overrides.resources,
            )?,
            network,
            sysctls,
            user_namespace,
        })
    }
    fn host_path(&self, value: &str) -> PathBuf {
        self.base.join(value)
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
mod tests;
