//! Compiles a checked [`Config`] into the plan boxr-init executes: the clone flags, the process,
//! and the ordered setup steps. All policy lives here (which filesystems, which options, device
//! nodes or binds in a user namespace); the init only carries the steps out.

use crate::config::{Config, MountKind, Namespace};
use crate::userns::{IdMaps, to_host};
use crate::{seccomp, security};
use boxr_plan::{Groups, ProcessContext, Rlimits, Step, flags, ms};
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// The character devices every container gets in its /dev: (name, major, minor).
const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// `S_IFCHR | 0666`.
const CHAR_DEVICE_MODE: u32 = 0o020_666;
/// The `tty` group, which owns the terminals of devpts.
const TTY_GID: u32 = 5;

/// How the container's root filesystem is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsLayer {
    /// The rootfs itself, bound onto itself: writes go to the rootfs directory.
    Bind,
    /// An overlay with the rootfs as the read-only lower layer and a writable layer of the
    /// container's own (`upper` and `work` on one filesystem), mounted on `merged`.
    Overlay { upper: PathBuf, work: PathBuf, merged: PathBuf },
}

/// A file boxr wrote for the container (its `/etc/hosts`, …), bound read-only over the rootfs's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// On the host, in the container's storage directory.
    pub source: PathBuf,
    /// In the rootfs, resolved through its symlinks.
    pub target: String,
}

/// Everything needed to start one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `CLONE_NEW*` flags for the init.
    pub clone_flags: u64,
    /// The maps of the init's new user namespace, if it gets one (written before the plan is
    /// sent).
    pub id_maps: Option<IdMaps>,
    /// The rootfs to idmap with the user namespace and hand to the init for its
    /// [`Step::AttachRootfs`].
    pub idmapped_rootfs: Option<PathBuf>,
    /// [`boxr_plan::flags`].
    pub init_flags: u8,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    /// The workload's security context.
    pub context: ProcessContext,
    /// The workload's seccomp filter; empty: none.
    pub seccomp: Vec<seccomp::Instruction>,
    pub steps: Vec<Step<CString>>,
}

impl Plan {
    /// Makes the init wait, once its filesystem is set up, for the frontend to have moved it
    /// into the container's cgroup and configured its network (both done while the init sets
    /// up, see `spawn`); before it enters a cgroup namespace, which must be rooted there.
    pub fn await_frontend(&mut self) {
        let at = match self.steps.last() {
            Some(Step::UnshareCgroupNamespace) => self.steps.len() - 1,
            _ => self.steps.len(),
        };
        self.steps.insert(at, Step::AwaitFrontend);
    }

    /// Whether the init waits for the frontend ([`Plan::await_frontend`]).
    pub fn awaits_frontend(&self) -> bool {
        self.steps.contains(&Step::AwaitFrontend)
    }

    /// The wire form boxr-init reads.
    pub fn encode(&self) -> Result<Vec<u8>, boxr_plan::EncodeError> {
        boxr_plan::encode(
            self.init_flags,
            &self.args,
            &self.env,
            &self.context,
            &self.seccomp,
            &self.steps,
        )
    }
}

/// The `CLONE_NEW*` flag of a namespace.
pub fn clone_flag(ns: Namespace) -> u64 {
    let flag = match ns {
        Namespace::Pid => libc::CLONE_NEWPID,
        Namespace::Mount => libc::CLONE_NEWNS,
        Namespace::Uts => libc::CLONE_NEWUTS,
        Namespace::Ipc => libc::CLONE_NEWIPC,
        Namespace::Net => libc::CLONE_NEWNET,
        Namespace::User => libc::CLONE_NEWUSER,
        Namespace::Cgroup => libc::CLONE_NEWCGROUP,
    };
    flag as u64
}

/// A C string from a config value; the config checker has refused NUL characters.
fn c(s: impl Into<Vec<u8>>) -> CString {
    CString::new(s).expect("config values were checked for NUL characters")
}

