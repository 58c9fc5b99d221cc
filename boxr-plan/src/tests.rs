extern crate std;

use super::*;
use alloc::ffi::CString;
use alloc::vec::Vec;
use std::string::ToString;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Encodes a plan whose process context is the default (no capabilities).
fn encode_plain<S: AsRef<CStr>>(
    flags: u8,
    args: &[S],
    env: &[S],
    steps: &[Step<S>],
) -> Result<Vec<u8>, EncodeError> {
    encode(flags, args, env, &ProcessContext::default(), &[], steps)
}

fn sample_context() -> ProcessContext {
    ProcessContext {
        capabilities: Capabilities {
            bounding: 0xa80_425fb,
            permitted: 0xa80_425fb,
            effective: 0x400,
            ambient: 0x400,
        },
        no_new_privs: true,
        uid: 1000,
        gid: 100,
        groups: Groups::new(&[10, 20, 65534]),
        rlimits: Rlimits::new(&[Rlimit { resource: 7, soft: 1024, hard: RLIM_INFINITY }]).unwrap(),
        oom_score_adj: Some(-500),
    }
}

fn sample_steps() -> Vec<Step<CString>> {
    alloc::vec![
        Step::MakeMountsPrivate,
        Step::MountRootfs {
            source: c("/srv/rootfs"),
            target: c("/srv/rootfs"),
            fstype: c(""),
            flags: ms::BIND | ms::REC,
            data: c(""),
        },
        Step::MountFs {
            fstype: c("proc"),
            target: c("/proc"),
            flags: ms::NOSUID | ms::NODEV | ms::NOEXEC,
            data: c(""),
            strict: true,
        },
        Step::Bind {
            source: c("/data"),
            target: c("/mnt"),
            flags: ms::RDONLY | ms::REC,
            file: false
        },
        Step::Mknod { target: c("/dev/null"), mode: 0o20666, major: 1, minor: 3 },
        Step::Symlink { to: c("pts/ptmx"), link: c("/dev/ptmx") },
        Step::PivotRoot,
        Step::RemountRootReadonly,
        Step::SetHostname { name: c("box") },
        Step::Chdir { path: c("/tmp") },
        Step::UnshareCgroupNamespace,
        Step::MaskPath { path: c("/proc/kcore") },
        Step::ReadonlyPath { path: c("/proc/sys") },
        Step::Sysctl { key: c("net.ipv4.ip_forward"), value: c("1") },
        Step::AttachRootfs { target: c("/srv/rootfs") },
        Step::BringUpLoopback,
        Step::AwaitFrontend,
    ]
}

#[test]
fn plan_round_trips() {
    let steps = sample_steps();
    let args = [c("/bin/echo"), c("hi there")];
    let env = [c("PATH=/bin"), c("A=b")];
    let context = sample_context();
    let filter = [(0x20, 0, 0, 4), (0x15, 1, 0, 0xc000_003e), (0x06, 0, 0, 0x7fff_0000)];
    let bytes =
        encode(flags::SUBREAPER | flags::TTY, &args, &env, &context, &filter, &steps).unwrap();
    let plan = Plan::parse(&bytes).unwrap();
    assert_eq!(plan.seccomp.iter().collect::<Vec<_>>(), filter);
    assert_eq!(plan.flags, flags::SUBREAPER | flags::TTY);
    assert_eq!(plan.context, context);
    let got_args: Vec<_> = plan.args.iter().collect();
    assert_eq!(got_args, [c"/bin/echo", c"hi there"]);
    let got_env: Vec<_> = plan.env.iter().collect();
    assert_eq!(got_env, [c"PATH=/bin", c"A=b"]);
    let decoded: Vec<_> = plan.steps().map(Result::unwrap).collect();
    let expected: Vec<Step<&CStr>> = steps.iter().map(borrow).collect();
    assert_eq!(decoded, expected);
}

