//! Container cgroups on cgroup v2 (unified) and v1, including the hybrid layout (v1
//! controllers under /sys/fs/cgroup/<controller>, a controller-less cgroup2 mount beside them).
//! The layout is detected at run time from /proc/self/mountinfo.
//!
//! Each container gets `<parent>/<id>` in every hierarchy boxr uses: the unified one on v2; the
//! memory, cpu, cpuacct, cpuset, pids and devices ones on v1. `parent` is absolute from the
//! hierarchy's root (default `/boxr`), or relative to boxr's own cgroup there. Device access is
//! restricted in every container's cgroup (devices.rs) before any process is in it.

use crate::devices;
use crate::errno::describe;
use crate::resources::{CPU_PERIOD_US, Resources, Swap};
use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The v1 controllers boxr manages.
const V1_CONTROLLERS: [&str; 6] = ["memory", "cpu", "cpuacct", "cpuset", "pids", "devices"];
/// The v2 controllers boxr enables for its cgroups.
const V2_CONTROLLERS: [&str; 4] = ["cpu", "cpuset", "memory", "pids"];
/// What a v1 memory limit reads when there is none.
const V1_UNLIMITED: u64 = 1 << 62;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

/// The cgroup hierarchies of this host, as boxr uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchies {
    pub version: Version,
    /// Controller (v2: "unified") → (mount point, boxr's own cgroup path in it).
    mounts: BTreeMap<String, (PathBuf, String)>,
}

/// A container's cgroup: one directory per controller (v2: just "unified").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCgroup {
    pub version: Version,
    pub dirs: BTreeMap<String, PathBuf>,
}

impl Hierarchies {
    /// Reads the host's layout from /proc/self/mountinfo and /proc/self/cgroup.
    pub fn detect() -> Result<Hierarchies> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| anyhow!("cannot read /proc/self/mountinfo: {}", describe(&e)))?;
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| anyhow!("cannot read /proc/self/cgroup: {}", describe(&e)))?;
        Hierarchies::parse(&mountinfo, &own)
    }

    fn parse(mountinfo: &str, own: &str) -> Result<Hierarchies> {
        let own_path = |controller: Option<&str>| -> String {
            own.lines()
                .filter_map(|l| {
                    let mut f = l.splitn(3, ':');
                    Some((f.next()?, f.next()?, f.next()?))
                })
                .find(|(_, names, _)| match controller {
                    Some(c) => names.split(',').any(|n| n == c),
                    None => names.is_empty(),
                })
                .map_or("/".to_string(), |(_, _, path)| path.to_string())
        };
        let mut v1 = BTreeMap::new();
        let mut unified = None;
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let mount_point = unescape(left.split(' ').nth(4).unwrap_or(""));
            let mut right = right.split(' ');
            let (fstype, options) = (right.next().unwrap_or(""), right.nth(1).unwrap_or(""));
            match fstype {
                "cgroup2" => unified = Some(PathBuf::from(mount_point)),
                "cgroup" => {
                    for controller in options.split(',').filter(|o| V1_CONTROLLERS.contains(o)) {
                        let path = (PathBuf::from(&mount_point), own_path(Some(controller)));
                        v1.insert(controller.to_string(), path);
                    }
                }
                _ => {}
            }
        }
        if !v1.is_empty() {
            return Ok(Hierarchies { version: Version::V1, mounts: v1 });
        }
        let Some(unified) = unified else {
            bail!(
                "no cgroup filesystem is mounted (neither cgroup2 nor cgroup v1 controllers in /proc/self/mountinfo)"
            );
        };
        let mounts = BTreeMap::from([("unified".to_string(), (unified, own_path(None)))]);
        Ok(Hierarchies { version: Version::V2, mounts })
    }

    /// Where the container `id`'s cgroup goes under `parent`: a directory per controller
    /// (co-mounted controllers share one), nothing created yet. On v1 that is `memory`,
    /// `cpuacct`, `pids` (usage, OOM kills) and `devices` (the device rules) always, `cpu` and
    /// `cpuset` only for the limits of `resources` that use them: every hierarchy costs a
    /// directory with its files, a move and a removal per container.
    pub fn locate(&self, parent: &str, id: &str, resources: &Resources) -> ContainerCgroup {
        let used = |controller: &str| match controller {
            "cpu" => resources.cpu_quota_us.is_some() || resources.cpu_share.is_some(),
            "cpuset" => resources.cpuset_cpus.is_some(),
            _ => true,
        };
        let dirs = self
            .mounts
            .iter()
            .filter(|(controller, _)| self.version == Version::V2 || used(controller))
            .map(|(controller, (mount, own))| {
                let base = if parent.starts_with('/') {
                    PathBuf::from(parent)
                } else {
                    Path::new(own).join(parent)
                };
                (controller.clone(), mount.join(base.strip_prefix("/").unwrap_or(&base)).join(id))
            })
            .collect();
        ContainerCgroup { version: self.version, dirs }
    }

    /// Creates the directories of `cgroup` (from [`Hierarchies::locate`]) with their missing
    /// ancestors, with docker's device rules and the limits of `resources`; on failure removes
    /// what it made.
    pub fn create(&self, cgroup: &ContainerCgroup, resources: &Resources) -> Result<()> {
        let mut made = Vec::new();
        let result = (|| {
            for (controller, (mount, _)) in &self.mounts {
                let Some(dir) = cgroup.dirs.get(controller) else { continue };
                // Co-mounted controllers (cpu,cpuacct) share one directory.
                if !made.contains(dir) {
                    make_cgroup_dir(mount, dir, controller, &mut made)?;
                }
            }
            cgroup.restrict_devices()?;
            cgroup.apply(resources)
        })();
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                for dir in made.iter().rev() {
                    let _ = fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    }
}