fn path(p: &Path) -> CString {
    c(p.as_os_str().as_encoded_bytes())
}

/// Builds the plan for `config`, with its root filesystem mounted as `layer` says and the
/// `generated` files bound over the rootfs's.
pub fn compile(config: &Config, layer: &RootfsLayer, generated: &[GeneratedFile]) -> Plan {
    let user_namespace = config.user_namespace.as_ref();
    let mut b = Builder {
        steps: Vec::with_capacity(32),
        user_namespace: user_namespace.is_some(),
        tty_group: user_namespace.is_none_or(|ns| to_host(&ns.maps.gid, TTY_GID).is_some()),
    };
    let idmapped_rootfs =
        user_namespace.filter(|ns| ns.idmapped_rootfs).map(|_| config.rootfs.clone());
    if config.has(Namespace::Net) {
        b.steps.push(Step::BringUpLoopback);
    }
    b.steps.push(Step::MakeMountsPrivate);
    if idmapped_rootfs.is_some() {
        b.steps.push(Step::AttachRootfs { target: path(&config.rootfs) });
    }
    b.steps.extend(match layer {
        // The attached idmapped rootfs is the mount itself.
        RootfsLayer::Bind if idmapped_rootfs.is_some() => None,
        RootfsLayer::Bind => Some(Step::MountRootfs {
            source: path(&config.rootfs),
            target: path(&config.rootfs),
            fstype: c(""),
            flags: ms::BIND | ms::REC,
            data: c(""),
        }),
        RootfsLayer::Overlay { upper, work, merged } => Some(Step::MountRootfs {
            source: c("overlay"),
            target: path(merged),
            fstype: c("overlay"),
            flags: 0,
            data: c(format!(
                "lowerdir={},upperdir={},workdir={}",
                config.rootfs.display(),
                upper.display(),
                work.display()
            )),
        }),
    });
    b.mount_proc();
    b.mount_sys(config.has(Namespace::Net));
    b.populate_dev(config.has(Namespace::Ipc));
    b.mount_config_mounts(config);
    for file in generated {
        b.steps.push(Step::Bind {
            source: path(&file.source),
            target: c(file.target.as_str()),
            flags: ms::RDONLY,
            file: true,
        });
    }
    b.steps.push(Step::PivotRoot);
    // In the container's own /proc, before anything of it is made read-only.
    b.steps.extend(
        config
            .sysctls
            .iter()
            .map(|(k, v)| Step::Sysctl { key: c(k.as_str()), value: c(v.as_str()) }),
    );
    // After the pivot: resolved in the container's own /proc and /sys, and masking files with
    // its /dev/null as the mounts above left it.
    b.steps.extend(config.masked_paths.iter().map(|p| Step::MaskPath { path: c(p.as_str()) }));
    b.steps
        .extend(config.readonly_paths.iter().map(|p| Step::ReadonlyPath { path: c(p.as_str()) }));
    if config.readonly_rootfs {
        b.steps.push(Step::RemountRootReadonly);
    }
    if let Some(name) = &config.hostname {
        b.steps.push(Step::SetHostname { name: c(name.as_str()) });
    }
    b.steps.push(Step::Chdir { path: c(config.process.cwd.as_str()) });
    // Last: the cgroup namespace is made once the init is in the container's cgroup (see
    // `Plan::await_frontend`), so that it is rooted there.
    if config.has(Namespace::Cgroup) {
        b.steps.push(Step::UnshareCgroupNamespace);
    }
    Plan {
        clone_flags: config
            .namespaces
            .iter()
            .filter(|&&ns| ns != Namespace::Cgroup)
            .map(|&ns| clone_flag(ns))
            .fold(0, |a, f| a | f),
        id_maps: user_namespace.map(|ns| ns.maps.clone()),
        idmapped_rootfs,
        init_flags: if config.has(Namespace::Pid) { 0 } else { flags::SUBREAPER },
        args: config.process.args.iter().map(|a| c(a.as_str())).collect(),
        env: config.process.env.iter().map(|e| c(e.as_str())).collect(),
        context: process_context(config),
        seccomp: config.process.seccomp.clone(),
        steps: b.steps,
    }
}

