use super::bpf::*;
use super::*;

/// What the filter sees of a syscall.
struct Call {
    arch: u32,
    nr: u32,
    args: [u64; 6],
}

impl Call {
    fn new(nr: impl TryInto<u32>, args: &[u64]) -> Call {
        let mut all = [0; 6];
        all[..args.len()].copy_from_slice(args);
        let nr = nr.try_into().unwrap_or_else(|_| panic!("syscall number"));
        Call { arch: AUDIT_ARCH_X86_64, nr, args: all }
    }
}

/// Runs the filter on `call` as the kernel would: its return value. Checks that every jump
/// stays inside the program.
fn run(f: &[Instruction], call: &Call) -> u32 {
    assert!(f.len() <= MAX_INSTRUCTIONS, "over BPF_MAXINSNS: {}", f.len());
    let data = |off: u32| match off {
        NR => call.nr,
        ARCH => call.arch,
        off if (ARGS..ARGS + 48).contains(&off) && off % 4 == 0 => {
            let arg = call.args[((off - ARGS) / 8) as usize];
            if (off - ARGS).is_multiple_of(8) { arg as u32 } else { (arg >> 32) as u32 }
        }
        other => panic!("load of offset {other}"),
    };
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let (code, jt, jf, k) = f[pc];
        let next = |taken: bool| pc + 1 + usize::from(if taken { jt } else { jf });
        pc = match code {
            LD_W_ABS => {
                a = data(k);
                pc + 1
            }
            AND_K => {
                a &= k;
                pc + 1
            }
            JA => pc + 1 + k as usize,
            JEQ_K => next(a == k),
            JGT_K => next(a > k),
            JGE_K => next(a >= k),
            RET_K => return k,
            other => panic!("opcode {other:#x}"),
        };
        assert!(pc < f.len(), "jump out of the program");
    }
}

const ALLOW: u32 = 0x7fff_0000;
const ERRNO: u32 = 0x0005_0000;
const DENIED: u32 = ERRNO | 1;
const DEFAULT_CAPS: u64 = 0xa80425fb;
const CAP_SYS_ADMIN: u32 = 21;
const KERNEL: Kernel = (6, 1);

fn nr(name: &str) -> u32 {
    syscalls::number(name).unwrap_or_else(|| panic!("no syscall {name}"))
}

fn profile(json: &str) -> Profile {
    Profile::parse("p.json", json).unwrap_or_else(|e| panic!("{e}"))
}

fn filter(json: &str) -> Vec<Instruction> {
    compile_for(&profile(json), DEFAULT_CAPS, KERNEL).unwrap_or_else(|e| panic!("{e}"))
}

fn error(json: &str) -> String {
    match Profile::parse("p.json", json).and_then(|p| compile_for(&p, DEFAULT_CAPS, KERNEL)) {
        Ok(f) => panic!("compiled, to {} instructions", f.len()),
        Err(e) => e,
    }
}

mod default_profile {
    use super::*;

    fn verdict(caps: u64, name: &str, arg0: u64) -> u32 {
        let f = compile_for(&Profile::docker_default(), caps, KERNEL).unwrap();
        run(&f, &Call::new(nr(name), &[arg0]))
    }

    #[test]
    fn loads_without_warnings() {
        let p = Profile::docker_default();
        assert_eq!(p.warnings(), [] as [String; 0]);
        assert!(compile(&p, DEFAULT_CAPS).unwrap().len() < 1024);
    }

    #[test]
    fn allows_ordinary_syscalls_and_refuses_the_rest() {
        for name in ["read", "execve", "openat2", "ptrace", "arch_prctl", "mseal", "futex_wake"] {
            assert_eq!(verdict(DEFAULT_CAPS, name, 0), ALLOW, "{name}");
        }
        for name in ["keyctl", "add_key", "kexec_load", "userfaultfd", "open_by_handle_at"] {
            assert_eq!(verdict(DEFAULT_CAPS, name, 0), DENIED, "{name}");
        }
        let f = compile_for(&Profile::docker_default(), DEFAULT_CAPS, KERNEL).unwrap();
        // Another architecture, and x32.
        let i386 = Call { arch: 0x4000_0003, ..Call::new(3, &[]) };
        assert_eq!(run(&f, &i386), DENIED);
        assert_eq!(run(&f, &Call::new(X32_BIT | 1, &[])), DENIED);
        // ptrace needs 4.8 without CAP_SYS_PTRACE.
        let old = compile_for(&Profile::docker_default(), DEFAULT_CAPS, (4, 4)).unwrap();
        assert_eq!(run(&old, &Call::new(nr("ptrace"), &[])), DENIED);
    }

