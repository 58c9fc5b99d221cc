//! Container state: one directory per container under the state root (default `/run/boxr`),
//! holding `state.json`. Writes are atomic (write a temporary file, rename it over the old one)
//! and every read-modify-write holds the container's lock, so concurrent boxr commands never see
//! or make a torn state. A name is claimed atomically by a symlink in `<root>/names/`.

use crate::cgroups::ContainerCgroup;
use crate::config::Namespace;
use crate::errno::describe;
use crate::network::Attachment;
use crate::security::SecurityContext;
use crate::time::Timestamp;
use crate::userns::IdMaps;
use anyhow::{Result, anyhow, bail};
use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/run/boxr";

/// The state root when `--root` is not given: [`DEFAULT_ROOT`] for root; for another user
/// (rootless) `$XDG_RUNTIME_DIR/boxr`, else `/run/user/UID/boxr` if that directory is the
/// user's, else `/tmp/boxr-UID`.
pub fn default_root() -> PathBuf {
    let uid = rustix::process::geteuid();
    if uid.is_root() {
        return PathBuf::from(DEFAULT_ROOT);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("boxr");
    }
    let run_user = PathBuf::from(format!("/run/user/{}", uid.as_raw()));
    match fs::metadata(&run_user) {
        Ok(m) if m.is_dir() && m.uid() == uid.as_raw() => run_user.join("boxr"),
        _ => PathBuf::from(format!("/tmp/boxr-{}", uid.as_raw())),
    }
}
const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "lock";
/// The directory of name links: `names/<name>` → the container's id.
const NAMES_DIR: &str = "names";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Registered, its init not started (or not yet confirmed running).
    Created,
    Running,
    Exited,
}

/// A process identified beyond its pid: the kernel's start time of the process (in clock ticks
/// since boot, field 22 of /proc/PID/stat), so that a recycled pid is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcessId {
    /// The identity of a live process, or `None` if there is no such process.
    pub fn of(pid: i32) -> Option<ProcessId> {
        proc_start_time(pid).map(|start_time| ProcessId { pid, start_time })
    }

    /// Whether this very process still runs: it exists, is not a zombie waiting for its
    /// reaper, and is not another process that got the same pid.
    pub fn is_alive(&self) -> bool {
        proc_stat(self.pid)
            .is_some_and(|(state, start)| start == self.start_time && !matches!(state, 'Z' | 'X'))
    }
}

/// The start time of `pid` from /proc/PID/stat.
fn proc_start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(_, start)| start)
}

/// The state (field 3) and start time (field 22) of `pid` from /proc/PID/stat.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses.
    let mut fields = stat[stat.rfind(')')? + 2..].split(' ');
    let state = fields.next()?.chars().next()?;
    Some((state, fields.nth(22 - 4)?.parse().ok()?))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub name: String,
    pub status: Status,
    /// The container's init, as seen from the host.
    pub init: Option<ProcessId>,
    /// The process that waits for the init and records its exit (boxr itself in the
    /// foreground, a detached monitor with `run -d`).
    pub monitor: Option<ProcessId>,
    pub created: Timestamp,
    pub started: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    pub exit_code: Option<i32>,
    /// The OOM killer killed a process of the container.
    #[serde(default)]
    pub oom_killed: bool,
    /// Why the container stopped other than by its workload exiting, or failed to start.
    pub error: Option<String>,
    pub config: PathBuf,
    pub command: Vec<String>,
    /// The workload's environment and working directory, the defaults for `boxr exec`.
    pub env: Vec<String>,
    pub cwd: String,
    pub namespaces: Vec<Namespace>,
    /// The container's directory in the storage dir (writable layer, logs).
    pub storage: PathBuf,
    /// The container's cgroup, once created.
    pub cgroup: Option<ContainerCgroup>,
    pub detached: bool,
    pub auto_remove: bool,
    /// Its place on a bridge network (bridge mode), from its start until it is released.
    #[serde(default)]
    pub network: Option<Attachment>,
    /// The workload's security context, which `boxr exec` gives its processes too (absent in
    /// the state of a container started by a boxr before this was recorded).
    #[serde(default)]
    pub security: Option<SecurityContext>,
    /// The user namespace's maps, if it has one: a rootless container's storage is removed in a
    /// user namespace with them.
    #[serde(default)]
    pub id_maps: Option<IdMaps>,
}