fn borrow(s: &Step<CString>) -> Step<&CStr> {
    match s {
        Step::MakeMountsPrivate => Step::MakeMountsPrivate,
        Step::MountRootfs { source, target, fstype, flags, data } => {
            Step::MountRootfs { source, target, fstype, flags: *flags, data }
        }
        Step::MountFs { fstype, target, flags, data, strict } => {
            Step::MountFs { fstype, target, flags: *flags, data, strict: *strict }
        }
        Step::Bind { source, target, flags, file } => {
            Step::Bind { source, target, flags: *flags, file: *file }
        }
        Step::Mknod { target, mode, major, minor } => {
            Step::Mknod { target, mode: *mode, major: *major, minor: *minor }
        }
        Step::Symlink { to, link } => Step::Symlink { to, link },
        Step::PivotRoot => Step::PivotRoot,
        Step::RemountRootReadonly => Step::RemountRootReadonly,
        Step::SetHostname { name } => Step::SetHostname { name },
        Step::Chdir { path } => Step::Chdir { path },
        Step::UnshareCgroupNamespace => Step::UnshareCgroupNamespace,
        Step::MaskPath { path } => Step::MaskPath { path },
        Step::ReadonlyPath { path } => Step::ReadonlyPath { path },
        Step::Sysctl { key, value } => Step::Sysctl { key, value },
        Step::AttachRootfs { target } => Step::AttachRootfs { target },
        Step::BringUpLoopback => Step::BringUpLoopback,
        Step::AwaitFrontend => Step::AwaitFrontend,
    }
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = encode_plain(0, &[c("/bin/true")], &[], &sample_steps()).unwrap();
    for len in 0..bytes.len() {
        assert!(Plan::parse(&bytes[..len]).is_err(), "prefix of {len} bytes was accepted");
    }
}

#[test]
fn bad_header_is_rejected() {
    let mut bytes = encode_plain(0, &[c("/bin/true")], &[], &[]).unwrap();
    assert!(Plan::parse(&bytes).is_ok());
    bytes[4] = 99;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::Version(99));
    bytes[0] = b'X';
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadMagic);
}

#[test]
fn unknown_tag_and_flags_are_rejected() {
    let mut bytes = encode_plain(0, &[c("/bin/true")], &[], &[Step::PivotRoot]).unwrap();
    *bytes.last_mut().unwrap() = 200;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::Unknown(200));
    let mut bytes = encode_plain(0, &[c("/bin/true")], &[], &[]).unwrap();
    bytes.push(7);
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::TrailingBytes);
    let mut bytes = encode_plain(0, &[c("/bin/true")], &[], &[]).unwrap();
    bytes[5] = 0x80;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::Unknown(0x80));
}