/// The workload's security context: its user and groups (supplementary groups are left alone
/// in a user namespace, where setgroups is denied), the capability sets for that user,
/// no_new_privs.
pub fn process_context(config: &Config) -> ProcessContext {
    let p = &config.process;
    let user = &p.user;
    ProcessContext {
        capabilities: security::capability_sets(p.capabilities, user.uid, p.added_capabilities),
        no_new_privs: p.no_new_privileges,
        uid: user.uid,
        gid: user.gid,
        groups: if config.user_namespace.as_ref().is_some_and(|ns| !ns.maps.allows_setgroups()) {
            None
        } else {
            // The config checker allows at most MAX_GROUPS.
            Groups::new(&user.groups)
        },
        // The config checker allows each resource once, soft at most hard.
        rlimits: Rlimits::new(&p.rlimits).unwrap_or_default(),
        oom_score_adj: p.oom_score_adj,
    }
}

struct Builder {
    steps: Vec<Step<CString>>,
    user_namespace: bool,
    /// Whether the `tty` group (5) exists in the container (is mapped, in a user namespace).
    tty_group: bool,
}

impl Builder {
    fn mount_fs(&mut self, fstype: &str, target: &str, flags: u32, data: &str, strict: bool) {
        self.steps.push(Step::MountFs {
            fstype: c(fstype),
            target: c(target),
            flags,
            data: c(data),
            strict,
        });
    }

    fn symlink(&mut self, to: &str, link: &str) {
        self.steps.push(Step::Symlink { to: c(to), link: c(link) });
    }

    fn mount_proc(&mut self) {
        self.mount_fs("proc", "/proc", ms::NOSUID | ms::NODEV | ms::NOEXEC, "", true);
    }

    /// A new sysfs shows the network namespace of its mounter, so it needs one the container
    /// owns: in a user namespace without a network namespace, bind the host's read-only instead.
    fn mount_sys(&mut self, own_net: bool) {
        let flags = ms::RDONLY | ms::NOSUID | ms::NODEV | ms::NOEXEC;
        if self.user_namespace && !own_net {
            self.steps.push(Step::Bind {
                source: c("/sys"),
                target: c("/sys"),
                flags: flags | ms::REC,
                file: false,
            });
        } else {
            self.mount_fs("sysfs", "/sys", flags, "", true);
        }
    }

    /// tmpfs /dev with the standard devices, devpts, shm, mqueue and the fd symlinks.
    fn populate_dev(&mut self, own_ipc: bool) {
        self.mount_fs("tmpfs", "/dev", ms::NOSUID | ms::STRICTATIME, "mode=755,size=65536k", true);
        for (name, major, minor) in DEVICES {
            let target = c(format!("/dev/{name}"));
            // mknod is refused in a user namespace: bind the host's node instead.
            self.steps.push(if self.user_namespace {
                Step::Bind { source: target.clone(), target, flags: 0, file: true }
            } else {
                Step::Mknod { target, mode: CHAR_DEVICE_MODE, major, minor }
            });
        }
        let pts = if self.tty_group {
            "newinstance,ptmxmode=0666,mode=0620,gid=5"
        } else {
            "newinstance,ptmxmode=0666,mode=0620"
        };
        self.mount_fs("devpts", "/dev/pts", ms::NOSUID | ms::NOEXEC, pts, true);
        self.symlink("pts/ptmx", "/dev/ptmx");
        self.mount_fs(
            "tmpfs",
            "/dev/shm",
            ms::NOSUID | ms::NODEV | ms::NOEXEC,
            "mode=1777,size=65536k",
            true,
        );
        // An mqueue instance belongs to the IPC namespace of its mounter.
        if own_ipc {
            self.mount_fs("mqueue", "/dev/mqueue", ms::NOSUID | ms::NODEV | ms::NOEXEC, "", true);
        }
        self.symlink("/proc/self/fd", "/dev/fd");
        for (n, name) in ["stdin", "stdout", "stderr"].iter().enumerate() {
            self.symlink(&format!("/proc/self/fd/{n}"), &format!("/dev/{name}"));
        }
    }