impl ContainerState {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// The status with the exit code, as `ps` shows it.
    pub fn status_text(&self) -> String {
        match (self.status, self.exit_code) {
            (Status::Exited, Some(code)) if self.oom_killed => {
                format!("exited ({code}, out of memory)")
            }
            (Status::Exited, Some(code)) => format!("exited ({code})"),
            (Status::Exited, None) => "exited (unknown)".to_string(),
            (Status::Running, _) => "running".to_string(),
            (Status::Created, _) => "created".to_string(),
        }
    }
}

#[cfg(test)]
impl ContainerState {
    /// A created container with everything else empty, for tests.
    pub(crate) fn for_test(id: String, name: String) -> ContainerState {
        ContainerState {
            id,
            name,
            status: Status::Created,
            init: None,
            monitor: None,
            created: Timestamp::now(),
            started: None,
            finished: None,
            exit_code: None,
            oom_killed: false,
            error: None,
            config: "c.toml".into(),
            command: vec!["/bin/true".into()],
            env: vec![],
            cwd: "/".into(),
            namespaces: vec![Namespace::Mount],
            storage: "/tmp".into(),
            cgroup: None,
            detached: false,
            auto_remove: false,
            network: None,
            security: None,
            id_maps: None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        })
    }
}

/// The state root directory: `<root>/<id>/` per container, `<root>/names/` for names.
pub struct Store {
    root: PathBuf,
}

/// An exclusive `flock` held until dropped.
pub struct Lock {
    /// Held for its drop, which closes the file and so releases the lock.
    _file: File,
}

pub(crate) fn lock(path: &Path) -> Result<Lock> {
    let file =
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| anyhow!("cannot open lock file {}: {}", path.display(), describe(&e)))?;
    rustix::fs::flock(&file, FlockOperation::LockExclusive)
        .map_err(|e| anyhow!("cannot lock {}: {}", path.display(), describe(&e.into())))?;
    Ok(Lock { _file: file })
}