/// `\040` and friends in mountinfo paths.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        match u8::from_str_radix(rest.get(i + 1..i + 4).unwrap_or(""), 8) {
            Ok(b) => {
                out.push(b as char);
                rest = &rest[i + 4..];
            }
            Err(_) => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out + rest
}

fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    fs::write(&path, value)
        .map_err(|e| anyhow!("cannot write {value:?} to {}: {}", path.display(), describe(&e)))
}

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// Creates `dir` and its missing ancestors below `mount`, recording what it made. On v1 a new
/// cpuset cgroup starts with no CPUs and no memory nodes: copy its parent's. On v2, enable
/// boxr's controllers in every ancestor's subtree.
fn make_cgroup_dir(
    mount: &Path,
    dir: &Path,
    controller: &str,
    made: &mut Vec<PathBuf>,
) -> Result<()> {
    let relative = dir.strip_prefix(mount).expect("cgroup dirs are below their mount");
    let mut current = mount.to_path_buf();
    for part in relative.components() {
        if controller == "unified" {
            enable_v2_controllers(&current)?;
        }
        let parent = current.clone();
        current.push(part);
        match fs::create_dir(&current) {
            Ok(()) => made.push(current.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => bail!("cannot create cgroup {}: {}", current.display(), describe(&e)),
        }
        if controller == "cpuset" {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let value = read(&parent, file).unwrap_or_default();
                write(&current, file, value.trim())?;
            }
        }
    }
    Ok(())
}

fn enable_v2_controllers(dir: &Path) -> Result<()> {
    let available = read(dir, "cgroup.controllers").unwrap_or_default();
    let enabled = read(dir, "cgroup.subtree_control").unwrap_or_default();
    let missing: Vec<String> = V2_CONTROLLERS
        .iter()
        .filter(|c| {
            available.split_whitespace().any(|a| a == **c)
                && !enabled.split_whitespace().any(|e| e == **c)
        })
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write(dir, "cgroup.subtree_control", &missing.join(" ")).map_err(|e| {
        anyhow!("{e:#} (a cgroup v2 parent with processes of its own cannot delegate controllers: set cgroup_parent to an absolute path such as \"/boxr\")")
    })
}

impl ContainerCgroup {
    fn dir(&self, v1_controller: &str, what: &str) -> Result<&Path> {
        let key = if self.version == Version::V2 { "unified" } else { v1_controller };
        self.dirs.get(key).map(PathBuf::as_path).ok_or_else(|| {
            anyhow!("{what} needs the {v1_controller} cgroup controller, which this host has not mounted")
        })
    }

    fn has_v2_controller(&self, controller: &str) -> bool {
        self.dirs
            .get("unified")
            .and_then(|d| read(d, "cgroup.controllers"))
            .is_some_and(|c| c.split_whitespace().any(|n| n == controller))
    }

