//! Device access control, docker's default rules: a container may create character device nodes
//! (never block devices) but open only the devices boxr puts in its /dev. Without it, root in a
//! container (which has `CAP_MKNOD`) could `mknod` the host's disk and read it.
//!
//! On cgroup v1 the rules go to the container's `devices` cgroup (`devices.deny`, then one
//! `devices.allow` write per rule); on v2 they are a `BPF_PROG_TYPE_CGROUP_DEVICE` program,
//! assembled here, attached to the container's cgroup directory before the init is cloned into
//! it. Both are in place before the init exists, and go with the cgroup when it is removed.

use crate::errno::describe;
use anyhow::{Result, anyhow};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// What a rule allows: `bpf_cgroup_dev_ctx`'s access bits (`BPF_DEVCG_ACC_*`).
const MKNOD: u32 = 1;
const READ: u32 = 2;
const WRITE: u32 = 4;
const RWM: u32 = READ | WRITE | MKNOD;

/// One allow rule, for character devices (no rule allows a block device): major and minor
/// `None` for any.
#[derive(Debug, Clone, Copy)]
struct Rule {
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
}

const fn char_dev(major: u32, minor: Option<u32>, access: u32) -> Rule {
    Rule { major: Some(major), minor, access }
}

/// Everything not listed is denied.
const RULES: [Rule; 10] = [
    // mknod of any character device; opening one still needs a rule below.
    Rule { major: None, minor: None, access: MKNOD },
    char_dev(1, Some(3), RWM), // null
    char_dev(1, Some(5), RWM), // zero
    char_dev(1, Some(7), RWM), // full
    char_dev(1, Some(8), RWM), // random
    char_dev(1, Some(9), RWM), // urandom
    char_dev(5, Some(0), RWM), // tty
    char_dev(5, Some(1), RWM), // console
    char_dev(5, Some(2), RWM), // ptmx
    char_dev(136, None, RWM),  // pts/*
];

/// What v1's `devices.deny` gets first: everything.
pub const V1_DENY: &str = "a";

/// The v1 allow rules, each for its own `devices.allow` write.
pub fn v1_allow_rules() -> impl Iterator<Item = String> {
    RULES.iter().map(|r| {
        let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let access: String = [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
            .iter()
            .filter(|(bit, _)| r.access & bit != 0)
            .map(|(_, c)| *c)
            .collect();
        format!("c {}:{} {access}", number(r.major), number(r.minor))
    })
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const LDX_MEM_W: u8 = 0x61;
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JNE_K: u8 = 0x55;
const JMP_JNE_X: u8 = 0x5d;
const JMP_EXIT: u8 = 0x95;

/// `BPF_DEVCG_DEV_CHAR`: the low 16 bits of `access_type`.
const DEV_CHAR: i32 = 2;

/// Registers: r1 the context (`struct bpf_cgroup_dev_ctx { access_type, major, minor }`), then
/// r2 the device type, r3 the requested access, r4 the major, r5 the minor; r0 the verdict.
const R0: u8 = 0;
const R1: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: dst | src << 4, off, imm }
}

/// The program: the first rule that matches the device and allows every requested access
/// returns 1 (allowed); none matching returns 0 (`EPERM`).
fn program() -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, TYPE, R1, 0, 0),
        insn(ALU64_AND_K, TYPE, 0, 0, 0xffff),
        insn(LDX_MEM_W, ACCESS, R1, 0, 0),
        insn(ALU64_RSH_K, ACCESS, 0, 0, 16),
        insn(LDX_MEM_W, MAJOR, R1, 4, 0),
        insn(LDX_MEM_W, MINOR, R1, 8, 0),
    ];
    for rule in RULES {
        // Each check jumps past the rest of the rule when it fails, to the next rule.
        let mut checks = vec![insn(JMP_JNE_K, TYPE, 0, 0, DEV_CHAR)];
        if rule.access != RWM {
            // The requested access must be within the rule's: (access & allowed) == access.
            checks.push(insn(ALU64_MOV_X, R1, ACCESS, 0, 0));
            checks.push(insn(ALU64_AND_K, R1, 0, 0, rule.access as i32));
            checks.push(insn(JMP_JNE_X, R1, ACCESS, 0, 0));
        }
        if let Some(major) = rule.major {
            checks.push(insn(JMP_JNE_K, MAJOR, 0, 0, major as i32));
        }
        if let Some(minor) = rule.minor {
            checks.push(insn(JMP_JNE_K, MINOR, 0, 0, minor as i32));
        }
        let len = checks.len() + 2;
        for (i, mut check) in checks.into_iter().enumerate() {
            if check.code == JMP_JNE_K || check.code == JMP_JNE_X {
                check.off = (len - i - 1) as i16;
            }
            p.push(check);
        }
        p.push(insn(ALU64_MOV_K, R0, 0, 0, 1));
        p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    p.push(insn(ALU64_MOV_K, R0, 0, 0, 0));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, initialised `#[repr(C)]` prefix of `union bpf_attr` for `cmd`,
    // of the size passed; the pointers inside it (instructions, license, log) point to live
    // buffers of the sizes it states, which outlive the call.
    let ret = unsafe {
        libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>() as libc::c_uint)
    };
    if ret < 0 { Err(std::io::Error::last_os_error()) } else { Ok(ret) }
}

