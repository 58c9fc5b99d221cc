//! The boxr frontend as a library: the binary in main.rs is a thin command line over it.
//!
//! A run goes config → plan → spawn: [`config`] reads and checks the TOML file, [`plan`]
//! compiles it into the steps boxr-init executes, [`spawn`] clones the init into its
//! namespaces and hands it the plan, and [`run`] supervises the foreground container.

pub mod config;
pub mod elf;
pub mod errno;
pub mod lifecycle;
pub mod paths;
pub mod plan;
pub mod run;
pub mod spawn;
pub mod state;
pub mod time;