    /// Only docker's default devices (devices.rs): on v1 in the devices cgroup, on v2 as a
    /// BPF program attached to the directory.
    fn restrict_devices(&self) -> Result<()> {
        let dir = self.dir("devices", "device access control")?;
        match self.version {
            Version::V2 => devices::attach_program(dir),
            Version::V1 => {
                write(dir, "devices.deny", devices::V1_DENY)?;
                // One rule per write, through one open file.
                let path = dir.join("devices.allow");
                let mut allow = fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(|e| anyhow!("cannot open {}: {}", path.display(), describe(&e)))?;
                devices::v1_allow_rules().try_for_each(|rule| {
                    allow.write_all(rule.as_bytes()).map_err(|e| {
                        anyhow!("cannot write {rule:?} to {}: {}", path.display(), describe(&e))
                    })
                })
            }
        }
    }

    /// Writes the limits into the cgroup's files.
    fn apply(&self, r: &Resources) -> Result<()> {
        match self.version {
            Version::V2 => self.apply_v2(r),
            Version::V1 => self.apply_v1(r),
        }
    }

    fn apply_v2(&self, r: &Resources) -> Result<()> {
        let dir = self.dir("unified", "a cgroup")?;
        let need = |controller: &str, what: &str| {
            if self.has_v2_controller(controller) {
                Ok(())
            } else {
                Err(anyhow!(
                    "{what} needs the {controller} controller, which is not enabled in {}",
                    dir.display()
                ))
            }
        };
        if let Some(memory) = r.memory {
            need("memory", "a memory limit")?;
            write(dir, "memory.max", &memory.to_string())?;
        }
        match (r.memory_swap, r.memory) {
            (Some(Swap::Limit(total)), Some(memory)) => {
                write(dir, "memory.swap.max", &(total - memory).to_string())?
            }
            (Some(Swap::Unlimited), _) => write(dir, "memory.swap.max", "max")?,
            _ => {}
        }
        if let Some(quota) = r.cpu_quota_us {
            need("cpu", "a cpu quota")?;
            write(dir, "cpu.max", &format!("{quota} {CPU_PERIOD_US}"))?;
        }
        if let Some(share) = r.cpu_share {
            need("cpu", "a cpu weight")?;
            write(dir, "cpu.weight", &share.weight().to_string())?;
        }
        if let Some(cpus) = &r.cpuset_cpus {
            need("cpuset", "a cpuset")?;
            write(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(pids) = r.pids_limit {
            need("pids", "a pids limit")?;
            write(dir, "pids.max", &pids.to_string())?;
        }
        Ok(())
    }

    fn apply_v1(&self, r: &Resources) -> Result<()> {
        if let Some(memory) = r.memory {
            write(
                self.dir("memory", "a memory limit")?,
                "memory.limit_in_bytes",
                &memory.to_string(),
            )?;
        }
        if let Some(swap) = r.memory_swap {
            let dir = self.dir("memory", "a swap limit")?;
            if !dir.join("memory.memsw.limit_in_bytes").exists() {
                bail!(
                    "memory_swap needs swap accounting, which this kernel has off (no memory.memsw.limit_in_bytes)"
                );
            }
            let value = match swap {
                Swap::Limit(total) => total.to_string(),
                Swap::Unlimited => "-1".to_string(),
            };
            write(dir, "memory.memsw.limit_in_bytes", &value)?;
        }
        if let Some(quota) = r.cpu_quota_us {
            let dir = self.dir("cpu", "a cpu quota")?;
            write(dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
            write(dir, "cpu.cfs_quota_us", &quota.to_string())?;
        }
        if let Some(share) = r.cpu_share {
            write(self.dir("cpu", "cpu shares")?, "cpu.shares", &share.shares().to_string())?;
        }
        if let Some(cpus) = &r.cpuset_cpus {
            write(self.dir("cpuset", "a cpuset")?, "cpuset.cpus", cpus)?;
        }
        if let Some(pids) = r.pids_limit {
            write(self.dir("pids", "a pids limit")?, "pids.max", &pids.to_string())?;
        }
        Ok(())
    }

    fn unique_dirs(&self) -> Vec<&Path> {
        let mut dirs: Vec<&Path> = self.dirs.values().map(PathBuf::as_path).collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// On cgroup v2, the container's directory opened for `CLONE_INTO_CGROUP`.
    pub fn open_for_clone(&self) -> Result<Option<File>> {
        let Some(dir) = self.dirs.get("unified").filter(|_| self.version == Version::V2) else {
            return Ok(None);
        };
        File::open(dir)
            .map(Some)
            .map_err(|e| anyhow!("cannot open cgroup {}: {}", dir.display(), describe(&e)))
    }

    /// Whether a process joins the cgroup only after it is cloned (v1, by [`ContainerCgroup::add`]);
    /// on v2 the init is cloned into it ([`ContainerCgroup::open_for_clone`]).
    pub fn joined_after_clone(&self) -> bool {
        self.version == Version::V1
    }

    /// Moves process `pid` (and so its future children) into the cgroup.
    pub fn add(&self, pid: i32) -> Result<()> {
        self.unique_dirs()
            .into_iter()
            .try_for_each(|dir| write(dir, "cgroup.procs", &pid.to_string()))
    }

    /// Whether the container, which ended with exit status `code`, was killed by the OOM
    /// killer: it died of SIGKILL and the OOM killer acted in its cgroup.
    pub fn oom_killed(&self, code: i32) -> bool {
        code == 128 + libc::SIGKILL && self.oom_kills() > 0
    }

    /// SIGKILLs every process left in the cgroup: without a PID namespace, the workload's
    /// orphans outlive it otherwise. On v1 every process of the container is in each of its
    /// hierarchies, so one lists them all.
    pub fn kill_all(&self) {
        match self.version {
            Version::V2 => {
                if let Some(dir) = self.dirs.get("unified")
                    && write(dir, "cgroup.kill", "1").is_err()
                {
                    // A kernel before 5.14, without cgroup.kill.
                    kill_members(dir);
                }
            }
            Version::V1 => {
                if let Some(dir) = self.unique_dirs().first() {
                    kill_members(dir);
                }
            }
        }
    }

    /// How many times the OOM killer killed a process in the cgroup.
    fn oom_kills(&self) -> u64 {
        let (key, file) = match self.version {
            Version::V2 => ("unified", "memory.events"),
            Version::V1 => ("memory", "memory.oom_control"),
        };
        self.dirs
            .get(key)
            .and_then(|d| read(d, file))
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok()))
            })
            .unwrap_or(0)
    }

