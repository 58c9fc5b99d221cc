//! What the guest reports on its second serial port, and how it is summarised.
//!
//! The guest's init writes, for each test binary, a `@boxr-vm binary NAME` line, the binary's
//! whole libtest output, and `@boxr-vm exit NAME STATUS`; after the last one, `@boxr-vm done`.
//! Test outcomes come from libtest's `test NAME ... ok|FAILED|ignored` lines.

use std::fmt::Write as _;

const MARK: &str = "@boxr-vm ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Ignored,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Test {
    pub name: String,
    pub outcome: Outcome,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Binary {
    pub name: String,
    pub tests: Vec<Test>,
    /// The exit status, if the guest saw the binary finish.
    pub exit: Option<i32>,
    /// Everything the binary printed.
    pub output: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub binaries: Vec<Binary>,
    /// Whether the guest got through all binaries.
    pub done: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
}

/// Parses the guest's report (lines may end in `\r\n`: it went through a serial port).
pub fn parse(text: &str) -> Report {
    let mut report = Report::default();
    let mut current: Option<Binary> = None;
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(control) = line.strip_prefix(MARK) {
            let mut words = control.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("binary"), Some(name), None) => {
                    report.binaries.extend(current.take());
                    current = Some(Binary { name: name.to_owned(), ..Binary::default() });
                }
                (Some("exit"), Some(name), Some(status)) => {
                    if let Some(mut binary) = current.take() {
                        if binary.name == name {
                            binary.exit = status.parse().ok();
                        }
                        report.binaries.push(binary);
                    }
                }
                (Some("done"), None, None) => report.done = true,
                _ => {}
            }
            continue;
        }
        let Some(binary) = current.as_mut() else { continue };
        binary.output.push_str(line);
        binary.output.push('\n');
        if let Some(test) = test_line(line) {
            binary.tests.push(test);
        }
    }
    report.binaries.extend(current);
    report
}

/// A libtest result line: `test NAME ... ok`, `... FAILED`, `... ignored[, reason]`.
fn test_line(line: &str) -> Option<Test> {
    let (name, result) = line.strip_prefix("test ")?.split_once(" ... ")?;
    let outcome = match result.trim() {
        "ok" => Outcome::Passed,
        "FAILED" => Outcome::Failed,
        r if r == "ignored" || r.starts_with("ignored, ") => Outcome::Ignored,
        _ => return None,
    };
    Some(Test { name: name.to_owned(), outcome })
}

impl Binary {
    /// Whether the binary failed beyond its failed tests: it did not finish, or it exited
    /// non-zero although no test failed (a crash, a bad argument).
    pub fn broken(&self) -> bool {
        match self.exit {
            None => true,
            Some(0) => false,
            Some(_) => !self.tests.iter().any(|t| t.outcome == Outcome::Failed),
        }
    }

    /// libtest's captured output of the failed test `name` (its `---- NAME stdout ----` block).
    pub fn failure_output(&self, name: &str) -> Option<String> {
        let header = format!("---- {name} stdout ----");
        let start = self.output.lines().position(|l| l == header)?;
        let block: Vec<&str> = self
            .output
            .lines()
            .skip(start)
            .enumerate()
            .take_while(|&(i, l)| i == 0 || !(l.starts_with("---- ") || l == "failures:"))
            .map(|(_, l)| l)
            .collect();
        Some(block.join("\n").trim_end().to_owned())
    }
}

