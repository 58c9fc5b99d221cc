//! The workload's seccomp filter: a profile in docker's JSON format (or the OCI spec's
//! `linux.seccomp` form) compiled here into a classic BPF program that boxr-init installs last
//! before the exec (and `boxr exec` before its own). `"default"` is docker's default profile
//! ([`Profile::docker_default`], `default.json`), which goes through the same compiler as a
//! user's file.
//!
//! Which entries apply depends on the workload's capabilities and the running kernel, as in
//! docker (`includes` / `excludes`), so a profile is loaded and checked once
//! ([`Profile::load`]) and compiled for a capability set ([`compile`]). Syscalls of another
//! architecture than x86_64 (i386 through `int 0x80`, x32) fail with `EPERM` whatever the
//! profile says.

mod bpf;
mod profile;
mod syscalls;

use crate::security::CapName;
use profile::{ActionName, RawFilter, RawProfile, RawSyscall};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

pub use profile::Op;

/// One BPF instruction (`struct sock_filter`).
pub type Instruction = boxr_plan::BpfInstruction;

/// What the filter does with a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// Fail with this errno.
    Errno(u16),
    KillThread,
    KillProcess,
    /// `SIGSYS`.
    Trap,
    /// Notify a ptrace tracer, with this value; fail with `ENOSYS` without one.
    Trace(u16),
    /// Allow and log.
    Log,
}

impl Action {
    /// The filter's return value (`SECCOMP_RET_*` with its data).
    fn ret(self) -> u32 {
        match self {
            Action::KillProcess => 0x8000_0000,
            Action::KillThread => 0,
            Action::Trap => 0x0003_0000,
            Action::Errno(errno) => 0x0005_0000 | u32::from(errno),
            Action::Trace(data) => 0x7ff0_0000 | u32::from(data),
            Action::Log => 0x7ffc_0000,
            Action::Allow => 0x7fff_0000,
        }
    }
}

/// An argument check: `args[index] OP value` (`MaskedEq`: `args[index] & value == value_two`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// A kernel version, `major.minor`.
type Kernel = (u32, u32);

/// An entry's `includes` or `excludes`.
#[derive(Debug, Default)]
struct Filter {
    /// Capabilities, as a mask.
    caps: u64,
    /// Whether `arches` names ours; `None` when it names none.
    our_arch: Option<bool>,
    min_kernel: Option<Kernel>,
}

/// A checked `syscalls` entry: its names resolved to x86_64 numbers.
#[derive(Debug)]
struct Rule {
    syscalls: Vec<u32>,
    action: Action,
    conditions: Vec<Condition>,
    includes: Filter,
    excludes: Filter,
}

impl Rule {
    /// Whether the entry applies, as docker decides it: not when `excludes` names our
    /// architecture or a capability the workload has, or its `minKernel` is reached; only when
    /// the workload has every capability of `includes`, `includes.arches` (if any) names ours
    /// and the kernel is at least its `minKernel`.
    fn applies(&self, caps: u64, kernel: Kernel) -> bool {
        let (inc, exc) = (&self.includes, &self.excludes);
        let excluded = exc.our_arch == Some(true)
            || caps & exc.caps != 0
            || exc.min_kernel.is_some_and(|min| kernel >= min);
        let included = inc.our_arch != Some(false)
            && caps & inc.caps == inc.caps
            && inc.min_kernel.is_none_or(|min| kernel >= min);
        !excluded && included
    }
}

/// A loaded and checked profile, ready to compile for a capability set.
#[derive(Debug)]
pub struct Profile {
    /// Names it in messages: its file, or "the default profile".
    name: String,
    default: Action,
    rules: Vec<Rule>,
    warnings: Vec<String>,
}

/// How boxr names x86_64 in profiles: docker's, Go's and libseccomp's spellings.
const OUR_ARCH: [&str; 3] = ["amd64", "x86_64", "SCMP_ARCH_X86_64"];
const EPERM: u16 = 1;
/// The seccomp filter flags that change nothing for boxr: the workload's process is
/// single-threaded when the filter is installed.
const HARMLESS_FLAGS: [&str; 1] = ["SECCOMP_FILTER_FLAG_TSYNC"];

impl Profile {
    /// docker's default profile (`default.json`, for x86_64).
    pub fn docker_default() -> Profile {
        Profile::parse("the default profile", include_str!("default.json"))
            .unwrap_or_else(|e| panic!("the built-in default.json: {e}"))
    }