    /// The memory limit in force, if any.
    pub fn memory_limit(&self) -> Option<u64> {
        let (dir, file) = match self.version {
            Version::V2 => (self.dirs.get("unified")?, "memory.max"),
            Version::V1 => (self.dirs.get("memory")?, "memory.limit_in_bytes"),
        };
        read(dir, file)?.trim().parse().ok().filter(|&n| n < V1_UNLIMITED)
    }

    /// Current usage, from the cgroup's files.
    pub fn stats(&self) -> Stats {
        let num = |key: &str, file: &str| -> Option<u64> {
            read(self.dirs.get(key)?, file)?.trim().parse().ok()
        };
        match self.version {
            Version::V2 => Stats {
                memory_usage: num("unified", "memory.current"),
                memory_limit: self.memory_limit(),
                cpu_usage_ns: self.dirs.get("unified").and_then(|d| read(d, "cpu.stat")).and_then(
                    |t| {
                        t.lines()
                            .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse::<u64>().ok())
                            .map(|us| us * 1000)
                    },
                ),
                pids_current: num("unified", "pids.current"),
                pids_limit: num("unified", "pids.max"),
            },
            Version::V1 => Stats {
                memory_usage: num("memory", "memory.usage_in_bytes"),
                memory_limit: self.memory_limit(),
                cpu_usage_ns: num("cpuacct", "cpuacct.usage"),
                pids_current: num("pids", "pids.current"),
                pids_limit: num("pids", "pids.max"),
            },
        }
    }

    /// Removes the cgroup. Processes still in it (a killed frontend's leftovers) are killed
    /// first; the removal is retried until they are gone.
    pub fn remove(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        for dir in self.unique_dirs() {
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        kill_members(dir);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => bail!("cannot remove cgroup {}: {}", dir.display(), describe(&e)),
                }
            }
        }
        Ok(())
    }
}