    #[test]
    fn capabilities_open_what_needs_them() {
        let admin = DEFAULT_CAPS | 1 << CAP_SYS_ADMIN;
        assert_eq!(verdict(DEFAULT_CAPS, "mount", 0), DENIED);
        assert_eq!(verdict(admin, "mount", 0), ALLOW);
        assert_eq!(verdict(DEFAULT_CAPS, "unshare", 0), DENIED);
        assert_eq!(verdict(DEFAULT_CAPS, "chroot", 0), ALLOW);
        assert_eq!(verdict(DEFAULT_CAPS & !(1 << 18), "chroot", 0), DENIED);
        assert_eq!(verdict(DEFAULT_CAPS, "bpf", 0), DENIED);
        assert_eq!(verdict(DEFAULT_CAPS | 1 << 39, "bpf", 0), ALLOW, "CAP_BPF");
        assert_eq!(verdict(DEFAULT_CAPS | 1 << 34, "syslog", 0), ALLOW, "CAP_SYSLOG");
    }

    #[test]
    fn clone_personality_and_socket_arguments_are_checked() {
        let fork_flags = 0x0120_0011; // CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
        assert_eq!(verdict(DEFAULT_CAPS, "clone", fork_flags), ALLOW);
        assert_eq!(verdict(DEFAULT_CAPS, "clone", fork_flags | 0x1000_0000), DENIED, "NEWUSER");
        assert_eq!(verdict(DEFAULT_CAPS, "clone3", 0), ERRNO | 38);
        let admin = DEFAULT_CAPS | 1 << CAP_SYS_ADMIN;
        assert_eq!(verdict(admin, "clone", fork_flags | 0x1000_0000), ALLOW);
        assert_eq!(verdict(admin, "clone3", 0), ALLOW);
        for value in [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(verdict(DEFAULT_CAPS, "personality", value), ALLOW, "{value:#x}");
        }
        assert_eq!(verdict(DEFAULT_CAPS, "personality", 0x0040_0000), DENIED, "READ_IMPLIES_EXEC");
        assert_eq!(verdict(DEFAULT_CAPS, "personality", 1 << 32), DENIED);
        assert_eq!(verdict(DEFAULT_CAPS, "socket", 2), ALLOW, "AF_INET");
        assert_eq!(verdict(DEFAULT_CAPS, "socket", 40), DENIED, "AF_VSOCK");
        assert_eq!(verdict(DEFAULT_CAPS, "socket", 40 | 1 << 32), ALLOW, "64-bit compare");
    }
}

/// A profile allowing `mkdir` when its second argument (`mode`) compares as `op` with `value`
/// (and `valueTwo`), `EACCES` otherwise.
fn mode_filter(op: &str, value: u64, two: u64) -> Vec<Instruction> {
    filter(&format!(
        r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW",
              "args": [{{"index": 1, "value": {value}, "valueTwo": {two}, "op": "{op}"}}]}},
            {{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}}]}}"#
    ))
}

#[test]
fn every_comparison_is_64_bit_and_unsigned() {
    let v: u64 = 0x0000_0005_8000_0002;
    let probes = [
        0,
        v - 1,
        v,
        v + 1,
        v & 0xffff_ffff,
        v | 1 << 40,
        v - (1 << 32),
        v + (1 << 32),
        (v & !0xffff_ffff) | 0xffff_ffff,
        (v & !0xffff_ffff) + 1,
        u64::MAX,
    ];
    type Comparison = fn(u64, u64) -> bool;
    let ops: [(&str, Comparison); 6] = [
        ("SCMP_CMP_EQ", |a, v| a == v),
        ("SCMP_CMP_NE", |a, v| a != v),
        ("SCMP_CMP_LT", |a, v| a < v),
        ("SCMP_CMP_LE", |a, v| a <= v),
        ("SCMP_CMP_GT", |a, v| a > v),
        ("SCMP_CMP_GE", |a, v| a >= v),
    ];
    for (op, holds) in ops {
        let f = mode_filter(op, v, 0);
        for a in probes {
            let expected = if holds(a, v) { ALLOW } else { ERRNO | 13 };
            assert_eq!(run(&f, &Call::new(nr("mkdir"), &[0, a])), expected, "{op} {a:#x}");
        }
    }
    let (mask, expected) = (0xff00_0000_0000_00ffu64, 0x1200_0000_0000_0034u64);
    let f = mode_filter("SCMP_CMP_MASKED_EQ", mask, expected);
    for (a, ok) in [
        (0x1200_0000_0000_0034, true),
        (0x12ab_cdef_0123_4534, true),
        (0x1300_0000_0000_0034, false),
        (0x1200_0000_0000_0035, false),
        (0x0000_0000_0000_0034, false),
    ] {
        let verdict = if ok { ALLOW } else { ERRNO | 13 };
        assert_eq!(run(&f, &Call::new(nr("mkdir"), &[0, a])), verdict, "{a:#x}");
    }
}

