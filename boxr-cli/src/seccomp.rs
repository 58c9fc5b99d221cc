//! The workload's seccomp filter: docker's default profile for x86_64, compiled here into a
//! classic BPF program that boxr-init installs last before the exec (and `boxr exec` before its
//! own). Syscalls outside the profile fail with `EPERM`; syscalls of another architecture (i386,
//! x32) too. A syscall that needs a capability the workload lacks is refused as well, as docker
//! does: `mount`, `unshare`, `setns`, … only with `CAP_SYS_ADMIN`, and so on.

/// One BPF instruction (`struct sock_filter`).
pub type Instruction = boxr_plan::BpfInstruction;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `__X32_SYSCALL_BIT`.
const X32_BIT: u32 = 0x4000_0000;
/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16;
const ARG0_HIGH: u32 = 20;

/// The syscalls docker's profile allows whatever the capabilities: (name, x86_64 number).
const ALLOWED: [(&str, u32); 298] = [
    ("read", 0),
    ("write", 1),
    ("open", 2),
    ("close", 3),
    ("stat", 4),
    ("fstat", 5),
    ("lstat", 6),
    ("poll", 7),
    ("lseek", 8),
    ("mmap", 9),
    ("mprotect", 10),
    ("munmap", 11),
    ("brk", 12),
    ("rt_sigaction", 13),
    ("rt_sigprocmask", 14),
    ("rt_sigreturn", 15),
    ("ioctl", 16),
    ("pread64", 17),
    ("pwrite64", 18),
    ("readv", 19),
    ("writev", 20),
    ("access", 21),
    ("pipe", 22),
    ("select", 23),
    ("sched_yield", 24),
    ("mremap", 25),
    ("msync", 26),
    ("mincore", 27),
    ("madvise", 28),
    ("shmget", 29),
    ("shmat", 30),
    ("shmctl", 31),
    ("dup", 32),
    ("dup2", 33),
    ("pause", 34),
    ("nanosleep", 35),
    ("getitimer", 36),
    ("alarm", 37),
    ("setitimer", 38),
    ("getpid", 39),
    ("sendfile", 40),
    ("connect", 42),
    ("accept", 43),
    ("sendto", 44),
    ("recvfrom", 45),
    ("sendmsg", 46),
    ("recvmsg", 47),
    ("shutdown", 48),
    ("bind", 49),
    ("listen", 50),
    ("getsockname", 51),
    ("getpeername", 52),
    ("socketpair", 53),
    ("setsockopt", 54),
    ("getsockopt", 55),
    ("fork", 57),
    ("vfork", 58),
    ("execve", 59),
    ("exit", 60),
    ("wait4", 61),
    ("kill", 62),
    ("uname", 63),
    ("semget", 64),
    ("semop", 65),
    ("semctl", 66),
    ("shmdt", 67),
    ("msgget", 68),
    ("msgsnd", 69),
    ("msgrcv", 70),
    ("msgctl", 71),
    ("fcntl", 72),
    ("flock", 73),
    ("fsync", 74),
    ("fdatasync", 75),
    ("truncate", 76),
    ("ftruncate", 77),
    ("getdents", 78),
    ("getcwd", 79),
    ("chdir", 80),
    ("fchdir", 81),
    ("rename", 82),
    ("mkdir", 83),
    ("rmdir", 84),
    ("creat", 85),
    ("link", 86),
    ("unlink", 87),
    ("symlink", 88),
    ("readlink", 89),
    ("chmod", 90),
    ("fchmod", 91),
    ("chown", 92),
    ("fchown", 93),
    ("lchown", 94),
    ("umask", 95),
    ("gettimeofday", 96),
    ("getrlimit", 97),
    ("getrusage", 98),
    ("sysinfo", 99),
    ("times", 100),
    ("ptrace", 101),
    ("getuid", 102),
    ("getgid", 104),
    ("setuid", 105),
    ("setgid", 106),
    ("geteuid", 107),
    ("getegid", 108),
    ("setpgid", 109),
    ("getppid", 110),
    ("getpgrp", 111),
    ("setsid", 112),
    ("setreuid", 113),
    ("setregid", 114),
    ("getgroups", 115),
    ("setgroups", 116),
    ("setresuid", 117),
    ("getresuid", 118),
    ("setresgid", 119),
    ("getresgid", 120),
    ("getpgid", 121),
    ("setfsuid", 122),
    ("setfsgid", 123),
    ("getsid", 124),
    ("capget", 125),
    ("capset", 126),
    ("rt_sigpending", 127),
    ("rt_sigtimedwait", 128),
    ("rt_sigqueueinfo", 129),
    ("rt_sigsuspend", 130),
    ("sigaltstack", 131),
    ("utime", 132),
    ("mknod", 133),
    ("statfs", 137),
    ("fstatfs", 138),
    ("getpriority", 140),
    ("setpriority", 141),
    ("sched_setparam", 142),
    ("sched_getparam", 143),
    ("sched_setscheduler", 144),
    ("sched_getscheduler", 145),
    ("sched_get_priority_max", 146),
    ("sched_get_priority_min", 147),
    ("sched_rr_get_interval", 148),
    ("mlock", 149),
    ("munlock", 150),
    ("mlockall", 151),
    ("munlockall", 152),
    ("modify_ldt", 154),
    ("prctl", 157),
    ("arch_prctl", 158),
    ("adjtimex", 159),
    ("setrlimit", 160),
    ("sync", 162),
    ("gettid", 186),
    ("readahead", 187),
    ("setxattr", 188),
    ("lsetxattr", 189),
    ("fsetxattr", 190),
    ("getxattr", 191),
    ("lgetxattr", 192),
    ("fgetxattr", 193),
    ("listxattr", 194),
    ("llistxattr", 195),
    ("flistxattr", 196),
    ("removexattr", 197),
    ("lremovexattr", 198),
    ("fremovexattr", 199),
    ("tkill", 200),
    ("time", 201),
    ("futex", 202),
    ("sched_setaffinity", 203),
    ("sched_getaffinity", 204),
    ("set_thread_area", 205),
    ("io_setup", 206),
    ("io_destroy", 207),
    ("io_getevents", 208),
    ("io_submit", 209),
    ("io_cancel", 210),
    ("get_thread_area", 211),
    ("epoll_create", 213),
    ("epoll_ctl_old", 214),
    ("epoll_wait_old", 215),
    ("remap_file_pages", 216),
    ("getdents64", 217),
    ("set_tid_address", 218),
    ("restart_syscall", 219),
    ("semtimedop", 220),
    ("fadvise64", 221),
    ("timer_create", 222),
    ("timer_settime", 223),
    ("timer_gettime", 224),
    ("timer_getoverrun", 225),
    ("timer_delete", 226),
    ("clock_gettime", 228),
    ("clock_getres", 229),
    ("clock_nanosleep", 230),
    ("exit_group", 231),
    ("epoll_wait", 232),
    ("epoll_ctl", 233),
    ("tgkill", 234),
    ("utimes", 235),
    ("mq_open", 240),
    ("mq_unlink", 241),
    ("mq_timedsend", 242),
    ("mq_timedreceive", 243),
    ("mq_notify", 244),
    ("mq_getsetattr", 245),
    ("waitid", 247),
    ("ioprio_set", 251),
    ("ioprio_get", 252),
    ("inotify_init", 253),
    ("inotify_add_watch", 254),
    ("inotify_rm_watch", 255),
    ("openat", 257),
    ("mkdirat", 258),
    ("mknodat", 259),
    ("fchownat", 260),
    ("futimesat", 261),
    ("newfstatat", 262),
    ("unlinkat", 263),
    ("renameat", 264),
    ("linkat", 265),
    ("symlinkat", 266),
    ("readlinkat", 267),
    ("fchmodat", 268),
    ("faccessat", 269),
    ("pselect6", 270),
    ("ppoll", 271),
    ("set_robust_list", 273),
    ("get_robust_list", 274),
    ("splice", 275),
    ("tee", 276),
    ("sync_file_range", 277),
    ("vmsplice", 278),
    ("utimensat", 280),
    ("epoll_pwait", 281),
    ("signalfd", 282),
    ("timerfd_create", 283),
    ("eventfd", 284),
    ("fallocate", 285),
    ("timerfd_settime", 286),
    ("timerfd_gettime", 287),
    ("accept4", 288),
    ("signalfd4", 289),
    ("eventfd2", 290),
    ("epoll_create1", 291),
    ("dup3", 292),
    ("pipe2", 293),
    ("inotify_init1", 294),
    ("preadv", 295),
    ("pwritev", 296),
    ("rt_tgsigqueueinfo", 297),
    ("recvmmsg", 299),
    ("fanotify_mark", 301),
    ("prlimit64", 302),
    ("name_to_handle_at", 303),
    ("clock_adjtime", 305),
    ("syncfs", 306),
    ("sendmmsg", 307),
    ("getcpu", 309),
    ("process_vm_readv", 310),
    ("process_vm_writev", 311),
    ("sched_setattr", 314),
    ("sched_getattr", 315),
    ("renameat2", 316),
    ("seccomp", 317),
    ("getrandom", 318),
    ("memfd_create", 319),
    ("execveat", 322),
    ("membarrier", 324),
    ("mlock2", 325),
    ("copy_file_range", 326),
    ("preadv2", 327),
    ("pwritev2", 328),
    ("pkey_mprotect", 329),
    ("pkey_alloc", 330),
    ("pkey_free", 331),
    ("statx", 332),
    ("io_pgetevents", 333),
    ("rseq", 334),
    ("pidfd_send_signal", 424),
    ("pidfd_open", 434),
    ("close_range", 436),
    ("openat2", 437),
    ("faccessat2", 439),
    ("epoll_pwait2", 441),
    ("landlock_create_ruleset", 444),
    ("landlock_add_rule", 445),
    ("landlock_restrict_self", 446),
    ("memfd_secret", 447),
    ("process_mrelease", 448),
    ("futex_waitv", 449),
    ("cachestat", 451),
    ("fchmodat2", 452),
    ("map_shadow_stack", 453),
    ("futex_wake", 454),
    ("futex_wait", 455),
    ("futex_requeue", 456),
    ("mseal", 462),
];

