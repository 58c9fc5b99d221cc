extern crate std;

use super::*;
use alloc::ffi::CString;
use alloc::vec::Vec;
use std::string::ToString;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
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
    ]
}

#[test]
fn plan_round_trips() {
    let steps = sample_steps();
    let args = [c("/bin/echo"), c("hi there")];
    let env = [c("PATH=/bin"), c("A=b")];
    let bytes = encode(flags::SUBREAPER | flags::TTY, &args, &env, &steps).unwrap();
    let plan = Plan::parse(&bytes).unwrap();
    assert_eq!(plan.flags, flags::SUBREAPER | flags::TTY);
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
    }
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = encode(0, &[c("/bin/true")], &[], &sample_steps()).unwrap();
    for len in 0..bytes.len() {
        assert!(Plan::parse(&bytes[..len]).is_err(), "prefix of {len} bytes was accepted");
    }
}

#[test]
fn bad_header_is_rejected() {
    let mut bytes = encode(0, &[c("/bin/true")], &[], &[]).unwrap();
    assert!(Plan::parse(&bytes).is_ok());
    bytes[4] = 99;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::Version(99));
    bytes[0] = b'X';
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadMagic);
}

#[test]
fn unknown_tag_and_flags_are_rejected() {
    let mut bytes = encode(0, &[c("/bin/true")], &[], &[Step::PivotRoot]).unwrap();
    *bytes.last_mut().unwrap() = 200;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::Unknown(200));
    let mut bytes = encode(0, &[c("/bin/true")], &[], &[]).unwrap();
    bytes.push(7);
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::TrailingBytes);
    let mut bytes = encode(0, &[c("/bin/true")], &[], &[]).unwrap();
    bytes[5] = 0x80;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::Unknown(0x80));
}

#[test]
fn interior_nul_is_rejected() {
    let mut bytes = encode(0, &[c("/bin/ab")], &[], &[]).unwrap();
    let at = bytes.iter().position(|&b| b == b'a').unwrap();
    bytes[at] = 0;
    assert_eq!(Plan::parse(&bytes).unwrap_err(), DecodeError::BadString);
}

#[test]
fn empty_args_are_rejected() {
    let none: [CString; 0] = [];
    assert_eq!(encode(0, &none, &none, &[]).unwrap_err(), EncodeError::NoArgs);
}

#[test]
fn limits_are_enforced_by_the_encoder() {
    let long = c(&"x".repeat(MAX_STR_LEN));
    assert_eq!(encode(0, &[long], &[], &[]).unwrap_err(), EncodeError::StringTooLong(MAX_STR_LEN));
    let many: Vec<CString> = (0..=MAX_LIST_LEN).map(|i| c(&i.to_string())).collect();
    assert_eq!(encode(0, &many, &[], &[]).unwrap_err(), EncodeError::ListTooLong(MAX_LIST_LEN + 1));
    let big = c(&"y".repeat(MAX_STR_LEN - 1));
    let env: Vec<CString> = (0..20).map(|_| big.clone()).collect();
    assert!(matches!(encode(0, &[c("/a")], &env, &[]), Err(EncodeError::PlanTooLarge(_))));
    assert_eq!(
        encode(
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
    ] {
        assert_eq!(Report::decode(&r.encode()), Ok(r));
    }
    assert_eq!(Report::decode(&[9, 0, 0, 0, 0, 0, 0, 0]), Err(DecodeError::Unknown(9)));
    assert_eq!(Report::decode(&[2, 0, 0]), Err(DecodeError::Truncated));
}

#[test]
fn steps_describe_themselves_for_error_messages() {
    let s = sample_steps();
    assert_eq!(s[1].to_string(), "bind-mounting the rootfs /srv/rootfs on /srv/rootfs");
    assert_eq!(s[2].to_string(), "mounting proc on /proc");
    assert_eq!(s[3].to_string(), "bind-mounting /data on /mnt");
    assert_eq!(s[5].to_string(), "creating symlink /dev/ptmx -> pts/ptmx");
}
