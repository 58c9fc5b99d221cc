//! Executing the workload in the forked child: `execve` of `args[0]`, searched on `PATH` when it
//! holds no `/`, with argv and envp built on the stack.

use crate::cbuf::CBuf;
use crate::runtime::execve;
use boxr_plan::{MAX_LIST_LEN, MAX_STR_LEN, Plan, StrList};
use core::ffi::CStr;
use core::ptr;
use rustix::io::Errno;

const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Replaces this process with the workload; returns only on failure, with `ENOENT` when no
/// candidate was found and otherwise the error that stopped the search (e.g. `EACCES`).
pub fn exec_workload(plan: &Plan<'_>) -> Errno {
    let mut argv = [ptr::null(); MAX_LIST_LEN + 1];
    let mut envp = [ptr::null(); MAX_LIST_LEN + 1];
    fill(&mut argv, &plan.args);
    fill(&mut envp, &plan.env);
    let exec = |path: &CStr| {
        // SAFETY: argv and envp are NULL-terminated arrays (one slot more than any list has) of
        // pointers to the plan's NUL-terminated strings, which outlive the call.
        unsafe { execve(path, argv.as_ptr(), envp.as_ptr()) }
    };
    let Some(name) = plan.args.iter().next() else { return Errno::NOENT };
    if name.to_bytes().contains(&b'/') {
        return exec(name);
    }
    // Like execvp: a missing or inaccessible candidate moves on to the next directory.
    let mut error = Errno::NOENT;
    for dir in search_path(&plan.env).split(|&b| b == b':') {
        let mut candidate = CBuf::<{ 2 * MAX_STR_LEN }>::new();
        // An empty entry is the working directory. Cannot overflow: both parts come from strings
        // of at most MAX_STR_LEN bytes.
        if !dir.is_empty() && (candidate.push(dir).is_err() || candidate.push(b"/").is_err()) {
            continue;
        }
        if candidate.push(name.to_bytes()).is_err() {
            continue;
        }
        match exec(candidate.as_cstr()) {
            Errno::NOENT | Errno::NOTDIR => {}
            Errno::ACCESS => error = Errno::ACCESS,
            other => return other,
        }
    }
    error
}

fn fill(slots: &mut [*const u8], list: &StrList<'_>) {
    for (slot, s) in slots.iter_mut().zip(list) {
        *slot = s.as_ptr().cast();
    }
}

/// The `PATH` of the workload's environment, or the default.
fn search_path<'a>(env: &StrList<'a>) -> &'a [u8] {
    env.iter().find_map(|var| var.to_bytes().strip_prefix(b"PATH=")).unwrap_or(DEFAULT_PATH)
}
