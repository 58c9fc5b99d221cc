//! The runtime the C library would otherwise provide: the entry point, the memory functions
//! the compiler emits calls to, and the panic handler.

use crate::report::SETUP_FAILED;
use crate::runtime::exit_group;
use core::arch::{asm, global_asm};
use core::panic::PanicInfo;
use rustix::io::write;
use rustix::stdio::stderr;

// The kernel starts us with the argument block at the stack pointer and no frame. The init
// takes no arguments: clear the frame pointer, align the stack and enter Rust.
global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym start_init,
);

extern "C" fn start_init() -> ! {
    crate::main()
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    // SAFETY: fd 2 is the inherited stderr, or closed (then the write fails with EBADF).
    let _ = write(unsafe { stderr() }, b"boxr-init: internal error\n");
    exit_group(SETUP_FAILED)
}

/// Named by the unwind tables of the precompiled `core`. With `panic = "abort"` nothing
/// unwinds, so nothing calls it; it only has to link.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

// The memory functions use string instructions or plain loops that are checked not to be
// turned back into calls to themselves.

#[unsafe(no_mangle)]
unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller passes `n` writable bytes at `dest` and readable ones at `src`; the
    // direction flag is clear, as the ABI guarantees.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
            options(nostack, preserves_flags));
    }
    dest
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: copying forwards never overwrites a byte before it is read (dest is below
        // src, or the regions are disjoint).
        return unsafe { memcpy(dest, src, n) };
    }
    // SAFETY: dest overlaps the end of src: copy backwards, from the last byte, then restore
    // the direction flag as the ABI requires.
    unsafe {
        asm!("std", "rep movsb", "cld", inout("rcx") n => _, inout("rdi") dest.add(n - 1) => _,
            inout("rsi") src.add(n - 1) => _, options(nostack));
    }
    dest
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memset(dest: *mut u8, byte: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller passes `n` writable bytes at `dest`; the direction flag is clear.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") byte as u8,
            options(nostack, preserves_flags));
    }
    dest
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller passes `n` readable bytes at `a` and at `b`.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

#[unsafe(no_mangle)]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller passes a NUL-terminated string, so every byte up to the NUL is readable.
    while unsafe { *s.add(n) } != 0 {
        n += 1;
    }
    n
}