    /// The config's mounts, parents before children so that none is hidden by a later one.
    fn mount_config_mounts(&mut self, config: &Config) {
        let mut mounts: Vec<_> = config.mounts.iter().collect();
        mounts.sort_by_key(|m| m.target.matches('/').count());
        for m in mounts {
            let ro = if m.readonly { ms::RDONLY } else { 0 };
            match &m.kind {
                MountKind::Bind { source, file } => self.steps.push(Step::Bind {
                    source: path(source),
                    target: c(m.target.as_str()),
                    flags: ms::REC | ro,
                    file: *file,
                }),
                MountKind::Tmpfs { size } => {
                    let data = match size {
                        Some(bytes) => format!("mode=1777,size={bytes}"),
                        None => "mode=1777".to_string(),
                    };
                    self.mount_fs("tmpfs", &m.target, ms::NOSUID | ms::NODEV | ro, &data, false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mount, Process};
    use std::path::PathBuf;

    fn config(namespaces: &[Namespace]) -> Config {
        Config {
            file: PathBuf::from("t.toml"),
            rootfs: PathBuf::from("/srv/rootfs"),
            hostname: Some("box".into()),
            namespaces: namespaces.to_vec(),
            readonly_rootfs: true,
            copy_on_write: false,
            cgroup_parent: "/boxr".into(),
            resources: Default::default(),
            network: crate::network::Settings {
                mode: crate::network::Mode::Host,
                bridge: "boxr0".into(),
                subnet: None,
                ports: vec![],
            },
            process: Process {
                args: vec!["/bin/sh".into()],
                env: vec!["PATH=/bin".into()],
                cwd: "/tmp".into(),
                capabilities: 0xa80425fb,
                added_capabilities: 0,
                no_new_privileges: true,
                user: crate::users::User {
                    uid: 1000,
                    gid: 100,
                    groups: vec![10],
                    home: "/home/u".into(),
                },
                seccomp: vec![(6, 0, 0, 0x7fff_0000)],
                rlimits: vec![boxr_plan::Rlimit { resource: 7, soft: 10, hard: 20 }],
                oom_score_adj: Some(300),
            },
            sysctls: vec![("kernel.shmmax".into(), "4096".into())],
            user_namespace: namespaces.contains(&Namespace::User).then(|| {
                let root = vec![crate::userns::IdRange { container: 0, host: 100000, size: 65536 }];
                crate::config::UserNamespace {
                    maps: IdMaps::new(root.clone(), root, 0, 0),
                    idmapped_rootfs: false,
                }
            }),
            mounts: vec![
                Mount {
                    destination: "/a/b".into(),
                    target: "/a/b".into(),
                    kind: MountKind::Tmpfs { size: Some(4096) },
                    readonly: false,
                },
                Mount {
                    destination: "/a".into(),
                    target: "/a".into(),
                    kind: MountKind::Bind { source: "/data".into(), file: false },
                    readonly: true,
                },
            ],
            masked_paths: vec!["/proc/kcore".into()],
            readonly_paths: vec!["/proc/sys".into()],
        }
    }

    fn targets(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .filter_map(|s| match s {
                Step::MountFs { target, .. }
                | Step::Bind { target, .. }
                | Step::Mknod { target, .. } => Some(target.to_str().unwrap().to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn clone_flags_follow_namespaces() {
        let plan = compile(
            &config(&[Namespace::Mount, Namespace::Pid, Namespace::Uts]),
            &RootfsLayer::Bind,
            &[],
        );
        assert_eq!(
            plan.clone_flags,
            (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS) as u64
        );
        assert_eq!(plan.init_flags, 0);
        let plan = compile(&config(&[Namespace::Mount, Namespace::Uts]), &RootfsLayer::Bind, &[]);
        assert_eq!(plan.init_flags, flags::SUBREAPER);
    }

    #[test]
    fn cgroup_namespace_is_made_by_the_init() {
        let plan =
            compile(&config(&[Namespace::Mount, Namespace::Cgroup]), &RootfsLayer::Bind, &[]);
        assert_eq!(plan.clone_flags, libc::CLONE_NEWNS as u64);
        assert_eq!(plan.steps.last(), Some(&Step::UnshareCgroupNamespace));
        let mut plan = plan;
        assert!(!plan.awaits_frontend());
        plan.await_frontend();
        assert!(plan.awaits_frontend());
        assert_eq!(
            plan.steps[plan.steps.len() - 2..],
            [Step::AwaitFrontend, Step::UnshareCgroupNamespace],
            "the init enters its cgroup namespace once it is in its cgroup"
        );
        let mut plan = compile(&config(&[Namespace::Mount]), &RootfsLayer::Bind, &[]);
        plan.await_frontend();
        assert_eq!(plan.steps.last(), Some(&Step::AwaitFrontend));
    }

    #[test]
    fn steps_run_in_container_order() {
        let plan = compile(
            &config(&[Namespace::Mount, Namespace::Pid, Namespace::Uts, Namespace::Ipc]),
            &RootfsLayer::Bind,
            &[],
        );
        assert_eq!(plan.steps[0], Step::MakeMountsPrivate);
        assert_eq!(
            plan.steps[1],
            Step::MountRootfs {
                source: c("/srv/rootfs"),
                target: c("/srv/rootfs"),
                fstype: c(""),
                flags: ms::BIND | ms::REC,
                data: c("")
            }
        );
        assert_eq!(
            targets(&plan),
            [
                "/proc",
                "/sys",
                "/dev",
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/a",
                "/a/b"
            ]
        );
        let tail = &plan.steps[plan.steps.len() - 7..];
        assert_eq!(
            tail,
            [
                Step::PivotRoot,
                Step::Sysctl { key: c("kernel.shmmax"), value: c("4096") },
                Step::MaskPath { path: c("/proc/kcore") },
                Step::ReadonlyPath { path: c("/proc/sys") },
                Step::RemountRootReadonly,
                Step::SetHostname { name: c("box") },
                Step::Chdir { path: c("/tmp") }
            ]
        );
        assert!(plan.steps.contains(&Step::Bind {
            source: c("/data"),
            target: c("/a"),
            flags: ms::REC | ms::RDONLY,
            file: false
        }));
        assert!(plan.steps.contains(&Step::MountFs {
            fstype: c("tmpfs"),
            target: c("/a/b"),
            flags: ms::NOSUID | ms::NODEV,
            data: c("mode=1777,size=4096"),
            strict: false
        }));
    }

    #[test]
    fn generated_files_are_bound_read_only_before_the_pivot() {
        let generated =
            [GeneratedFile { source: "/s/etc/hosts".into(), target: "/etc/hosts".into() }];
        let plan = compile(&config(&[Namespace::Mount]), &RootfsLayer::Bind, &generated);
        let pivot = plan.steps.iter().position(|s| *s == Step::PivotRoot).unwrap();
        assert_eq!(
            plan.steps[pivot - 1],
            Step::Bind {
                source: c("/s/etc/hosts"),
                target: c("/etc/hosts"),
                flags: ms::RDONLY,
                file: true
            }
        );
    }

    #[test]
    fn user_namespace_binds_devices_and_sys() {
        let plan = compile(
            &config(&[Namespace::Mount, Namespace::Pid, Namespace::User]),
            &RootfsLayer::Bind,
            &[],
        );
        assert!(plan.id_maps.is_some() && plan.idmapped_rootfs.is_none());
        assert!(!plan.steps.iter().any(|s| matches!(s, Step::Mknod { .. })));
        assert!(plan.steps.contains(&Step::Bind {
            source: c("/dev/null"),
            target: c("/dev/null"),
            flags: 0,
            file: true
        }));
        assert!(
            plan.steps
                .iter()
                .any(|s| matches!(s, Step::Bind { target, .. } if target.as_c_str() == c"/sys"))
        );
        assert!(!targets(&plan).contains(&"/dev/mqueue".to_string()));
    }

    #[test]
    fn an_idmapped_rootfs_is_attached_instead_of_bound() {
        let mut config = config(&[Namespace::Mount, Namespace::Net, Namespace::User]);
        config.user_namespace.as_mut().unwrap().idmapped_rootfs = true;
        let plan = compile(&config, &RootfsLayer::Bind, &[]);
        assert_eq!(plan.idmapped_rootfs.as_deref(), Some(Path::new("/srv/rootfs")));
        assert_eq!(
            plan.steps[..3],
            [
                Step::BringUpLoopback,
                Step::MakeMountsPrivate,
                Step::AttachRootfs { target: c("/srv/rootfs") }
            ]
        );
        assert!(!plan.steps.iter().any(|s| matches!(s, Step::MountRootfs { .. })));
        // gid 5 is mapped: devpts gives its terminals to the tty group.
        assert!(plan.steps.iter().any(|s| matches!(s, Step::MountFs { data, .. }
            if data.to_bytes().ends_with(b",gid=5"))));
    }
    #[test]
    fn overlay_rootfs_is_mounted_on_merged() {
        let layer = RootfsLayer::Overlay {
            upper: "/s/up".into(),
            work: "/s/work".into(),
            merged: "/s/m".into(),
        };
        let plan = compile(&config(&[Namespace::Mount]), &layer, &[]);
        assert_eq!(
            plan.steps[1],
            Step::MountRootfs {
                source: c("overlay"),
                target: c("/s/m"),
                fstype: c("overlay"),
                flags: 0,
                data: c("lowerdir=/srv/rootfs,upperdir=/s/up,workdir=/s/work")
            }
        );
    }

    #[test]
    fn plan_encodes_and_decodes() {
        let plan = compile(&config(&[Namespace::Mount, Namespace::Pid]), &RootfsLayer::Bind, &[]);
        let bytes = plan.encode().unwrap();
        let decoded = boxr_plan::Plan::parse(&bytes).unwrap();
        assert_eq!(decoded.steps().count(), plan.steps.len());
        assert_eq!(decoded.args.iter().collect::<Vec<_>>(), [c"/bin/sh"]);
        let context = decoded.context;
        let caps = context.capabilities;
        // A non-root user: the set bounds what it can gain, it has none itself.
        assert_eq!((caps.bounding, caps.permitted, caps.effective), (0xa80425fb, 0, 0));
        assert_eq!(caps.ambient, 0);
        assert!(context.no_new_privs);
        assert_eq!((context.uid, context.gid), (1000, 100));
        assert_eq!(context.groups.unwrap().as_slice(), [10]);
        assert_eq!(
            context.rlimits.as_slice(),
            [boxr_plan::Rlimit { resource: 7, soft: 10, hard: 20 }]
        );
        assert_eq!(context.oom_score_adj, Some(300));
        assert_eq!(decoded.seccomp.iter().collect::<Vec<_>>(), [(6, 0, 0, 0x7fff_0000)]);
        // Maps root wrote allow setgroups; a user's own-id map does not.
        let mut config = config(&[Namespace::Mount, Namespace::User]);
        let userns = compile(&config, &RootfsLayer::Bind, &[]);
        assert_eq!(userns.context.groups.unwrap().as_slice(), [10]);
        let own = vec![crate::userns::IdRange { container: 0, host: 1000, size: 1 }];
        config.user_namespace.as_mut().unwrap().maps = IdMaps::new(own.clone(), own, 1000, 1000);
        let userns = compile(&config, &RootfsLayer::Bind, &[]);
        assert_eq!(userns.context.groups, None);
    }
}