impl Store {
    /// Opens the state root, creating it (mode 0700) if needed.
    pub fn open(root: &Path) -> Result<Store> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(root).map_err(|e| {
            anyhow!("cannot create the state directory {}: {}", root.display(), describe(&e))
        })?;
        // Someone else's directory (made in /tmp before boxr got to it, say) could feed boxr
        // forged state: refuse it.
        let meta = fs::symlink_metadata(root).map_err(|e| {
            anyhow!("cannot inspect the state directory {}: {}", root.display(), describe(&e))
        })?;
        let uid = rustix::process::geteuid().as_raw();
        if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
            bail!(
                "the state directory {} is not a directory of yours that only you can write (owner {}, mode {:o}); remove it or give another with --root",
                root.display(),
                meta.uid(),
                meta.mode() & 0o7777
            );
        }
        Ok(Store { root: root.to_path_buf() })
    }

    /// The state root directory: `<root>/<id>/` per container, `<root>/names/` for names.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Registers a new container: writes its first state, then claims its name (generating one
    /// if `None`). `make` gets the new id and name.
    ///
    /// A name is claimed by creating the symlink `names/<name>` → id, which only one process can
    /// do: concurrent creations need no common lock, and cost the same with 1 or 1000
    /// containers. The state is written first and the link removed first (see
    /// [`Store::remove`]), so a name link always leads to a state.
    pub fn create(
        &self,
        name: Option<&str>,
        make: impl FnOnce(String, String) -> ContainerState,
    ) -> Result<ContainerState> {
        if let Some(name) = name {
            check_name(name)?;
        }
        let names = self.root.join(NAMES_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&names)
            .map_err(|e| anyhow!("cannot create {}: {}", names.display(), describe(&e)))?;
        let id = random_id()?;
        let dir = self.dir(&id);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| anyhow!("cannot create {}: {}", dir.display(), describe(&e)))?;
        let mut state = make(id.clone(), String::new());
        let candidates: Box<dyn Iterator<Item = String>> = match name {
            Some(name) => Box::new(std::iter::once(name.to_string())),
            None => Box::new(name_candidates()),
        };
        let mut claimed = Err(anyhow!("no name to claim"));
        for candidate in candidates {
            state.name = candidate;
            claimed = self.write(&state).and_then(|()| self.claim(&state.name, &id));
            // A taken given name is an error; a taken generated one means trying the next.
            if claimed.is_ok() || name.is_some() {
                break;
            }
        }
        if let Err(e) = claimed {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(state)
    }

    /// Claims `name` for container `id`; fails, naming the container that has it, if taken.
    fn claim(&self, name: &str, id: &str) -> Result<()> {
        let link = self.root.join(NAMES_DIR).join(name);
        match std::os::unix::fs::symlink(id, &link) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let other = self.by_name(name);
                let (short, status) =
                    other.as_ref().map_or(("?", "being removed".to_string()), |o| {
                        (o.short_id(), o.status_text())
                    });
                bail!(
                    "the name {name:?} is taken by container {short} ({status}): remove it with `boxr rm {name}` or choose another --name"
                )
            }
            Err(e) => {
                bail!("cannot claim the name {name:?} ({}): {}", link.display(), describe(&e))
            }
        }
    }

    /// The container holding `name`, if any.
    fn by_name(&self, name: &str) -> Option<ContainerState> {
        let id = fs::read_link(self.root.join(NAMES_DIR).join(name)).ok()?;
        read_state(&self.dir(id.to_str()?).join(STATE_FILE)).ok().flatten()
    }

    /// All containers, in creation order.
    pub fn list(&self) -> Result<Vec<ContainerState>> {
        let entries = fs::read_dir(&self.root).map_err(|e| {
            anyhow!("cannot read the state directory {}: {}", self.root.display(), describe(&e))
        })?;
        let mut states = Vec::new();
        for entry in entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
            let path = entry.path().join(STATE_FILE);
            // A directory without a state file is a container being created or removed.
            if let Some(state) = read_state(&path)? {
                states.push(state);
            }
        }
        states.sort_by_key(|s| s.created);
        Ok(states)
    }

    /// Finds a container by name, full id, or unique id prefix.
    pub fn find(&self, key: &str) -> Result<ContainerState> {
        if let Some(state) = self.by_name(key) {
            return Ok(state);
        }
        let entries = fs::read_dir(&self.root).map_err(|e| {
            anyhow!("cannot read the state directory {}: {}", self.root.display(), describe(&e))
        })?;
        let ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| id.len() == 64 && (id == key || (key.len() >= 3 && id.starts_with(key))))
            .collect();
        match ids.as_slice() {
            [id] => self
                .load(id)
                .map_err(|_| anyhow!("no such container: {key} (`boxr ps -a` lists them)")),
            [] => bail!("no such container: {key} (`boxr ps -a` lists them)"),
            _ => bail!("{key} matches {} containers: give more of the id, or the name", ids.len()),
        }
    }

    /// Locks a container's state for a read-modify-write.
    pub fn lock(&self, id: &str) -> Result<Lock> {
        lock(&self.dir(id).join(LOCK_FILE))
    }

    /// Re-reads a container's state (the caller holds its lock).
    pub fn load(&self, id: &str) -> Result<ContainerState> {
        read_state(&self.dir(id).join(STATE_FILE))?
            .ok_or_else(|| anyhow!("no such container: {id}"))
    }

    /// Applies `change` to the container's current state under its lock.
    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut ContainerState),
    ) -> Result<ContainerState> {
        let _lock = self.lock(id)?;
        let mut state = self.load(id)?;
        change(&mut state);
        self.write(&state)?;
        Ok(state)
    }

    /// Writes a state atomically.
    fn write(&self, state: &ContainerState) -> Result<()> {
        write_json_atomically(&self.dir(&state.id).join(STATE_FILE), state)
    }

    /// Deletes a container's state directory (the caller holds its lock).
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        // The name first (a name link always leads to a state), then the state file, so that a
        // half-removed directory is not listed.
        if let Ok(Some(state)) = read_state(&dir.join(STATE_FILE)) {
            let link = self.root.join(NAMES_DIR).join(&state.name);
            if fs::read_link(&link).is_ok_and(|target| target.as_os_str() == id) {
                fs::remove_file(&link)
                    .map_err(|e| anyhow!("cannot remove {}: {}", link.display(), describe(&e)))?;
            }
        }
        match fs::remove_file(dir.join(STATE_FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("cannot remove {}: {}", dir.display(), describe(&e)),
        }
        fs::remove_dir_all(&dir)
            .map_err(|e| anyhow!("cannot remove {}: {}", dir.display(), describe(&e)))
    }
}

/// Writes `value` as JSON to `path` (mode 0600) so that readers see the old or the new file,
/// never a torn one: into `<path>.tmp`, then renamed over `path`.
pub(crate) fn write_json_atomically(path: &Path, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_vec_pretty(value)
        .map_err(|e| anyhow!("cannot serialise {}: {e}", path.display()))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let write = || -> std::io::Result<()> {
        let mut f =
            OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&tmp)?;
        f.write_all(&json)?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| anyhow!("cannot write {}: {}", path.display(), describe(&e)))
}

