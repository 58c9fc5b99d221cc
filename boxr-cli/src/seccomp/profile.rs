//! The JSON profile format: docker's (`profiles/seccomp/default.json`, with `archMap`,
//! `includes`/`excludes` and `comment`) and the OCI runtime spec's `linux.seccomp` object, which
//! is its subset. Fields are camelCase as in both; unknown fields are errors, so that a typo
//! cannot silently weaken a profile.

use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProfile {
    pub default_action: ActionName,
    pub default_errno_ret: Option<u16>,
    pub architectures: Option<Vec<String>>,
    pub arch_map: Option<Vec<ArchMap>>,
    pub flags: Option<Vec<String>>,
    /// OCI: the socket of a `SCMP_ACT_NOTIFY` listener, which boxr does not support.
    pub listener_path: Option<String>,
    /// OCI: data for that listener; accepted, unused.
    #[serde(rename = "listenerMetadata")]
    _listener_metadata: Option<IgnoredAny>,
    pub syscalls: Option<Vec<RawSyscall>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    pub sub_architectures: Option<Vec<String>>,
}

/// One entry of `syscalls`: the action for these syscalls, when the arguments match.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSyscall {
    /// docker's legacy single name.
    pub name: Option<String>,
    pub names: Option<Vec<String>>,
    pub action: ActionName,
    pub errno_ret: Option<u16>,
    pub args: Option<Vec<RawArg>>,
    /// A note for the reader; accepted, unused.
    #[serde(rename = "comment")]
    _comment: Option<IgnoredAny>,
    pub includes: Option<RawFilter>,
    pub excludes: Option<RawFilter>,
}

/// `includes` / `excludes`: when an entry applies.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawFilter {
    pub caps: Option<Vec<String>>,
    pub arches: Option<Vec<String>>,
    pub min_kernel: Option<String>,
}

/// An argument comparison.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawArg {
    pub index: u8,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: Op,
}

/// An action's name (`SCMP_ACT_*`); its errno comes from `errnoRet`.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(try_from = "String")]
pub enum ActionName {
    Allow,
    Errno,
    KillThread,
    KillProcess,
    Trap,
    Trace,
    Log,
}

const ACTIONS: [(&str, ActionName); 8] = [
    ("SCMP_ACT_ALLOW", ActionName::Allow),
    ("SCMP_ACT_ERRNO", ActionName::Errno),
    ("SCMP_ACT_KILL", ActionName::KillThread),
    ("SCMP_ACT_KILL_THREAD", ActionName::KillThread),
    ("SCMP_ACT_KILL_PROCESS", ActionName::KillProcess),
    ("SCMP_ACT_TRAP", ActionName::Trap),
    ("SCMP_ACT_TRACE", ActionName::Trace),
    ("SCMP_ACT_LOG", ActionName::Log),
];

impl TryFrom<String> for ActionName {
    type Error = String;
    fn try_from(name: String) -> Result<ActionName, String> {
        if name == "SCMP_ACT_NOTIFY" {
            return Err("SCMP_ACT_NOTIFY is not supported: boxr has no seccomp listener".into());
        }
        lookup(&ACTIONS, &name, "action")
    }
}

/// An argument comparison (`SCMP_CMP_*`), on the whole 64-bit argument, unsigned.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(try_from = "String")]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `(arg & value) == valueTwo`.
    MaskedEq,
}

const OPS: [(&str, Op); 7] = [
    ("SCMP_CMP_EQ", Op::Eq),
    ("SCMP_CMP_NE", Op::Ne),
    ("SCMP_CMP_LT", Op::Lt),
    ("SCMP_CMP_LE", Op::Le),
    ("SCMP_CMP_GT", Op::Gt),
    ("SCMP_CMP_GE", Op::Ge),
    ("SCMP_CMP_MASKED_EQ", Op::MaskedEq),
];

impl TryFrom<String> for Op {
    type Error = String;
    fn try_from(name: String) -> Result<Op, String> {
        lookup(&OPS, &name, "comparison")
    }
}

/// The value `table` names `name`, or an error listing the names.
fn lookup<T: Copy>(table: &[(&str, T)], name: &str, what: &str) -> Result<T, String> {
    table.iter().find(|(n, _)| *n == name).map(|&(_, value)| value).ok_or_else(|| {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        format!("unknown {what} {name:?}: give one of {}", names.join(", "))
    })
}
