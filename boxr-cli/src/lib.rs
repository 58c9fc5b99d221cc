//! The boxr frontend as a library: the binary in main.rs is a thin command line over it.
//!
//! A run goes config → plan → spawn: [`config`] reads and checks the TOML file, [`plan`]
//! compiles it into the steps boxr-init executes, [`spawn`] clones the init into its
//! namespaces and hands it the plan, [`supervise`] watches it. [`run`] ties them together with
//! the container's [`state`] and [`storage`], in the foreground or from a detached monitor;
//! [`lifecycle`], [`ps`] and [`logs`] act on existing containers.

pub mod cgroups;
pub mod config;
pub mod devices;
pub mod elf;
pub mod errno;
pub mod exec;
pub mod ipam;
pub mod lifecycle;
pub mod logs;
pub mod netlink;
pub mod network;
pub mod nft;
pub mod paths;
pub mod plan;
pub mod ports;
pub mod ps;
pub mod resources;
pub mod run;
pub mod seccomp;
pub mod security;
pub mod spawn;
pub mod state;
pub mod stats;
pub mod storage;
pub mod supervise;
pub mod time;
pub mod tty;
pub mod userns;
pub mod users;
