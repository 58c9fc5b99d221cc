//! `boxr stats`: containers' memory, CPU and pids use, read from their cgroups on either
//! hierarchy. CPU percentages come from two samples one interval apart.

use crate::cgroups::Stats;
use crate::lifecycle::refresh;
use crate::ps::print_json;
use crate::resources::human_size;
use crate::state::{ContainerState, Status, Store};
use anyhow::{Result, bail};
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Serialize)]
struct Row {
    id: String,
    name: String,
    cpu_percent: Option<f64>,
    cpu_time_ns: Option<u64>,
    memory_usage: Option<u64>,
    memory_limit: Option<u64>,
    pids_current: Option<u64>,
    pids_limit: Option<u64>,
}

/// Prints the stats of the named containers (all running ones if none are named): once with
/// `no_stream`, else every second until none of them runs.
pub fn stats(store: &Store, names: &[String], no_stream: bool, json: bool) -> Result<()> {
    let states = select(store, names)?;
    let mut before = sample(&states);
    loop {
        std::thread::sleep(INTERVAL);
        let now = sample(&states);
        let rows: Vec<Row> =
            states.iter().zip(&before).zip(&now).map(|((s, b), n)| row(s, b, n)).collect();
        if json {
            print_json(&rows)?;
        } else {
            std::io::stdout().lock().write_all(table(&rows).as_bytes())?;
        }
        let running = states
            .iter()
            .any(|s| refresh(store, s.clone()).is_ok_and(|s| s.status == Status::Running));
        if no_stream || !running {
            return Ok(());
        }
        println!();
        before = now;
    }
}

fn select(store: &Store, names: &[String]) -> Result<Vec<ContainerState>> {
    if names.is_empty() {
        let states: Vec<_> = store
            .list()?
            .into_iter()
            .filter_map(|s| refresh(store, s).ok())
            .filter(|s| s.status == Status::Running && s.cgroup.is_some())
            .collect();
        return Ok(states);
    }
    let mut states = Vec::new();
    for name in names {
        let state = refresh(store, store.find(name)?)?;
        if state.cgroup.is_none() {
            let why = match state.status {
                Status::Created => "it was never started",
                _ => "boxr run without root creates none",
            };
            bail!("container {} has no cgroup to read statistics from: {why}", state.name);
        }
        states.push(state);
    }
    Ok(states)
}

fn sample(states: &[ContainerState]) -> Vec<(Instant, Stats)> {
    states
        .iter()
        .map(|s| (Instant::now(), s.cgroup.as_ref().map(|c| c.stats()).unwrap_or_default()))
        .collect()
}

fn row(state: &ContainerState, before: &(Instant, Stats), now: &(Instant, Stats)) -> Row {
    let wall = now.0.duration_since(before.0).as_nanos() as f64;
    let cpu_percent = match (before.1.cpu_usage_ns, now.1.cpu_usage_ns) {
        (Some(b), Some(n)) if wall > 0.0 => Some(n.saturating_sub(b) as f64 / wall * 100.0),
        _ => None,
    };
    Row {
        id: state.short_id().to_string(),
        name: state.name.clone(),
        cpu_percent,
        cpu_time_ns: now.1.cpu_usage_ns,
        memory_usage: now.1.memory_usage,
        memory_limit: now.1.memory_limit,
        pids_current: now.1.pids_current,
        pids_limit: now.1.pids_limit,
    }
}

fn table(rows: &[Row]) -> String {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    let mut text = format!(
        "{:<12}   {:<20}   {:>7}   {:>21}   {:>6}   {:>9}\n",
        "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"
    );
    for r in rows {
        let memory = format!(
            "{} / {}",
            or_dash(r.memory_usage.map(human_size)),
            r.memory_limit.map_or_else(|| "no limit".to_string(), human_size)
        );
        let memory_percent = match (r.memory_usage, r.memory_limit) {
            (Some(u), Some(l)) if l > 0 => format!("{:.1}%", u as f64 / l as f64 * 100.0),
            _ => "-".to_string(),
        };
        let pids = format!(
            "{}/{}",
            or_dash(r.pids_current.map(|p| p.to_string())),
            r.pids_limit.map_or_else(|| "max".to_string(), |l| l.to_string())
        );
        let cpu = or_dash(r.cpu_percent.map(|c| format!("{c:.1}%")));
        text.push_str(&format!(
            "{:<12}   {:<20}   {cpu:>7}   {memory:>21}   {memory_percent:>6}   {pids:>9}\n",
            r.id, r.name
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_usage_against_limits() {
        let row = Row {
            id: "0123456789ab".into(),
            name: "web".into(),
            cpu_percent: Some(49.96),
            cpu_time_ns: Some(1),
            memory_usage: Some(8 << 20),
            memory_limit: Some(16 << 20),
            pids_current: Some(3),
            pids_limit: None,
        };
        let t = table(&[row]);
        let line = t.lines().nth(1).unwrap();
        assert!(line.starts_with("0123456789ab   web"), "{line}");
        assert!(
            line.contains("50.0%") && line.contains("8M / 16M") && line.contains("3/max"),
            "{line}"
        );
    }

    #[test]
    fn cpu_percent_is_cpu_time_over_wall_time() {
        let t0 = Instant::now();
        let stats = |ns| Stats { cpu_usage_ns: Some(ns), ..Stats::default() };
        let state = ContainerState::for_test("a".repeat(64), "x".into());
        let r =
            row(&state, &(t0, stats(0)), &(t0 + Duration::from_millis(200), stats(100_000_000)));
        assert_eq!(r.cpu_percent.map(|c| c.round()), Some(50.0));
    }
}
