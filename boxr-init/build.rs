//! Links boxr-init as a static, non-PIE executable without the C runtime: `rt.rs` provides
//! `_start` and the memory functions. (A static-pie would need a self-relocating `_start`.)
fn main() {
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