    /// Reads and checks the profile in `file`. Errors name the file, with line and column
    /// for JSON errors.
    pub fn load(file: &Path) -> Result<Profile, String> {
        let text = fs::read_to_string(file).map_err(|e| {
            format!("cannot read {}: {}", file.display(), crate::errno::describe(&e))
        })?;
        Profile::parse(&file.display().to_string(), &text)
    }

    /// Checks profile `text`, named `name` in errors and warnings.
    pub fn parse(name: &str, text: &str) -> Result<Profile, String> {
        let raw: RawProfile = serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            let position = format!(" at line {} column {}", e.line(), e.column());
            let message = message.strip_suffix(&position).unwrap_or(&message);
            format!("{name}:{}:{}: {message}", e.line(), e.column())
        })?;
        Checker { name, warnings: Vec::new(), unknown: Vec::new() }.check(raw)
    }

    /// What loading it found worth a warning: unknown syscall names, flags boxr ignores. Each
    /// names the profile.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

struct Checker<'a> {
    name: &'a str,
    warnings: Vec<String>,
    /// Syscall names that are not x86_64's, in order, once each.
    unknown: Vec<String>,
}

impl Checker<'_> {
    fn err(&self, message: String) -> String {
        format!("{}: {message}", self.name)
    }

    fn check(mut self, raw: RawProfile) -> Result<Profile, String> {
        if raw.listener_path.is_some_and(|p| !p.is_empty()) {
            return Err(self.err("listenerPath: boxr has no seccomp listener support".into()));
        }
        // The architectures, as docker computes them: `architectures`, and ours with its
        // sub-architectures from `archMap`. None named: the native one.
        let mut arches = raw.architectures.unwrap_or_default();
        for map in raw.arch_map.unwrap_or_default() {
            if OUR_ARCH.contains(&map.architecture.as_str()) {
                arches.push(map.architecture);
                arches.extend(map.sub_architectures.unwrap_or_default());
            }
        }
        if !arches.is_empty() && !arches.iter().any(|a| OUR_ARCH.contains(&a.as_str())) {
            return Err(self.err(format!(
                "the profile is for {} only, not x86_64 (SCMP_ARCH_X86_64)",
                arches.join(", ")
            )));
        }
        for flag in raw.flags.unwrap_or_default() {
            if !HARMLESS_FLAGS.contains(&flag.as_str()) {
                self.warnings.push(self.err(format!("flag {flag:?} is not supported: ignored")));
            }
        }
        let default = self.action(raw.default_action, raw.default_errno_ret, "defaultErrnoRet")?;
        let mut rules = Vec::new();
        for (i, entry) in raw.syscalls.unwrap_or_default().into_iter().enumerate() {
            rules.push(self.rule(entry, i)?);
        }
        if !self.unknown.is_empty() {
            let names = self.unknown.join(", ");
            self.warnings.push(self.err(format!("unknown syscalls skipped: {names}")));
        }
        Ok(Profile { name: self.name.to_string(), default, rules, warnings: self.warnings })
    }

    fn action(&self, name: ActionName, errno: Option<u16>, field: &str) -> Result<Action, String> {
        if let Some(errno) = errno {
            if !matches!(name, ActionName::Errno | ActionName::Trace) {
                return Err(
                    self.err(format!("{field} is only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE"))
                );
            }
            if errno > 4095 {
                return Err(self.err(format!("{field}: {errno} is not an errno (at most 4095)")));
            }
        }
        let errno = errno.unwrap_or(EPERM);
        Ok(match name {
            ActionName::Allow => Action::Allow,
            ActionName::Errno => Action::Errno(errno),
            ActionName::KillThread => Action::KillThread,
            ActionName::KillProcess => Action::KillProcess,
            ActionName::Trap => Action::Trap,
            ActionName::Trace => Action::Trace(errno),
            ActionName::Log => Action::Log,
        })
    }

    fn rule(&mut self, entry: RawSyscall, i: usize) -> Result<Rule, String> {
        let at = format!("syscalls[{i}]");
        let names = match (entry.name, entry.names) {
            (Some(_), Some(_)) => {
                return Err(self.err(format!("{at}: give either \"name\" or \"names\", not both")));
            }
            (Some(name), None) => vec![name],
            (None, names) => names.unwrap_or_default(),
        };
        let mut syscalls = Vec::with_capacity(names.len());
        for name in names {
            match syscalls::number(&name) {
                Some(nr) => syscalls.push(nr),
                None if !self.unknown.contains(&name) => self.unknown.push(name),
                None => {}
            }
        }
        let action = self.action(entry.action, entry.errno_ret, &format!("{at}.errnoRet"))?;
        let mut conditions = Vec::new();
        for (j, arg) in entry.args.unwrap_or_default().into_iter().enumerate() {
            if arg.index > 5 {
                return Err(self.err(format!(
                    "{at}.args[{j}].index: {} is not an argument (0 to 5)",
                    arg.index
                )));
            }
            conditions.push(Condition {
                index: arg.index,
                op: arg.op,
                value: arg.value,
                value_two: arg.value_two,
            });
        }
        Ok(Rule {
            syscalls,
            action,
            conditions,
            includes: self.filter(entry.includes, &format!("{at}.includes"))?,
            excludes: self.filter(entry.excludes, &format!("{at}.excludes"))?,
        })
    }

    fn filter(&self, raw: Option<RawFilter>, at: &str) -> Result<Filter, String> {
        let raw = raw.unwrap_or_default();
        let mut caps = 0;
        for name in raw.caps.unwrap_or_default() {
            match CapName::parse(&name) {
                Ok(CapName::One(n)) => caps |= 1 << n,
                _ => {
                    return Err(self.err(format!(
                        "{at}.caps: unknown capability {name:?}: give a name such as \"CAP_SYS_ADMIN\""
                    )));
                }
            }
        }
        let arches = raw.arches.unwrap_or_default();
        let our_arch =
            (!arches.is_empty()).then(|| arches.iter().any(|a| OUR_ARCH.contains(&a.as_str())));
        let min_kernel = match raw.min_kernel {
            Some(v) => Some(parse_kernel(&v).ok_or_else(|| {
                self.err(format!("{at}.minKernel: {v:?} is not a kernel version such as \"5.10\""))
            })?),
            None => None,
        };
        Ok(Filter { caps, our_arch, min_kernel })
    }
}

