//! Resource limits (`[resources]` and the `boxr run` flags named as docker's): parsing and
//! checking the values against what the kernel accepts, independent of the cgroup version.

use std::fmt;

/// The CFS period boxr uses for `cpus` (the kernel's default, 100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest memory limit a container can start with (docker's minimum too).
pub const MIN_MEMORY: u64 = 6 << 20;

/// Checked limits; `None` leaves the kernel's default (no limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Bytes of memory.
    pub memory: Option<u64>,
    /// Memory plus swap, as docker's `--memory-swap`.
    pub memory_swap: Option<Swap>,
    /// CFS quota per [`CPU_PERIOD_US`], from fractional `cpus`.
    pub cpu_quota_us: Option<u64>,
    /// The relative CPU share, as a cgroup v1 `cpu.shares` (2..=262144) or v2 `cpu.weight`.
    pub cpu_share: Option<CpuShare>,
    /// Normalised CPU list, e.g. `0-1,3`.
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<u64>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    /// Memory plus swap may reach this many bytes.
    Limit(u64),
    Unlimited,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuShare {
    /// cgroup v1 `cpu.shares`, 2..=262144 (1024 is the default).
    Shares(u64),
    /// cgroup v2 `cpu.weight`, 1..=10000 (100 is the default).
    Weight(u64),
}

impl CpuShare {
    /// As v1 shares (runc's conversion, inverted for weights).
    pub fn shares(self) -> u64 {
        match self {
            CpuShare::Shares(s) => s,
            CpuShare::Weight(w) => 2 + (w - 1) * 262_142 / 9_999,
        }
    }
    /// As a v2 weight (runc's conversion for shares).
    pub fn weight(self) -> u64 {
        match self {
            CpuShare::Shares(s) => 1 + (s - 2) * 9_999 / 262_142,
            CpuShare::Weight(w) => w,
        }
    }
}

/// Raw values as the config or the command line give them (sizes already in bytes; `-1`
/// means unlimited where allowed).
#[derive(Debug, Clone, Default)]
pub struct RawResources {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<i64>,
    pub cpu_weight: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
}

/// Which value a problem is about (the config key; the frontend maps it to a position or flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Memory,
    MemorySwap,
    Cpus,
    CpuShares,
    CpuWeight,
    CpusetCpus,
    PidsLimit,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Memory => "memory",
            Field::MemorySwap => "memory_swap",
            Field::Cpus => "cpus",
            Field::CpuShares => "cpu_shares",
            Field::CpuWeight => "cpu_weight",
            Field::CpusetCpus => "cpuset_cpus",
            Field::PidsLimit => "pids_limit",
        })
    }
}

/// Checks raw values; `online` is the host's online CPU list (/sys/devices/system/cpu/online).
pub fn check(raw: &RawResources, online: &str) -> Result<Resources, (Field, String)> {
    let online_cpus =
        parse_cpu_list(online).map_err(|e| (Field::CpusetCpus, format!("host cpu list: {e}")))?;
    let memory = match raw.memory {
        None => None,
        Some(m) if m < MIN_MEMORY as i64 => {
            return Err((
                Field::Memory,
                format!("{m} bytes is below the minimum of 6 MiB a container needs"),
            ));
        }
        Some(m) => Some(m as u64),
    };
    let memory_swap = match raw.memory_swap {
        None => None,
        Some(-1) => Some(Swap::Unlimited),
        Some(s) => {
            let Some(memory) = memory else {
                return Err((Field::MemorySwap, "memory_swap needs memory to be set too".into()));
            };
            if s < memory as i64 {
                return Err((
                    Field::MemorySwap,
                    format!(
                        "{s} bytes is less than memory ({memory}): it limits memory plus swap (-1: unlimited swap)"
                    ),
                ));
            }
            Some(Swap::Limit(s as u64))
        }
    };
    let cpu_quota_us = match raw.cpus {
        None => None,
        Some(cpus) => {
            let max = online_cpus.len() as f64;
            if !(0.01..=max).contains(&cpus) {
                return Err((
                    Field::Cpus,
                    format!("{cpus} is out of range: from 0.01 to {max} (the host's CPUs)"),
                ));
            }
            Some((cpus * CPU_PERIOD_US as f64).round() as u64)
        }
    };
    let cpu_share = match (raw.cpu_shares, raw.cpu_weight) {
        (Some(_), Some(_)) => {
            return Err((Field::CpuWeight, "give cpu_shares or cpu_weight, not both".into()));
        }
        (Some(s), None) if (2..=262_144).contains(&s) => Some(CpuShare::Shares(s as u64)),
        (Some(s), None) => {
            return Err((Field::CpuShares, format!("{s} is out of range: from 2 to 262144")));
        }
        (None, Some(w)) if (1..=10_000).contains(&w) => Some(CpuShare::Weight(w as u64)),
        (None, Some(w)) => {
            return Err((Field::CpuWeight, format!("{w} is out of range: from 1 to 10000")));
        }
        (None, None) => None,
    };
    let cpuset_cpus = match &raw.cpuset_cpus {
        None => None,
        Some(list) => {
            let cpus = parse_cpu_list(list).map_err(|e| (Field::CpusetCpus, e))?;
            if let Some(cpu) = cpus.iter().find(|c| !online_cpus.contains(c)) {
                return Err((
                    Field::CpusetCpus,
                    format!("cpu {cpu} is not online (online: {})", online.trim()),
                ));
            }
            Some(format_cpu_list(&cpus))
        }
    };
    let pids_limit = match raw.pids_limit {
        None => None,
        Some(n) if n >= 1 => Some(n as u64),
        Some(n) => {
            return Err((
                Field::PidsLimit,
                format!("{n}: give at least 1 (leave it out for no limit)"),
            ));
        }
    };
    Ok(Resources { memory, memory_swap, cpu_quota_us, cpu_share, cpuset_cpus, pids_limit })
}