/// Syscalls docker allows only with one of the capabilities given (by number).
const WITH_CAPABILITY: [(&str, u32, &[u32]); 39] = [
    ("iopl", 172, &[17]),
    ("ioperm", 173, &[17]),
    ("syslog", 103, &[21, 34]),
    ("chroot", 161, &[18]),
    ("acct", 163, &[20]),
    ("settimeofday", 164, &[25]),
    ("mount", 165, &[21]),
    ("umount2", 166, &[21]),
    ("reboot", 169, &[22]),
    ("sethostname", 170, &[21]),
    ("setdomainname", 171, &[21]),
    ("init_module", 175, &[16]),
    ("delete_module", 176, &[16]),
    ("quotactl", 179, &[21]),
    ("lookup_dcookie", 212, &[21]),
    ("clock_settime", 227, &[25]),
    ("mbind", 237, &[23]),
    ("set_mempolicy", 238, &[23]),
    ("get_mempolicy", 239, &[23]),
    ("vhangup", 153, &[26]),
    ("unshare", 272, &[21]),
    ("perf_event_open", 298, &[21, 38]),
    ("fanotify_init", 300, &[21]),
    ("setns", 308, &[21]),
    ("kcmp", 312, &[19]),
    ("finit_module", 313, &[16]),
    ("bpf", 321, &[21, 39]),
    ("open_tree", 428, &[21]),
    ("move_mount", 429, &[21]),
    ("fsopen", 430, &[21]),
    ("fsconfig", 431, &[21]),
    ("fsmount", 432, &[21]),
    ("fspick", 433, &[21]),
    ("clone3", 435, &[21]),
    ("pidfd_getfd", 438, &[19]),
    ("process_madvise", 440, &[19]),
    ("mount_setattr", 442, &[21]),
    ("quotactl_fd", 443, &[21]),
    ("set_mempolicy_home_node", 450, &[23]),
];