/// Loads the program; on failure, loads it again with the verifier's log for the message.
fn load() -> Result<OwnedFd> {
    let insns = program();
    let license = c"Apache-2.0";
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: *b"boxr_devices\0\0\0\0",
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..ProgLoad::default()
    };
    let fd = bpf(BPF_PROG_LOAD, &mut attr).or_else(|e| {
        let mut log = vec![0u8; 1 << 16];
        attr.log_level = 1;
        attr.log_size = log.len() as u32;
        attr.log_buf = log.as_mut_ptr() as u64;
        bpf(BPF_PROG_LOAD, &mut attr).map_err(|_| {
            let log = String::from_utf8_lossy(&log);
            anyhow!(
                "cannot load the device access BPF program: {}\n{}",
                describe(&e),
                log.trim_end_matches('\0').trim()
            )
        })
    })?;
    // SAFETY: BPF_PROG_LOAD returned a new file descriptor, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the device access program to the cgroup v2 directory `dir`, which holds no process
/// yet. It stays attached for the cgroup's life.
pub fn attach_program(dir: &Path) -> Result<()> {
    let cgroup = File::open(dir)
        .map_err(|e| anyhow!("cannot open cgroup {}: {}", dir.display(), describe(&e)))?;
    let prog = load()?;
    let mut attr = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| {
        anyhow!(
            "cannot attach the device access BPF program to cgroup {}: {}",
            dir.display(),
            describe(&e)
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV_BLOCK: u32 = 1;

    /// Runs the program as the kernel would for (device type, access, major, minor): the
    /// instructions it uses, nothing else.
    fn verdict(kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access << 16 | kind, major, minor];
        let p = program();
        let mut r = [0u64; 11];
        let mut pc = 0;
        loop {
            let i = p[pc];
            let (dst, src) = (usize::from(i.regs & 0xf), usize::from(i.regs >> 4));
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                ALU64_AND_K => r[dst] &= i.imm as u64,
                ALU64_RSH_K => r[dst] >>= i.imm,
                ALU64_MOV_K => r[dst] = i.imm as u64,
                ALU64_MOV_X => r[dst] = r[src],
                JMP_JNE_K if r[dst] != i.imm as u64 => pc += i.off as usize,
                JMP_JNE_X if r[dst] != r[src] => pc += i.off as usize,
                JMP_JNE_K | JMP_JNE_X => {}
                JMP_EXIT => return r[0],
                code => panic!("unexpected instruction {code:#x}"),
            }
        }
    }

    #[test]
    fn block_devices_are_refused_even_mknod() {
        for access in [MKNOD, READ, WRITE, RWM] {
            assert_eq!(verdict(DEV_BLOCK, access, 254, 0), 0);
            assert_eq!(verdict(DEV_BLOCK, access, 1, 3), 0);
        }
    }

    #[test]
    fn any_char_device_can_be_made_but_only_the_listed_opened() {
        assert_eq!(verdict(DEV_CHAR as u32, MKNOD, 1, 1), 1);
        assert_eq!(verdict(DEV_CHAR as u32, MKNOD, 4242, 7), 1);
        assert_eq!(verdict(DEV_CHAR as u32, READ, 1, 1), 0, "/dev/mem");
        assert_eq!(verdict(DEV_CHAR as u32, READ | WRITE, 10, 200), 0, "/dev/net/tun");
        assert_eq!(verdict(DEV_CHAR as u32, READ | MKNOD, 1, 1), 0);
        for (major, minor) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2)] {
            for access in [MKNOD, READ, WRITE, READ | WRITE, RWM] {
                assert_eq!(verdict(DEV_CHAR as u32, access, major, minor), 1, "{major}:{minor}");
            }
        }
        assert_eq!(verdict(DEV_CHAR as u32, READ | WRITE, 136, 0), 1);
        assert_eq!(verdict(DEV_CHAR as u32, READ | WRITE, 136, 99), 1);
        assert_eq!(verdict(DEV_CHAR as u32, READ | WRITE, 137, 0), 0);
        assert_eq!(verdict(DEV_CHAR as u32, READ, 1, 4), 0);
    }

    #[test]
    fn the_program_loads_its_context_then_tests_rules_and_defaults_to_deny() {
        let p = program();
        assert_eq!(
            &p[..2],
            [insn(LDX_MEM_W, TYPE, R1, 0, 0), insn(ALU64_AND_K, TYPE, 0, 0, 0xffff)]
        );
        assert_eq!(&p[p.len() - 2..], [insn(ALU64_MOV_K, R0, 0, 0, 0), insn(JMP_EXIT, 0, 0, 0, 0)]);
        // The mknod rule checks type, access (3) and nothing else; /dev/null type, major, minor.
        assert_eq!(p.len(), 6 + (4 + 2) + 8 * (3 + 2) + (2 + 2) + 2);
        for (pc, i) in p.iter().enumerate() {
            if matches!(i.code, JMP_JNE_K | JMP_JNE_X) {
                let target = pc + 1 + i.off as usize;
                assert!(target < p.len(), "jump at {pc} out of the program");
                assert!(p[target - 1].code == JMP_EXIT, "jump at {pc} lands mid-rule");
            }
        }
    }

    #[test]
    fn v1_rules_are_dockers() {
        assert_eq!(
            v1_allow_rules().collect::<Vec<_>>(),
            [
                "c *:* m",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm",
                "c 136:* rwm",
            ]
        );
    }
}