/// SIGKILLs the processes `cgroup.procs` in `dir` lists.
fn kill_members(dir: &Path) {
    for pid in
        read(dir, "cgroup.procs").unwrap_or_default().lines().filter_map(|p| p.parse::<i32>().ok())
    {
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// A snapshot of a container's resource use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub memory_usage: Option<u64>,
    pub memory_limit: Option<u64>,
    pub cpu_usage_ns: Option<u64>,
    pub pids_current: Option<u64>,
    pub pids_limit: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_OWN: &str = "9:name=systemd:/\n8:pids:/\n5:devices:/\n4:memory:/sandbox/7\n\
                              3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";
    const V2: &str = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn hybrid_layout_uses_the_v1_controllers() {
        let h = Hierarchies::parse(HYBRID, HYBRID_OWN).unwrap();
        assert_eq!(h.version, Version::V1);
        assert_eq!(
            h.mounts.keys().collect::<Vec<_>>(),
            ["cpu", "cpuacct", "cpuset", "devices", "memory", "pids"]
        );
        assert_eq!(
            h.mounts["memory"],
            (PathBuf::from("/sys/fs/cgroup/memory"), "/sandbox/7".to_string())
        );
    }

    #[test]
    fn co_mounted_v1_controllers_share_a_mount() {
        let info = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let h = Hierarchies::parse(info, "2:cpu,cpuacct:/x\n").unwrap();
        assert_eq!(h.mounts["cpu"], h.mounts["cpuacct"]);
        assert_eq!(h.mounts["cpu"].1, "/x");
    }

    #[test]
    fn unified_layout_is_v2() {
        let h = Hierarchies::parse(V2, "0::/user.slice/session-1.scope\n").unwrap();
        assert_eq!(h.version, Version::V2);
        assert_eq!(
            h.mounts["unified"],
            (PathBuf::from("/sys/fs/cgroup"), "/user.slice/session-1.scope".to_string())
        );
        assert!(Hierarchies::parse("", "").is_err());
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    /// A fake v1 hierarchy in a temp dir: the cgroup files are plain files there.
    #[test]
    fn v1_cgroup_is_created_limited_and_removed() {
        let root = std::env::temp_dir().join(format!("boxr-cgroup-test-{}", std::process::id()));
        let mut mounts = BTreeMap::new();
        for c in ["memory", "cpuset", "devices"] {
            fs::create_dir_all(root.join(c)).unwrap();
            mounts.insert(c.to_string(), (root.join(c), "/".to_string()));
        }
        fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
        let h = Hierarchies { version: Version::V1, mounts };
        let r = Resources {
            memory: Some(16 << 20),
            cpuset_cpus: Some("1".into()),
            ..Resources::default()
        };
        let plain = h.locate("/boxr", "c0", &Resources::default());
        assert_eq!(plain.dirs.keys().collect::<Vec<_>>(), ["devices", "memory"], "no cpuset");
        let cg = h.locate("/boxr", "c1", &r);
        assert_eq!(cg.dirs["memory"], root.join("memory/boxr/c1"));
        h.create(&cg, &r).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("memory/boxr/c1/memory.limit_in_bytes")).unwrap(),
            "16777216"
        );
        assert_eq!(fs::read_to_string(root.join("cpuset/boxr/cpuset.mems")).unwrap(), "0");
        assert_eq!(fs::read_to_string(root.join("cpuset/boxr/c1/cpuset.cpus")).unwrap(), "1");
        assert_eq!(cg.memory_limit(), Some(16 << 20));
        // "a" denied, then every allow rule, one write each through one open file (which a
        // plain file concatenates).
        assert_eq!(fs::read_to_string(root.join("devices/boxr/c1/devices.deny")).unwrap(), "a");
        assert_eq!(
            fs::read_to_string(root.join("devices/boxr/c1/devices.allow")).unwrap(),
            devices::v1_allow_rules().collect::<String>()
        );
        let pids = Resources { pids_limit: Some(5), ..Resources::default() };
        let c2 = h.locate("/boxr", "c2", &pids);
        let err = h.create(&c2, &pids).unwrap_err();
        assert!(err.to_string().contains("needs the pids cgroup controller"), "{err}");
        assert!(!root.join("memory/boxr/c2").exists(), "a failed create leaves its dirs behind");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn v1_without_the_devices_controller_runs_no_container() {
        let root = std::env::temp_dir().join(format!("boxr-cgroup-nodev-{}", std::process::id()));
        fs::create_dir_all(root.join("memory")).unwrap();
        let mounts = BTreeMap::from([("memory".to_string(), (root.join("memory"), "/".into()))]);
        let h = Hierarchies { version: Version::V1, mounts };
        let none = Resources::default();
        let err = h.create(&h.locate("/boxr", "c1", &none), &none).unwrap_err();
        assert!(err.to_string().contains("needs the devices cgroup controller"), "{err}");
        assert!(!root.join("memory/boxr").exists(), "a failed create leaves its dirs behind");
        fs::remove_dir_all(&root).unwrap();
    }
}
