//! `boxr ps` and `boxr inspect`: reading container state for people and for programs.

use crate::lifecycle::refresh;
use crate::state::{ContainerState, Status, Store};
use anyhow::Result;
use serde::Serialize;
use std::io::Write;

/// Lists containers (running ones; `all` adds the rest) as a table or JSON.
pub fn ps(store: &Store, all: bool, json: bool) -> Result<()> {
    let states: Vec<ContainerState> = store
        .list()?
        .into_iter()
        .map(|s| refresh(store, s))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|s| all || s.status != Status::Exited)
        .collect();
    if json {
        print_json(&states)
    } else {
        std::io::stdout().lock().write_all(table(&states).as_bytes())?;
        Ok(())
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Prints the state of each named container as a JSON array.
pub fn inspect(store: &Store, names: &[String]) -> Result<()> {
    let states = names
        .iter()
        .map(|n| store.find(n).and_then(|s| refresh(store, s)))
        .collect::<Result<Vec<_>>>()?;
    print_json(&states)
}

fn table(states: &[ContainerState]) -> String {
    let rows: Vec<[String; 6]> = states
        .iter()
        .map(|s| {
            [
                s.short_id().to_string(),
                s.name.clone(),
                s.init
                    .filter(|_| s.status == Status::Running)
                    .map_or("-".into(), |i| i.pid.to_string()),
                s.status_text(),
                s.created.age(),
                s.command.join(" "),
            ]
        })
        .collect();
    let header = ["CONTAINER ID", "NAME", "PID", "STATUS", "CREATED", "COMMAND"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let last = row.len() - 1;
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i == last {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}   "));
            }
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ProcessId;

    #[test]
    fn table_aligns_columns() {
        let state = ContainerState {
            status: Status::Running,
            init: Some(ProcessId { pid: 4242, start_time: 1 }),
            command: vec!["/bin/httpd".into(), "-f".into()],
            ..ContainerState::for_test("0123456789abcdef".repeat(4), "web".into())
        };
        let exited = ContainerState {
            status: Status::Exited,
            exit_code: Some(3),
            name: "a-longer-name".into(),
            ..state.clone()
        };
        let t = table(&[state, exited]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "CONTAINER ID   NAME            PID    STATUS       CREATED         COMMAND"
        );
        assert_eq!(
            lines[1],
            "0123456789ab   web             4242   running      0 seconds ago   /bin/httpd -f"
        );
        assert_eq!(
            lines[2],
            "0123456789ab   a-longer-name   -      exited (3)   0 seconds ago   /bin/httpd -f"
        );
    }
}