const CLONE: u32 = 56;
const CLONE3: u32 = 435;
const PERSONALITY: u32 = 135;
const SOCKET: u32 = 41;
/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET`: namespaces, which `clone` may only create with `CAP_SYS_ADMIN`.
const CLONE_NAMESPACES: u32 = 0x7e02_0000;
/// The `personality` values docker allows: Linux, with `UNAME26`, `ADDR_NO_RANDOMIZE` and
/// both, and the query `0xffffffff`.
const PERSONALITIES: [u32; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];
/// `AF_VSOCK`, which docker's profile refuses to `socket`.
const AF_VSOCK: u32 = 40;
const CAP_SYS_ADMIN: u32 = 21;

fn stmt(code: u16, k: u32) -> Instruction {
    (code, 0, 0, k)
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Instruction {
    (code, jt, jf, k)
}

/// The filter for a workload with the capability set `caps` (what docker's profile allows
/// depends on it).
pub fn default_profile(caps: u64) -> Vec<Instruction> {
    let has = |cap: u32| caps & (1 << cap) != 0;
    let deny = stmt(BPF_RET_K, RET_ERRNO | EPERM);
    let allow = stmt(BPF_RET_K, RET_ALLOW);
    let mut f = vec![
        stmt(BPF_LD_W_ABS, ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        deny,
        stmt(BPF_LD_W_ABS, NR),
        jump(BPF_JGE_K, X32_BIT, 0, 1),
        deny,
    ];
    let mut allowed: Vec<u32> = ALLOWED.iter().map(|(_, nr)| *nr).collect();
    allowed.extend(
        WITH_CAPABILITY
            .iter()
            .filter(|(_, _, any)| any.iter().any(|&c| has(c)))
            .map(|(_, nr, _)| *nr),
    );
    if has(CAP_SYS_ADMIN) {
        allowed.push(CLONE);
    }
    // Each: "this one? then allow", so that no jump is longer than one instruction.
    for nr in allowed {
        f.extend([jump(BPF_JEQ_K, nr, 0, 1), allow]);
    }
    // The blocks below test the syscall's number (still in A), then load an argument and end
    // in a return either way, so a block that does not match leaves A alone.
    if !has(CAP_SYS_ADMIN) {
        // clone without namespace flags; clone3, whose flags BPF cannot read, as if absent, so
        // that libc falls back to clone.
        f.extend([
            jump(BPF_JEQ_K, CLONE, 0, 4),
            stmt(BPF_LD_W_ABS, ARG0_LOW),
            jump(BPF_JSET_K, CLONE_NAMESPACES, 1, 0),
            allow,
            deny,
            jump(BPF_JEQ_K, CLONE3, 0, 1),
            stmt(BPF_RET_K, RET_ERRNO | ENOSYS),
        ]);
    }
    // personality: only the values docker allows (the high half of the argument zero).
    f.extend([
        jump(BPF_JEQ_K, PERSONALITY, 0, 10),
        stmt(BPF_LD_W_ABS, ARG0_HIGH),
        jump(BPF_JEQ_K, 0, 0, 6),
        stmt(BPF_LD_W_ABS, ARG0_LOW),
    ]);
    for (i, value) in (0u8..).zip(PERSONALITIES) {
        f.push(jump(BPF_JEQ_K, value, 5 - i, 0));
    }
    f.extend([deny, allow]);
    // socket: any family but AF_VSOCK.
    f.extend([
        jump(BPF_JEQ_K, SOCKET, 0, 4),
        stmt(BPF_LD_W_ABS, ARG0_LOW),
        jump(BPF_JEQ_K, AF_VSOCK, 0, 1),
        deny,
        allow,
        deny,
    ]);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the filter on (arch, nr, arg0) as the kernel would: the return value.
    fn run(f: &[Instruction], arch: u32, nr: u32, arg0: u64) -> u32 {
        let data = |off: u32| match off {
            NR => nr,
            ARCH => arch,
            ARG0_LOW => arg0 as u32,
            ARG0_HIGH => (arg0 >> 32) as u32,
            other => panic!("load of offset {other}"),
        };
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let (code, jt, jf, k) = f[pc];
            let next = |taken: bool| pc + 1 + usize::from(if taken { jt } else { jf });
            pc = match code {
                BPF_LD_W_ABS => {
                    a = data(k);
                    pc + 1
                }
                BPF_JEQ_K => next(a == k),
                BPF_JGE_K => next(a >= k),
                BPF_JSET_K => next(a & k != 0),
                BPF_RET_K => return k,
                other => panic!("opcode {other:#x}"),
            };
        }
    }

    fn verdict(caps: u64, nr: u32, arg0: u64) -> u32 {
        run(&default_profile(caps), AUDIT_ARCH_X86_64, nr, arg0)
    }

    const DEFAULT_CAPS: u64 = 0xa80425fb;
    const DENIED: u32 = RET_ERRNO | EPERM;

    #[test]
    fn the_numbers_are_x86_64s() {
        for (name, nr, expected) in [
            ("read", 0, libc::SYS_read),
            ("execve", 59, libc::SYS_execve),
            ("openat2", 437, libc::SYS_openat2),
            ("mount", 165, libc::SYS_mount),
            ("clone3", 435, libc::SYS_clone3),
        ] {
            assert_eq!(i64::from(nr), expected, "{name}");
        }
        let mut all: Vec<u32> = ALLOWED.iter().map(|(_, nr)| *nr).collect();
        all.extend(WITH_CAPABILITY.iter().map(|(_, nr, _)| *nr));
        let len = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), len, "a syscall is listed twice");
    }

    #[test]
    fn the_profile_allows_ordinary_syscalls_and_refuses_the_rest() {
        assert!(default_profile(DEFAULT_CAPS).len() < 4096, "over BPF_MAXINSNS");
        assert_eq!(verdict(DEFAULT_CAPS, libc::SYS_read as u32, 0), RET_ALLOW);
        assert_eq!(verdict(DEFAULT_CAPS, libc::SYS_execve as u32, 0), RET_ALLOW);
        for nr in [libc::SYS_keyctl, libc::SYS_add_key, libc::SYS_kexec_load, libc::SYS_userfaultfd]
        {
            assert_eq!(verdict(DEFAULT_CAPS, nr as u32, 0), DENIED, "{nr}");
        }
        // Another architecture, and x32.
        assert_eq!(run(&default_profile(DEFAULT_CAPS), 0x4000_0003, 3, 0), DENIED);
        assert_eq!(verdict(DEFAULT_CAPS, X32_BIT | 1, 0), DENIED);
    }

    #[test]
    fn capabilities_open_what_needs_them() {
        let mount = libc::SYS_mount as u32;
        assert_eq!(verdict(DEFAULT_CAPS, mount, 0), DENIED);
        assert_eq!(verdict(DEFAULT_CAPS | 1 << CAP_SYS_ADMIN, mount, 0), RET_ALLOW);
        let unshare = libc::SYS_unshare as u32;
        assert_eq!(verdict(DEFAULT_CAPS, unshare, 0), DENIED);
        assert_eq!(verdict(DEFAULT_CAPS, libc::SYS_chroot as u32, 0), RET_ALLOW);
        assert_eq!(verdict(DEFAULT_CAPS & !(1 << 18), libc::SYS_chroot as u32, 0), DENIED);
    }

    #[test]
    fn clone_personality_and_socket_arguments_are_checked() {
        let fork_flags = 0x0120_0011; // CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
        assert_eq!(verdict(DEFAULT_CAPS, CLONE, fork_flags), RET_ALLOW);
        assert_eq!(verdict(DEFAULT_CAPS, CLONE, fork_flags | 0x1000_0000), DENIED, "CLONE_NEWUSER");
        assert_eq!(verdict(DEFAULT_CAPS, CLONE3, 0), RET_ERRNO | ENOSYS);
        let admin = DEFAULT_CAPS | 1 << CAP_SYS_ADMIN;
        assert_eq!(verdict(admin, CLONE, fork_flags | 0x1000_0000), RET_ALLOW);
        assert_eq!(verdict(admin, CLONE3, 0), RET_ALLOW);
        for value in PERSONALITIES {
            assert_eq!(verdict(DEFAULT_CAPS, PERSONALITY, value.into()), RET_ALLOW);
        }
        assert_eq!(verdict(DEFAULT_CAPS, PERSONALITY, 0x0040_0000), DENIED, "READ_IMPLIES_EXEC");
        assert_eq!(verdict(DEFAULT_CAPS, PERSONALITY, 1 << 32), DENIED);
        assert_eq!(verdict(DEFAULT_CAPS, SOCKET, 2), RET_ALLOW, "AF_INET");
        assert_eq!(verdict(DEFAULT_CAPS, SOCKET, AF_VSOCK.into()), DENIED);
    }
}