#[test]
fn args_of_one_entry_are_anded_and_entries_ored_unconditional_last() {
    // The unconditional entry comes first in the file, yet only applies when no other does.
    let f = filter(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"name": "kill", "action": "SCMP_ACT_ERRNO", "errnoRet": 3},
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [
                {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    let kill = |pid, sig| run(&f, &Call::new(nr("kill"), &[pid, sig]));
    assert_eq!(kill(1, 15), ALLOW);
    assert_eq!(kill(1, 9), DENIED);
    assert_eq!(kill(2, 15), ERRNO | 3);
    assert_eq!(kill(1, 2), ERRNO | 3);
    assert_eq!(run(&f, &Call::new(nr("read"), &[])), ALLOW);
}

#[test]
fn actions_and_their_errnos() {
    let f = filter(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["open"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0},
            {"names": ["close"], "action": "SCMP_ACT_KILL"},
            {"names": ["stat"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["fstat"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["lstat"], "action": "SCMP_ACT_TRAP"},
            {"names": ["poll"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {"names": ["lseek"], "action": "SCMP_ACT_LOG"}]}"#,
    );
    for (name, ret) in [
        ("read", ALLOW),
        ("write", DENIED),
        ("open", ERRNO),
        ("close", 0),
        ("stat", 0),
        ("fstat", 0x8000_0000),
        ("lstat", 0x0003_0000),
        ("poll", 0x7ff0_0007),
        ("lseek", 0x7ffc_0000),
        ("mmap", ERRNO | 38),
    ] {
        assert_eq!(run(&f, &Call::new(nr(name), &[])), ret, "{name}");
    }
    let f = filter(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#);
    assert_eq!(run(&f, &Call::new(0, &[])), DENIED, "EPERM by default");
}

#[test]
fn includes_and_excludes_follow_caps_arches_and_kernel() {
    let p = profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
            {"names": ["open"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["x86_64"]}},
            {"names": ["close"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64", "s390x"]}},
            {"names": ["stat"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["SCMP_ARCH_X86_64"]}},
            {"names": ["fstat"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["ppc64le"]}},
            {"names": ["lstat"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
            {"names": ["poll"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}}]}"#,
    );
    let allowed = |caps: u64, kernel: Kernel| {
        let f = compile_for(&p, caps, kernel).unwrap();
        ["read", "write", "open", "close", "stat", "fstat", "lstat", "poll"]
            .into_iter()
            .filter(|name| run(&f, &Call::new(nr(name), &[])) == ALLOW)
            .collect::<Vec<_>>()
    };
    let (admin, net_admin) = (1 << 21, 1 << 12);
    assert_eq!(allowed(0, (5, 4)), ["write", "open", "fstat", "poll"]);
    assert_eq!(allowed(admin, (5, 10)), ["open", "fstat", "lstat"]);
    assert_eq!(allowed(admin | net_admin, (6, 0)), ["read", "open", "fstat", "lstat"]);
}

#[test]
fn unknown_syscalls_and_flags_warn_and_are_skipped() {
    let p = profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["read", "chown32", "no_such_call", "chown32"], "action": "SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(
        p.warnings(),
        [
            "p.json: flag \"SECCOMP_FILTER_FLAG_LOG\" is not supported: ignored",
            "p.json: unknown syscalls skipped: chown32, no_such_call",
        ]
    );
    let f = compile_for(&p, 0, KERNEL).unwrap();
    assert_eq!(run(&f, &Call::new(nr("read"), &[])), ALLOW);
    assert_eq!(run(&f, &Call::new(nr("write"), &[])), DENIED);
}

#[test]
fn the_oci_form_and_docker_arch_maps_are_accepted() {
    let f = filter(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "listenerPath": "", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    assert_eq!(run(&f, &Call::new(nr("mkdir"), &[])), DENIED);
    let arm = r#"{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": null}]}"#;
    assert_eq!(run(&filter(arm), &Call::new(0, &[])), ALLOW);
}

#[test]
fn long_programs_jump_through_ja() {
    // 300 rules for one syscall: the first rule's failure target is far past 255.
    let rules: Vec<String> = (0..300)
        .map(|i| {
            format!(
                r#"{{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": {}, "args": [{{"index": 1, "value": {i}, "op": "SCMP_CMP_EQ"}}]}}"#,
                i + 1
            )
        })
        .collect();
    let f = filter(&format!(
        r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{}]}}"#,
        rules.join(",")
    ));
    assert!(f.iter().any(|&(code, ..)| code == JA));
    for sig in [0, 1, 254, 255, 256, 299] {
        assert_eq!(run(&f, &Call::new(nr("kill"), &[1, sig])), ERRNO | (sig as u32 + 1));
    }
    assert_eq!(run(&f, &Call::new(nr("kill"), &[1, 300])), ALLOW);
    // More than 255 syscalls with one action, and one with another.
    let names: Vec<String> = (0..330)
        .filter(|&n| syscalls::name(n) != "?")
        .map(|n| format!("{:?}", syscalls::name(n)))
        .collect();
    let f = filter(&format!(
        r#"{{"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [{{"names": [{}], "action": "SCMP_ACT_ALLOW"}}, {{"names": ["mseal"], "action": "SCMP_ACT_LOG"}}]}}"#,
        names.join(",")
    ));
    for n in [0, 100, 254, 255, 256, 329] {
        assert_eq!(run(&f, &Call::new(n, &[])), ALLOW, "{n}");
    }
    assert_eq!(run(&f, &Call::new(nr("mseal"), &[])), 0x7ffc_0000);
    assert_eq!(run(&f, &Call::new(nr("close_range"), &[])), 0x8000_0000);
}

#[test]
fn programs_over_the_kernels_limit_are_refused() {
    let rules: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"{{"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [{{"index": 1, "value": {i}, "op": "SCMP_CMP_EQ"}}]}}"#
            )
        })
        .collect();
    let e = error(&format!(
        r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{}]}}"#,
        rules.join(",")
    ));
    assert!(e.starts_with("p.json: the compiled filter has "), "{e}");
    assert!(e.ends_with("instructions, more than the kernel's limit of 4096"), "{e}");
}