impl Report {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for binary in &self.binaries {
            for test in &binary.tests {
                match test.outcome {
                    Outcome::Passed => counts.passed += 1,
                    Outcome::Failed => counts.failed += 1,
                    Outcome::Ignored => counts.ignored += 1,
                }
            }
            counts.failed += usize::from(binary.broken());
        }
        counts.failed += usize::from(!self.done);
        counts
    }

    /// One line per test, then the output of each failure.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for binary in &self.binaries {
            for test in &binary.tests {
                let word = match test.outcome {
                    Outcome::Passed => "ok",
                    Outcome::Failed => "FAILED",
                    Outcome::Ignored => "ignored",
                };
                let _ = writeln!(out, "{word:<8}{}::{}", binary.name, test.name);
            }
            if binary.broken() {
                let why = binary
                    .exit
                    .map_or("did not finish".to_owned(), |s| format!("exited with status {s}"));
                let _ = writeln!(out, "{:<8}{} {why}", "FAILED", binary.name);
            }
        }
        for binary in &self.binaries {
            for test in binary.tests.iter().filter(|t| t.outcome == Outcome::Failed) {
                let detail = binary.failure_output(&test.name).unwrap_or_default();
                let _ = writeln!(out, "\n==== {}::{}\n{detail}", binary.name, test.name);
            }
            if binary.broken() {
                let _ = writeln!(out, "\n==== {} (whole output)\n{}", binary.name, binary.output);
            }
        }
        if !self.done {
            out.push_str("\nFAILED  the guest did not get through all test binaries\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
@boxr-vm binary mounts\r
\r
running 3 tests\r
test proc_is_fresh ... ok\r
test tmpfs_size ... FAILED\r
test slow_one ... ignored, needs a disk\r
\r
failures:\r
\r
---- tmpfs_size stdout ----\r
thread 'tmpfs_size' panicked at tests/mounts.rs:10:5:\r
size=4k\r
\r
\r
failures:\r
    tmpfs_size\r
\r
test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out\r
@boxr-vm exit mounts 101\r
@boxr-vm binary signals\r
running 1 test\r
test forwards_term ... ok\r
test result: ok. 1 passed; 0 failed\r
@boxr-vm exit signals 0\r
@boxr-vm done\r
";

    #[test]
    fn parses_binaries_and_outcomes() {
        let report = parse(SAMPLE);
        assert!(report.done);
        let names: Vec<_> = report.binaries.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["mounts", "signals"]);
        let mounts = &report.binaries[0];
        assert_eq!(mounts.exit, Some(101));
        assert_eq!(
            mounts.tests,
            [
                Test { name: "proc_is_fresh".into(), outcome: Outcome::Passed },
                Test { name: "tmpfs_size".into(), outcome: Outcome::Failed },
                Test { name: "slow_one".into(), outcome: Outcome::Ignored },
            ]
        );
        assert!(!mounts.broken(), "its failure is a failed test");
        assert_eq!(
            mounts.failure_output("tmpfs_size").unwrap(),
            "---- tmpfs_size stdout ----\n\
             thread 'tmpfs_size' panicked at tests/mounts.rs:10:5:\nsize=4k"
        );
        assert_eq!(report.counts(), Counts { passed: 2, failed: 1, ignored: 1 });
    }

    #[test]
    fn crashes_and_unfinished_runs_count_as_failures() {
        let text = "@boxr-vm binary a\ntest x ... ok\n@boxr-vm exit a 139\n\
                    @boxr-vm binary b\ntest y ... ok\n";
        let report = parse(text);
        assert!(!report.done);
        assert!(report.binaries[0].broken(), "exited 139 with no failed test");
        assert_eq!(report.binaries[1].exit, None);
        // x and y passed; a crashed, b did not finish, and the run did not get to its end.
        assert_eq!(report.counts(), Counts { passed: 2, failed: 3, ignored: 0 });
        let text = report.render();
        assert!(text.contains("FAILED  a exited with status 139\n"), "{text}");
        assert!(text.contains("FAILED  b did not finish\n"), "{text}");
        assert!(text.contains("did not get through all test binaries"), "{text}");
        assert_eq!(parse("").counts(), Counts { passed: 0, failed: 1, ignored: 0 });
    }

    #[test]
    fn renders_one_line_per_test_then_the_failures() {
        let text = parse(SAMPLE).render();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines[..4],
            [
                "ok      mounts::proc_is_fresh",
                "FAILED  mounts::tmpfs_size",
                "ignored mounts::slow_one",
                "ok      signals::forwards_term",
            ]
        );
        assert!(text.contains("\n==== mounts::tmpfs_size\n---- tmpfs_size stdout ----\n"));
    }

    #[test]
    fn output_that_only_looks_like_results_is_not_counted() {
        let text = "@boxr-vm binary a\ntest x ... ok\nlatest news ... ok\n\
                    test y ... still running\n@boxr-vm exit a 0\n@boxr-vm done\n";
        assert_eq!(parse(text).counts(), Counts { passed: 1, failed: 0, ignored: 0 });
    }
}
