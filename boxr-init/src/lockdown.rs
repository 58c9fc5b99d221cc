//! The init is not the workload's to inspect or borrow: it is made non-dumpable before the
//! fork, and once the workload is forked it keeps only the capability it still uses.
//!
//! Non-dumpable, the init's `/proc/1/{mem,exe,fd,environ,...}` belong to root and
//! `ptrace`/`process_vm_*`/`pidfd_getfd` on it need `CAP_SYS_PTRACE` over its user namespace,
//! even for a process of its own uid. The workload's exec gives the workload a dumpable flag
//! of its own again.

use rustix::io::{Errno, Result};
use rustix::process::{DumpableBehavior, set_dumpable_behavior};
use rustix::thread::{CapabilitySet, CapabilitySets, capabilities, set_capabilities};
use rustix::thread::{capability_is_in_bounding_set, remove_capability_from_bounding_set};

/// What the init needs after the fork: forwarding signals to a workload (or its orphans) that
/// may run as another user. Waiting and reaping need none.
const KEPT: CapabilitySet = CapabilitySet::KILL;

/// Before the fork, so that the workload never sees a dumpable init.
pub fn make_non_dumpable() {
    // Cannot fail: the only error is `EINVAL` for a value other than 0 or 1.
    let _ = set_dumpable_behavior(DumpableBehavior::NotDumpable);
}

/// After the fork: the bounding set, then the effective and permitted sets, down to [`KEPT`]
/// (of what the init has); no inheritable ones.
pub fn drop_capabilities() -> Result<()> {
    for cap in (0..u64::BITS).map(|cap| CapabilitySet::from_bits_retain(1 << cap)) {
        match capability_is_in_bounding_set(cap) {
            Ok(true) if !KEPT.contains(cap) => match remove_capability_from_bounding_set(cap) {
                // Without CAP_SETPCAP nothing can be dropped from it; it only limits what an
                // exec could gain, and the init never execs again.
                Err(Errno::PERM) => break,
                dropped => dropped?,
            },
            Ok(_) => {}
            // Past the kernel's last capability: so are all that follow.
            Err(Errno::INVAL) => break,
            Err(e) => return Err(e),
        }
    }
    let kept = capabilities(None)?.permitted & KEPT;
    set_capabilities(
        None,
        CapabilitySets { effective: kept, permitted: kept, inheritable: CapabilitySet::empty() },
    )
}