fn read_state(path: &Path) -> Result<Option<ContainerState>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!("cannot read {}: {}", path.display(), describe(&e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        anyhow!("{} is corrupt ({e}): remove its directory to forget the container", path.display())
    })
}

/// Container names: like docker's, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128 characters.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        bail!(
            "invalid container name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
        );
    }
    Ok(())
}

fn random_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        filled +=
            rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty())
                .map_err(|e| {
                    anyhow!("cannot get random bytes for an id: {}", describe(&e.into()))
                })?;
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

const ADJECTIVES: [&str; 16] = [
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "proud", "quiet", "swift", "tidy", "witty",
];
const NOUNS: [&str; 16] = [
    "otter", "falcon", "badger", "heron", "lynx", "marten", "newt", "orca", "panda", "quail",
    "raven", "stoat", "tapir", "vole", "wombat", "yak",
];

/// `adjective_noun` names from a time-seeded start, with a number appended once the plain
/// pairs run out: endless.
fn name_candidates() -> impl Iterator<Item = String> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let pairs = ADJECTIVES.len() * NOUNS.len();
    (0..).map(move |n: usize| {
        let i = (seed as usize).wrapping_add(n) % pairs;
        let base = format!("{}_{}", ADJECTIVES[i / NOUNS.len()], NOUNS[i % NOUNS.len()]);
        if n < pairs { base } else { format!("{base}{}", n / pairs) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("boxr-state-test-{}", random_id().unwrap()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn create_find_update_remove() {
        let dir = scratch();
        let store = Store::open(&dir).unwrap();
        let a = store.create(Some("web"), ContainerState::for_test).unwrap();
        assert_eq!(a.id.len(), 64);
        let b = store.create(None, ContainerState::for_test).unwrap();
        assert!(b.name.contains('_'), "{}", b.name);
        let err = store.create(Some("web"), ContainerState::for_test).unwrap_err().to_string();
        assert!(
            err.contains("the name \"web\" is taken by container") && err.contains("(created)"),
            "{err}"
        );
        assert_eq!(store.find("web").unwrap().id, a.id);
        assert_eq!(store.find(&a.id[..8]).unwrap().name, "web");
        assert!(store.find("nope").unwrap_err().to_string().contains("no such container: nope"));
        let updated = store
            .update(&a.id, |s| {
                s.status = Status::Exited;
                s.exit_code = Some(3);
            })
            .unwrap();
        assert_eq!(updated.status_text(), "exited (3)");
        assert_eq!(store.find("web").unwrap(), updated);
        assert_eq!(store.list().unwrap().len(), 2);
        store.remove(&a.id).unwrap();
        assert_eq!(store.list().unwrap().len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("web-1.a_b").is_ok());
        for bad in ["", "-x", "a b", "a/b", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_names_are_distinct_and_endless() {
        let names: Vec<String> =
            name_candidates().take(ADJECTIVES.len() * NOUNS.len() + 1).collect();
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.last().unwrap().ends_with('1'), "{names:?}");
    }

    #[test]
    fn concurrent_creates_never_share_a_name() {
        let dir = scratch();
        let store = Store::open(&dir).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let store = Store::open(&dir).unwrap();
                    (
                        store.create(Some("same"), ContainerState::for_test).is_ok(),
                        store.create(None, ContainerState::for_test).unwrap().name,
                    )
                })
            })
            .collect();
        let results: Vec<(bool, String)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|(won, _)| *won).count(),
            1,
            "exactly one claims \"same\""
        );
        let generated: std::collections::HashSet<&String> =
            results.iter().map(|(_, n)| n).collect();
        assert_eq!(generated.len(), 8, "generated names collide: {results:?}");
        assert_eq!(store.list().unwrap().len(), 9);
        let same = store.find("same").unwrap();
        store.remove(&same.id).unwrap();
        assert!(store.find("same").is_err());
        store.create(Some("same"), ContainerState::for_test).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn process_identity_detects_recycling() {
        let me = ProcessId::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        assert!(!ProcessId { start_time: me.start_time + 1, ..me }.is_alive());
        assert_eq!(ProcessId::of(i32::MAX), None);
    }

    #[test]
    fn a_zombie_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let id = ProcessId::of(pid).expect("the child exists until it is reaped");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while proc_stat(pid).is_some_and(|(state, _)| state != 'Z')
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(proc_stat(pid).map(|(state, _)| state), Some('Z'));
        assert!(!id.is_alive());
        child.wait().unwrap();
    }
}