/// Parses a CPU list such as `0-2,5`: sorted, without duplicates.
pub fn parse_cpu_list(list: &str) -> Result<Vec<u32>, String> {
    let bad = || format!("invalid cpu list {list:?}: give cpus and ranges such as \"0-2,5\"");
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (u32, u32) =
            (lo.trim().parse().map_err(|_| bad())?, hi.trim().parse().map_err(|_| bad())?);
        if lo > hi || hi > 8191 {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn format_cpu_list(cpus: &[u32]) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for &c in cpus {
        match ranges.last_mut() {
            Some((_, hi)) if *hi + 1 == c => *hi = c,
            _ => ranges.push((c, c)),
        }
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|&(lo, hi)| if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") })
        .collect();
    parts.join(",")
}

/// A human size: "16M", "1.5G", "512K", "100B".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if bytes.is_multiple_of(size) {
                format!("{}{unit}", bytes / size)
            } else {
                format!("{value:.1}{unit}")
            };
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawResources {
        RawResources::default()
    }

    #[test]
    fn nothing_set_is_empty() {
        assert!(check(&raw(), "0-1").unwrap().is_empty());
    }

    #[test]
    fn values_convert() {
        let r = check(
            &RawResources {
                memory: Some(16 << 20),
                memory_swap: Some(32 << 20),
                cpus: Some(0.5),
                cpu_shares: Some(512),
                cpuset_cpus: Some("1,0".into()),
                pids_limit: Some(20),
                ..raw()
            },
            "0-1\n",
        )
        .unwrap();
        assert_eq!(r.memory, Some(16 << 20));
        assert_eq!(r.memory_swap, Some(Swap::Limit(32 << 20)));
        assert_eq!(r.cpu_quota_us, Some(50_000));
        assert_eq!(r.cpu_share, Some(CpuShare::Shares(512)));
        assert_eq!(r.cpuset_cpus.as_deref(), Some("0-1"));
        assert_eq!(r.pids_limit, Some(20));
        let unlimited = check(&RawResources { memory_swap: Some(-1), ..raw() }, "0").unwrap();
        assert_eq!(unlimited.memory_swap, Some(Swap::Unlimited));
    }

    #[test]
    fn kernel_rejected_values_are_refused() {
        let err = |r: RawResources| check(&r, "0-1").unwrap_err();
        assert_eq!(err(RawResources { memory: Some(1 << 20), ..raw() }).0, Field::Memory);
        assert_eq!(err(RawResources { memory_swap: Some(1 << 30), ..raw() }).0, Field::MemorySwap);
        assert_eq!(
            err(RawResources { memory: Some(64 << 20), memory_swap: Some(32 << 20), ..raw() }).0,
            Field::MemorySwap
        );
        assert!(err(RawResources { cpus: Some(3.0), ..raw() }).1.contains("from 0.01 to 2"));
        assert_eq!(err(RawResources { cpus: Some(0.001), ..raw() }).0, Field::Cpus);
        assert_eq!(err(RawResources { cpu_shares: Some(1), ..raw() }).0, Field::CpuShares);
        assert_eq!(err(RawResources { cpu_weight: Some(10_001), ..raw() }).0, Field::CpuWeight);
        assert_eq!(
            err(RawResources { cpu_shares: Some(2), cpu_weight: Some(2), ..raw() }).0,
            Field::CpuWeight
        );
        assert!(
            err(RawResources { cpuset_cpus: Some("0-3".into()), ..raw() })
                .1
                .contains("cpu 2 is not online (online: 0-1)")
        );
        assert!(
            err(RawResources { cpuset_cpus: Some("1-0".into()), ..raw() })
                .1
                .contains("invalid cpu list")
        );
        assert_eq!(err(RawResources { pids_limit: Some(0), ..raw() }).0, Field::PidsLimit);
    }

    #[test]
    fn cpu_shares_and_weights_convert_like_runc() {
        assert_eq!(CpuShare::Shares(2).weight(), 1);
        assert_eq!(CpuShare::Shares(262_144).weight(), 10_000);
        assert_eq!(CpuShare::Shares(1024).weight(), 39);
        assert_eq!(CpuShare::Weight(1).shares(), 2);
        assert_eq!(CpuShare::Weight(10_000).shares(), 262_144);
    }

    #[test]
    fn cpu_lists_parse_and_format() {
        assert_eq!(parse_cpu_list("0-2,5,1").unwrap(), [0, 1, 2, 5]);
        assert_eq!(format_cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(16 << 20), "16M");
        assert_eq!(human_size(1536 << 20), "1.5G");
        assert_eq!(human_size(100), "100B");
    }
}