/// `major.minor` of "5.10", "6.1.0-18-amd64" or "4.8"; the minor may be left out ("6").
fn parse_kernel(text: &str) -> Option<Kernel> {
    let version = text.split(|c: char| !c.is_ascii_digit() && c != '.').next()?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = match parts.next() {
        Some(m) => m.parse().ok()?,
        None => 0,
    };
    Some((major, minor))
}

/// The running kernel's version ((0, 0) if its release cannot be read).
fn running_kernel() -> Kernel {
    let uname = rustix::system::uname();
    parse_kernel(&uname.release().to_string_lossy()).unwrap_or((0, 0))
}

/// The filter for a workload with the capability set `caps` (bit N: capability N) on the
/// running kernel. Errors name the profile.
pub fn compile(profile: &Profile, caps: u64) -> Result<Vec<Instruction>, String> {
    compile_for(profile, caps, running_kernel())
}

/// A syscall's rules: the conditional ones in profile order, and its unconditional action.
type SyscallRules = (Vec<(Vec<Condition>, Action)>, Option<Action>);

fn compile_for(profile: &Profile, caps: u64, kernel: Kernel) -> Result<Vec<Instruction>, String> {
    let mut per_syscall: BTreeMap<u32, SyscallRules> = BTreeMap::new();
    for rule in profile.rules.iter().filter(|r| r.applies(caps, kernel)) {
        for &nr in &rule.syscalls {
            let (conditional, unconditional) = per_syscall.entry(nr).or_default();
            if !rule.conditions.is_empty() {
                conditional.push((rule.conditions.clone(), rule.action));
            } else if unconditional.is_some_and(|a| a != rule.action) {
                return Err(format!(
                    "{}: syscall {} has two entries without arguments with different actions",
                    profile.name,
                    syscalls::name(nr)
                ));
            } else {
                *unconditional = Some(rule.action);
            }
        }
    }
    let (mut simple, mut blocks) = (Vec::new(), Vec::new());
    for (nr, (rules, unconditional)) in per_syscall {
        let fallback = unconditional.unwrap_or(profile.default);
        if !rules.is_empty() {
            blocks.push(bpf::Block { nr, rules, fallback });
        } else if fallback != profile.default {
            simple.push((nr, fallback));
        }
    }
    // By action (the most common first), then by number.
    let mut count: BTreeMap<u32, usize> = BTreeMap::new();
    for (_, action) in &simple {
        *count.entry(action.ret()).or_default() += 1;
    }
    simple.sort_by_key(|(nr, action)| (std::cmp::Reverse(count[&action.ret()]), action.ret(), *nr));
    let program = bpf::generate(&simple, &blocks, profile.default);
    if program.len() > bpf::MAX_INSTRUCTIONS {
        return Err(format!(
            "{}: the compiled filter has {} instructions, more than the kernel's limit of {}",
            profile.name,
            program.len(),
            bpf::MAX_INSTRUCTIONS
        ));
    }
    Ok(program)
}

#[cfg(test)]
mod tests;