#[test]
fn bad_profiles_are_refused_naming_the_file_and_place() {
    for (json, expected) in [
        ("{", "p.json:1:1: EOF while parsing an object"),
        (
            "{\n  \"defaultAction\": \"SCMP_ACT_BOGUS\"}",
            "p.json:2:36: unknown action \"SCMP_ACT_BOGUS\": give one of SCMP_ACT_ALLOW,",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#,
            "p.json:1:36: SCMP_ACT_NOTIFY is not supported: boxr has no seccomp listener",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscals": []}"#,
            "p.json:1:45: unknown field `syscals`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}"#,
            "p.json:1:153: unknown comparison \"SCMP_CMP_LIKE\": give one of SCMP_CMP_EQ,",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64"]}"#,
            "p.json: the profile is for SCMP_ARCH_AARCH64 only, not x86_64 (SCMP_ARCH_X86_64)",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ERRNO"}]}"#,
            "p.json: syscalls[0]: give either \"name\" or \"names\", not both",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
            "p.json: syscalls[0].args[0].index: 6 is not an argument (0 to 5)",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_BOGUS"]}}]}"#,
            "p.json: syscalls[0].includes.caps: unknown capability \"CAP_BOGUS\"",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": "new"}}]}"#,
            "p.json: syscalls[0].excludes.minKernel: \"new\" is not a kernel version",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}"#,
            "p.json: syscalls[0].errnoRet is only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}"#,
            "p.json: defaultErrnoRet: 5000 is not an errno (at most 4095)",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/l.sock"}"#,
            "p.json: listenerPath: boxr has no seccomp listener support",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}, {"names": ["read"], "action": "SCMP_ACT_LOG"}]}"#,
            "p.json: syscall read has two entries without arguments with different actions",
        ),
    ] {
        let e = error(json);
        assert!(e.starts_with(expected), "{json}\ngot:      {e}\nexpected: {expected}");
    }
}

#[test]
fn kernel_versions_parse() {
    assert_eq!(parse_kernel("4.8"), Some((4, 8)));
    assert_eq!(parse_kernel("6.1.0-18-amd64"), Some((6, 1)));
    assert_eq!(parse_kernel("6"), Some((6, 0)));
    assert_eq!(parse_kernel("x"), None);
    assert!(running_kernel() >= (5, 3), "boxr needs clone3");
}
