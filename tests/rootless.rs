//! boxr run by an unprivileged user (rootless): containers in a user namespace whose root is the
//! user (plus its /etc/subuid range through newuidmap when it has one), state and storage in the
//! user's own directories, no cgroups and no bridge, and nothing left behind — for users this
//! test creates and deletes.

use boxr_tests::{Output, Scratch};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// useradd and userdel lock /etc/passwd: one at a time within this test binary.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// A user created for one test, with boxr, boxr-init and a rootfs of its own in a scratch
/// directory it can reach; deleted (with its state directory) on drop.
struct User {
    name: String,
    uid: u32,
    gid: u32,
    scratch: Scratch,
}

impl User {
    /// `useradd`: a regular user gets a subordinate id range; a system user (`-r`) does not.
    fn create(with_subordinate_ids: bool) -> User {
        let name = format!("bxr{}", &boxr_tests::unique()[..12]);
        {
            let _lock = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
            let mut useradd = Command::new("useradd");
            useradd.args(["-M", "-s", "/usr/sbin/nologin"]);
            if !with_subordinate_ids {
                useradd.arg("-r");
            }
            let status = useradd.arg(&name).status().expect("run useradd");
            assert!(status.success(), "useradd {name}: {status}");
        }
        let (uid, gid) = (id(&["-u", &name]), id(&["-g", &name]));
        let user = User { name, uid, gid, scratch: Scratch::new("rootless") };
        if with_subordinate_ids && user.subordinate("/etc/subuid").is_none() {
            // A login.defs without SUB_UID_COUNT: give it a range by hand.
            let range =
                format!("{0}-{1}", 3_000_000 + uid * 65536, 3_000_000 + uid * 65536 + 65535);
            let _lock = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
            let status = Command::new("usermod")
                .args(["--add-subuids", &range, "--add-subgids", &range, &user.name])
                .status()
                .expect("run usermod");
            assert!(status.success(), "usermod {}: {status}", user.name);
        }
        assert_eq!(user.subordinate("/etc/subuid").is_some(), with_subordinate_ids);
        // Everything the user runs lives where it can reach it: the repository may not be.
        for binary in ["boxr", "boxr-init"] {
            let from = boxr_tests::boxr_bin().with_file_name(binary);
            fs::copy(&from, user.scratch.path().join(binary))
                .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
        // A rootless rootfs belongs to its user (its files then show as root's inside).
        let rootfs = user.scratch.private_rootfs();
        fs::create_dir(user.home()).expect("create home");
        let owner = format!("{0}:{1}", user.uid, user.gid);
        for path in [&rootfs, &user.home()] {
            let chown = Command::new("chown").args(["-R", "-h", &owner]).arg(path).status();
            assert!(chown.expect("run chown").success());
        }
        user
    }

    fn home(&self) -> PathBuf {
        self.scratch.path().join("home")
    }

    /// The user's first range in `/etc/subuid` or `/etc/subgid`: (start, count).
    fn subordinate(&self, file: &str) -> Option<(u32, u32)> {
        let text = fs::read_to_string(file).unwrap_or_default();
        text.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() != 3 || f[0] != self.name {
                return None;
            }
            Some((f[1].parse().ok()?, f[2].parse().ok()?))
        })
    }

    /// Writes a config (rootfs = the user's copy) and returns its path.
    fn config(&self, body: &str) -> PathBuf {
        let path = self.scratch.write("config.toml", &format!("rootfs = \"rootfs\"\n{body}"));
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        path
    }

    /// `boxr ARGS` as the user, with a clean environment (no XDG_RUNTIME_DIR: the state goes
    /// to /tmp/boxr-UID; storage to ~/.local/share/boxr).
    fn boxr(&self, args: &[&str]) -> Output {
        let (uid, gid) = (self.uid.to_string(), self.gid.to_string());
        let out = Command::new("setpriv")
            .args(["--reuid", &uid, "--regid", &gid, "--clear-groups", "env", "-i"])
            .arg(format!("HOME={}", self.home().display()))
            .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
            .arg(format!("BOXR_INIT={}", self.scratch.path().join("boxr-init").display()))
            .arg(self.scratch.path().join("boxr"))
            .args(args)
            .current_dir(self.scratch.path())
            .stdin(Stdio::null())
            .output()
            .expect("run setpriv");
        Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn state_root(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/boxr-{}", self.uid))
    }

    fn storage(&self) -> PathBuf {
        self.home().join(".local/share/boxr")
    }

    /// No container state and no container storage left.
    #[track_caller]
    fn assert_nothing_left(&self) {
        let entries = |dir: &Path, skip: &str| -> Vec<String> {
            fs::read_dir(dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n != skip)
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(entries(&self.state_root(), "names"), Vec::<String>::new(), "state left");
        assert_eq!(entries(&self.storage(), ""), Vec::<String>::new(), "storage left");
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let ids: Vec<String> = fs::read_dir(self.state_root())
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        for id in ids.iter().filter(|id| *id != "names") {
            let _ = self.boxr(&["rm", "-f", id]);
        }
        let _ = fs::remove_dir_all(self.state_root());
        let _lock = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

fn id(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().expect("run id");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a numeric id")
}

/// The lines of an id map file, whitespace-normalised.
fn map_lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
}

const PROBE: &str = "[process]\nargs = [\"/bin/sh\", \"-c\", \"cat /proc/self/uid_map; \
    cat /proc/self/gid_map; id -u; echo written > /etc/new && cat /etc/new; hostname; \
    ip link show lo | grep -o UP | head -1; cat /proc/1/comm\"]\n";

#[test]
fn a_user_with_subordinate_ids_maps_them_through_newuidmap() {
    let user = User::create(true);
    let (uid_start, uid_count) = user.subordinate("/etc/subuid").unwrap();
    let (gid_start, gid_count) = user.subordinate("/etc/subgid").unwrap();
    let config = user.config(&format!("hostname = \"rootless\"\n{PROBE}"));
    let out = user.boxr(&["run", "--rm", "--config", config.to_str().unwrap()]);
    let gid = user.gid;
    assert_eq!(
        map_lines(out.ok()),
        [
            format!("0 {} 1", user.uid),
            format!("1 {uid_start} {uid_count}"),
            format!("0 {gid} 1"),
            format!("1 {gid_start} {gid_count}"),
            "0".into(),
            "written".into(),
            "rootless".into(),
            "UP".into(),
            "boxr-init".into(),
        ],
        "\n{out}"
    );
    // The rootfs is the user's and unchanged: the write went to the container's own layer.
    assert!(!user.scratch.path().join("rootfs/etc/new").exists());
    assert_eq!(fs::metadata(user.state_root()).unwrap().uid(), user.uid);
    user.assert_nothing_left();
}

#[test]
fn a_user_without_subordinate_ids_maps_only_itself() {
    let user = User::create(false);
    let config = user.config(PROBE);
    let out = user.boxr(&["run", "--rm", "--config", config.to_str().unwrap()]);
    let gid = user.gid;
    let lines = map_lines(out.ok());
    assert_eq!(lines[..3], [format!("0 {} 1", user.uid), format!("0 {gid} 1"), "0".into()]);
    assert_eq!(lines[3], "written", "\n{out}");
    user.assert_nothing_left();
}

#[test]
fn the_lifecycle_works_and_files_of_other_container_users_are_removed() {
    let user = User::create(true);
    // Files of a container user other than root are the user's subordinate ids on the host,
    // which the user itself cannot delete: rm must.
    let script = "mkdir -p /home/app && touch /home/app/data && chown -R 1000:1000 /home/app \
                  && chmod 700 /home/app && echo ready && exec sleep 600";
    let config = user.config(&format!("[process]\nargs = [\"/bin/sh\", \"-c\", {:?}]\n", script));
    let id = boxr_tests::containers::printed_id(&user.boxr(&[
        "run",
        "-d",
        "--name",
        "app",
        "--config",
        config.to_str().unwrap(),
    ]));
    assert!(
        boxr_tests::wait_until(boxr_tests::RUN_TIMEOUT, || user
            .boxr(&["logs", "app"])
            .stdout
            .contains("ready")),
        "the container never got ready: {}",
        user.boxr(&["logs", "app"])
    );
    assert!(user.boxr(&["ps"]).ok().contains("app"));
    let out = user.boxr(&["exec", "app", "--", "stat", "-c", "%u:%g", "/home/app/data"]);
    assert_eq!(out.ok(), "1000:1000\n");
    let (start, _) = user.subordinate("/etc/subuid").unwrap();
    let data = user.storage().join(&id).join("upper/home/app");
    assert_eq!(fs::metadata(&data).unwrap().uid(), start + 999, "uid 1000 is subuid #999");
    user.boxr(&["stop", "-t", "1", "app"]).ok();
    user.boxr(&["rm", "app"]).ok();
    user.assert_nothing_left();
}

#[test]
fn what_needs_root_is_refused_up_front() {
    let user = User::create(false);
    for (body, needle) in [
        ("[resources]\nmemory = \"64m\"\n", "config.toml:2:1: resource limits need cgroups"),
        ("[network]\nmode = \"bridge\"\n", "config.toml:2:1: bridge networking needs root"),
        ("cgroup_parent = \"/mine\"\n", "config.toml:2:17: cgroup_parent: boxr run by a user"),
        (
            "namespaces = [\"mount\", \"net\"]\n",
            "config.toml:2:14: namespaces must include \"pid\": boxr run without root",
        ),
        (
            "uid_map = [\"0:0:1\"]\ngid_map = [\"0:0:1\"]\nidmapped_rootfs = true\n",
            "config.toml:4:19: idmapped_rootfs: only root",
        ),
    ] {
        let config = user.config(&format!("{body}[process]\nargs = [\"/bin/true\"]\n"));
        let out = user.boxr(&["run", "--config", config.to_str().unwrap()]);
        let line = out.expect_boxr_error();
        assert!(line.contains(needle), "{body}: {line}");
    }
    let out =
        user.boxr(&["run", "--memory", "64m", "--config", user.config(PROBE).to_str().unwrap()]);
    assert!(out.expect_boxr_error().contains("resource limits need cgroups"), "\n{out}");
    // A map the user has no right to is refused by the kernel, and nothing is left.
    let config = user.config(
        "uid_map = [\"0:0:1\"]\ngid_map = [\"0:0:1\"]\n[process]\nargs = [\"/bin/true\"]\n",
    );
    let out = user.boxr(&["run", "--config", config.to_str().unwrap()]);
    assert!(out.expect_boxr_error().contains("newuidmap refused the map 0 0 1"), "\n{out}");
    user.assert_nothing_left();
}