#[test]
fn inconsistent_or_unknown_contexts_are_rejected() {
    let args = [c("/bin/true")];
    let none: [CString; 0] = [];
    for caps in [
        Capabilities { bounding: 1, permitted: 3, effective: 1, ambient: 0 },
        Capabilities { bounding: 3, permitted: 1, effective: 2, ambient: 0 },
        Capabilities { bounding: 3, permitted: 1, effective: 1, ambient: 2 },
    ] {
        let context = ProcessContext { capabilities: caps, ..Default::default() };
        assert_eq!(
            encode(0, &args, &none, &context, &[], &[]).unwrap_err(),
            EncodeError::BadContext
        );
    }
    let bad_uid = ProcessContext { uid: u32::MAX, ..Default::default() };
    assert_eq!(encode(0, &args, &none, &bad_uid, &[], &[]).unwrap_err(), EncodeError::BadContext);
    let mut bytes = encode(0, &args, &none, &sample_context(), &[], &[]).unwrap();
    // Before the empty filter and the step count: ids, the group count and three groups, one
    // resource limit and oom_score_adj.
    let groups_at = bytes.len() - 2 - 2 - (1 + 17 + 2) - 3 * 4 - 1;
    let version_at = groups_at - 2 * 4 - 4 * 8 - 2;
    assert_eq!(bytes[version_at], CONTEXT_VERSION);
    assert_eq!(bytes[version_at + 1], 7, "no_new_privs, set_groups, oom_score_adj");
    assert_eq!(bytes[groups_at], 3);
    bytes[version_at + 1] = 0x81;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadContext);
    // Groups without the flag that says to set them.
    bytes[version_at + 1] = 5;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadContext);
    // An oom_score_adj without the flag that says to write it.
    bytes[version_at + 1] = 3;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadContext);
    bytes[version_at + 1] = 6;
    assert!(!Plan::parse(&bytes).unwrap().context.no_new_privs);
    let oom_at = bytes.len() - 2 - 2 - 2;
    bytes[oom_at..oom_at + 2].copy_from_slice(&1001i16.to_le_bytes());
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadContext);
    bytes[oom_at..oom_at + 2].copy_from_slice(&(-500i16).to_le_bytes());
    // The resource limit's hard limit below its soft one.
    let hard_at = oom_at - 8;
    bytes[hard_at..hard_at + 8].copy_from_slice(&5u64.to_le_bytes());
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadContext);
    bytes[hard_at..hard_at + 8].copy_from_slice(&RLIM_INFINITY.to_le_bytes());
    assert!(Plan::parse(&bytes).is_ok());
    bytes[groups_at] = MAX_GROUPS as u8 + 1;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadContext);
    bytes[groups_at] = 3;
    // The effective set's lowest byte: a capability outside the permitted set.
    bytes[version_at + 2 + 2 * 8] = 0x04;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadContext);
    bytes[version_at] = CONTEXT_VERSION + 1;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadContext);
}

#[test]
fn interior_nul_is_rejected() {
    let mut bytes = encode_plain(0, &[c("/bin/ab")], &[], &[]).unwrap();
    let at = bytes.iter().position(|&b| b == b'a').unwrap();
    bytes[at] = 0;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadString);
}

#[test]
fn empty_args_are_rejected() {
    let none: [CString; 0] = [];
    assert_eq!(encode_plain(0, &none, &none, &[]).unwrap_err(), EncodeError::NoArgs);
}

#[test]
fn limits_are_enforced_by_the_encoder() {
    let long = c(&"x".repeat(MAX_STR_LEN));
    assert_eq!(
        encode_plain(0, &[long], &[], &[]).unwrap_err(),
        EncodeError::StringTooLong(MAX_STR_LEN)
    );
    let many: Vec<CString> = (0..=MAX_LIST_LEN).map(|i| c(&i.to_string())).collect();
    assert_eq!(
        encode_plain(0, &many, &[], &[]).unwrap_err(),
        EncodeError::ListTooLong(MAX_LIST_LEN + 1)
    );
    let big = c(&"y".repeat(MAX_STR_LEN - 1));
    let env: Vec<CString> = (0..20).map(|_| big.clone()).collect();
    assert!(matches!(encode_plain(0, &[c("/a")], &env, &[]), Err(EncodeError::PlanTooLarge(_))));
    assert_eq!(
        encode_plain(
            0,
            &[c("/a")],
            &[],
            &[Step::Bind { source: c("/a"), target: c("/b"), flags: 1 << 20, file: false }]
        )
        .unwrap_err(),
        EncodeError::UnknownFlags(1 << 20)
    );
}

#[test]
fn reports_round_trip() {
    for r in [
        Report::BadPlan { errno: 22 },
        Report::StepFailed { step: 7, errno: 1 },
        Report::ForkFailed { errno: 11 },
        Report::ExecFailed { errno: 2 },
        Report::StartFailed { errno: 13 },
        Report::TerminalFailed { errno: 28 },
        Report::ContextFailed { stage: ContextStage::AmbientSet, errno: 1 },
    ] {
        assert_eq!(Report::decode(&r.encode()), Ok(r));
    }
    assert_eq!(Report::decode(&[9, 0, 0, 0, 0, 0, 0, 0]), Err(DecodeError::Unknown(9)));
    assert_eq!(Report::decode(&[2, 0, 0]), Err(DecodeError::Truncated));
    assert_eq!(Report::decode(&[7, 0, 99, 0, 1, 0, 0, 0]), Err(DecodeError::Unknown(7)));
}

