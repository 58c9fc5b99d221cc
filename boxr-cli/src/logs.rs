//! `boxr logs`: the captured stdout and stderr of a detached container.

use crate::errno::describe;
use crate::lifecycle::refresh;
use crate::state::{ContainerState, Status, Store};
use crate::storage;
use anyhow::{Result, anyhow, bail};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

/// How often `logs -f` looks for new output.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(50);

/// Prints the container's log (its last `tail` lines if given); with `follow`, keeps printing
/// what it writes until it exits.
pub fn logs(
    store: &Store,
    state: &ContainerState,
    follow: bool,
    tail: Option<usize>,
) -> Result<()> {
    if !state.detached {
        bail!(
            "container {} ran in the foreground: its output went to the terminal, not to a log",
            state.name
        );
    }
    let path = storage::log_path(&state.storage);
    let mut file = File::open(&path)
        .map_err(|e| anyhow!("cannot open the log {}: {}", path.display(), describe(&e)))?;
    let mut out = std::io::stdout().lock();
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    out.write_all(last_lines(&text, tail))?;
    out.flush()?;
    if !follow {
        return Ok(());
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Checked before reading, so the output written before the exit is all printed.
        let exited = refresh(store, store.load(&state.id)?)?.status == Status::Exited;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
        }
        out.flush()?;
        if exited {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_INTERVAL);
        // A log truncated under us is read again from its start.
        if file.stream_position()? > file.metadata()?.len() {
            file.seek(SeekFrom::Start(0))?;
        }
    }
}

/// The last `n` lines of `text` (all of it for `None`).
fn last_lines(text: &[u8], n: Option<usize>) -> &[u8] {
    let Some(n) = n else { return text };
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n.wrapping_sub(1))
        .map_or(0, |(i, _)| i + 1);
    if n == 0 { &text[text.len()..] } else { &text[start..] }
}

#[cfg(test)]
mod tests {
    use super::last_lines;

    #[test]
    fn tail_takes_last_lines() {
        let t = b"a\nb\nc\n";
        assert_eq!(last_lines(t, None), t);
        assert_eq!(last_lines(t, Some(2)), b"b\nc\n");
        assert_eq!(last_lines(t, Some(5)), t);
        assert_eq!(last_lines(t, Some(0)), b"");
        assert_eq!(last_lines(b"a\nb", Some(1)), b"b");
    }
}