#[test]
fn steps_describe_themselves_for_error_messages() {
    let s = sample_steps();
    assert_eq!(s[1].to_string(), "bind-mounting the rootfs /srv/rootfs on /srv/rootfs");
    assert_eq!(s[2].to_string(), "mounting proc on /proc");
    assert_eq!(s[3].to_string(), "bind-mounting /data on /mnt");
    assert_eq!(s[5].to_string(), "creating symlink /dev/ptmx -> pts/ptmx");
    assert_eq!(s[11].to_string(), "masking /proc/kcore");
    assert_eq!(s[12].to_string(), "making /proc/sys read-only");
    assert_eq!(s[13].to_string(), "setting sysctl net.ipv4.ip_forward to 1");
}

#[test]
fn rlimits_are_checked() {
    let limit = |resource, soft, hard| Rlimit { resource, soft, hard };
    assert!(Rlimits::new(&[limit(7, 1, 2), limit(3, 0, RLIM_INFINITY)]).is_some());
    assert_eq!(Rlimits::new(&[limit(7, 3, 2)]), None, "soft above hard");
    assert_eq!(Rlimits::new(&[limit(16, 1, 2)]), None, "unknown resource");
    assert_eq!(Rlimits::new(&[limit(7, 1, 2), limit(7, 1, 2)]), None, "twice");
    let bad = ProcessContext { oom_score_adj: Some(-1001), ..Default::default() };
    assert_eq!(encode_plain(0, &[c("/a")], &[], &[]).map(|_| ()), Ok(()));
    assert_eq!(encode(0, &[c("/a")], &[], &bad, &[], &[]).unwrap_err(), EncodeError::BadContext);
}

#[test]
fn sysctl_keys_must_stay_under_proc_sys() {
    for key in ["net.ipv4.ip_forward", "kernel.shmmax", "fs.mqueue.msg_max"] {
        assert!(is_sysctl_key(key.as_bytes()), "{key}");
    }
    for key in ["", ".", "net..ipv4", "net.ipv4.", "../../etc", "net/ipv4", "a.b/../c"] {
        assert!(!is_sysctl_key(key.as_bytes()), "{key}");
        let step = Step::Sysctl { key: c(key), value: c("1") };
        assert_eq!(
            encode_plain(0, &[c("/a")], &[], &[step]).unwrap_err(),
            EncodeError::BadSysctlKey
        );
    }
    let mut bytes =
        encode_plain(0, &[c("/a")], &[], &[Step::Sysctl { key: c("a.bc"), value: c("1") }])
            .unwrap();
    let at = bytes.windows(4).position(|w| w == b"a.bc").unwrap();
    bytes[at + 2] = b'/';
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadString);
}

#[test]
fn seccomp_filters_are_limited() {
    let none: [CString; 0] = [];
    let long = alloc::vec![(6u16, 0u8, 0u8, 0u32); MAX_FILTER_LEN + 1];
    let context = ProcessContext::default();
    let e = encode(0, &[c("/a")], &none, &context, &long, &[]).unwrap_err();
    assert_eq!(e, EncodeError::ListTooLong(MAX_FILTER_LEN + 1));
    let mut bytes = encode(0, &[c("/a")], &none, &context, &long[1..], &[]).unwrap();
    assert_eq!(Plan::parse(&bytes).unwrap().seccomp.len(), MAX_FILTER_LEN);
    let count_at = bytes.len() - 2 - MAX_FILTER_LEN * 8 - 2;
    bytes[count_at..count_at + 2].copy_from_slice(&(MAX_FILTER_LEN as u16 + 1).to_le_bytes());
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::TooLong);
}
