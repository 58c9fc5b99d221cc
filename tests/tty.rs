//! `boxr run -t`: the workload gets a terminal of the container's own devpts instance, relayed to
//! boxr's. The interactive test holds a real pseudo-terminal and runs boxr on it as its
//! controlling terminal, as a shell in a terminal emulator would.

use boxr_tests::{
    Boxr, Config, Dirs, Marker, ProcStat, RUN_TIMEOUT, Scratch, TEST_PATH, boxr_bin, wait_until,
};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// How long one step of the conversation with the shell may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// A pseudo-terminal opened by the test: the master is the "terminal emulator" side.
struct TestPty {
    master: File,
    slave: File,
}

fn check(ret: libc::c_int, what: &str) {
    assert!(ret >= 0, "{what}: {}", io::Error::last_os_error());
}

impl TestPty {
    fn open(rows: u16, cols: u16) -> TestPty {
        let master = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open("/dev/ptmx")
            .expect("open /dev/ptmx");
        // SAFETY: ioctls on the master this function owns; TIOCGPTPEER returns a new fd that
        // nothing else owns.
        let slave = unsafe {
            check(libc::unlockpt(master.as_raw_fd()), "unlockpt");
            let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
            let fd = libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags);
            check(fd, "TIOCGPTPEER");
            File::from_raw_fd(fd)
        };
        let pty = TestPty { master, slave };
        pty.resize(rows, cols);
        pty
    }

    /// Sets the terminal's size; the kernel sends SIGWINCH to its foreground process group.
    fn resize(&self, rows: u16, cols: u16) {
        let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads a winsize that outlives the call.
        check(unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) }, "resize");
    }

    /// The terminal's attributes as boxr sees them on its side.
    fn attributes(&self) -> libc::termios {
        // SAFETY: termios is plain data; tcgetattr fills it in.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            check(libc::tcgetattr(self.slave.as_raw_fd(), &mut t), "tcgetattr");
            t
        }
    }

    /// Starts `boxr ARGS` with the slave as its stdin, stdout, stderr and controlling terminal.
    fn spawn(&self, args: &[&str]) -> Session {
        self.spawn_with(Dirs::new(), args)
    }

    /// [`TestPty::spawn`] with boxr's state and storage in `dirs` (the session keeps them).
    fn spawn_with(&self, dirs: Dirs, args: &[&str]) -> Session {
        let mut cmd = Command::new(boxr_bin());
        cmd.args(args).env("BOXR_ROOT", dirs.root()).env("BOXR_STORAGE", dirs.storage());
        for (i, slot) in ["stdin", "stdout", "stderr"].iter().enumerate() {
            let fd = self.slave.try_clone().unwrap_or_else(|e| panic!("dup for {slot}: {e}"));
            match i {
                0 => cmd.stdin(fd),
                1 => cmd.stdout(fd),
                _ => cmd.stderr(fd),
            };
        }
        // SAFETY: setsid and ioctl are async-signal-safe; stdin is the slave by now.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn boxr");
        let mut master = self.master.try_clone().expect("dup the master");
        let (tx, screen) = mpsc::channel();
        // Ends with EIO once the test has closed its slave and boxr has exited.
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Session { child, reaped: false, screen, text: String::new(), seen: 0, _dirs: dirs }
    }
}

/// A boxr running on a [`TestPty`]: what it shows, what is typed into it. Dropping it kills boxr.
struct Session {
    child: Child,
    reaped: bool,
    screen: Receiver<Vec<u8>>,
    /// Everything shown so far.
    text: String,
    /// How much of `text` earlier `expect`s consumed.
    seen: usize,
    /// boxr's state and storage, removed after boxr is gone.
    _dirs: Dirs,
}

impl Session {
    /// Waits until `needle` shows up after what earlier calls consumed; returns the lines shown
    /// up to and including it (without `\r`).
    #[track_caller]
    fn expect(&mut self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(at) = self.text[self.seen..].find(needle) {
                let end = self.seen + at + needle.len();
                let shown = self.text[self.seen..end].replace('\r', "");
                self.seen = end;
                return shown.lines().map(str::to_string).collect();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.screen.recv_timeout(left) {
                Ok(chunk) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                Err(e) => {
                    panic!("{e:?} waiting for {needle:?}; the terminal shows:\n{}", self.text)
                }
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Session {
    /// Waits (at most [`RUN_TIMEOUT`]) for boxr to exit.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait boxr") {
                self.reaped = true;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "boxr still runs; the terminal shows:\n{}",
                self.text
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Types `keys` on the test's terminal.
fn type_keys(pty: &TestPty, keys: &str) {
    (&pty.master).write_all(keys.as_bytes()).expect("type into the terminal");
}

fn shell_config(scratch: &Scratch) -> std::path::PathBuf {
    scratch.config(&Config::new().args(&["/bin/sh"]).env(&[TEST_PATH, "PS1=prompt> "]))
}

#[test]
fn interactive_shell_on_the_containers_terminal() {
    let scratch = Scratch::new("tty");
    let config = shell_config(&scratch);
    let pty = TestPty::open(37, 101);
    let before = pty.attributes();
    let mut session = pty.spawn(&["run", "-it", "--config", config.to_str().unwrap()]);
    session.expect("prompt> ");
    let during = pty.attributes();
    assert_eq!(during.c_lflag & (libc::ICANON | libc::ECHO | libc::ISIG), 0, "not in raw mode");

    // The words are split in what is typed (and echoed), so only the output matches.
    type_keys(&pty, "tty; stty size; echo do''ne1\r");
    let lines = session.expect("done1");
    assert!(lines.iter().any(|l| l == "/dev/pts/0"), "not the container's pts 0: {lines:?}");
    assert!(lines.iter().any(|l| l == "37 101"), "the size did not come through: {lines:?}");

    pty.resize(50, 120);
    type_keys(&pty, "stty size; echo do''ne2\r");
    let lines = session.expect("done2");
    assert!(lines.iter().any(|l| l == "50 120"), "the new size did not come through: {lines:?}");

    // Ctrl-C interrupts the foreground job, not the shell.
    let marker = Marker::new();
    type_keys(&pty, &format!("sleep {marker}\r"));
    assert!(
        wait_until(STEP_TIMEOUT, || !marker.pids().is_empty()),
        "sleep did not start; the terminal shows:\n{}",
        session.text
    );
    type_keys(&pty, "\x03");
    assert!(wait_until(STEP_TIMEOUT, || marker.pids().is_empty()), "Ctrl-C did not stop sleep");
    type_keys(&pty, "echo status=$?; echo do''ne3\r");
    let lines = session.expect("done3");
    assert!(lines.iter().any(|l| l == "status=130"), "sleep did not die of SIGINT: {lines:?}");

    type_keys(&pty, "exit 5\r");
    let status = session.wait();
    assert_eq!(status.code(), Some(5), "the terminal shows:\n{}", session.text);

    let after = pty.attributes();
    assert_eq!(after.c_iflag, before.c_iflag, "input modes not restored");
    assert_eq!(after.c_oflag, before.c_oflag, "output modes not restored");
    assert_eq!(after.c_cflag, before.c_cflag, "control modes not restored");
    assert_eq!(after.c_lflag, before.c_lflag, "local modes not restored");
    assert_eq!(after.c_cc, before.c_cc, "control characters not restored");
}

#[test]
fn exec_it_gets_a_terminal_of_the_containers_devpts() {
    let scratch = Scratch::new("exec-tty");
    let config = Config::new().args(&["sleep", "600"]).env(&[TEST_PATH, "PS1=exec> "]);
    let config = scratch.config(&config);
    let dirs = Dirs::new();
    dirs.boxr()
        .args(["run", "-d", "--name", "ttybox", "--config"])
        .arg(&config)
        .output()
        .expect_code(0);
    let pty = TestPty::open(40, 90);
    let before = pty.attributes();
    let mut session = pty.spawn_with(dirs, &["exec", "-it", "ttybox", "--", "/bin/sh"]);
    session.expect("exec> ");
    type_keys(&pty, "tty; stty size; echo do''ne1\r");
    let lines = session.expect("done1");
    assert!(lines.iter().any(|l| l == "/dev/pts/0"), "not the container's pts 0: {lines:?}");
    assert!(lines.iter().any(|l| l == "40 90"), "the size did not come through: {lines:?}");
    type_keys(&pty, "exit 3\r");
    assert_eq!(session.wait().code(), Some(3), "the terminal shows:\n{}", session.text);
    let after = pty.attributes();
    assert_eq!(after.c_lflag, before.c_lflag, "local modes not restored");
    assert_eq!(after.c_iflag, before.c_iflag, "input modes not restored");
}

#[test]
fn ctrl_c_without_i_reaches_the_workload() {
    // Without -i the caller's terminal stays as it is: Ctrl-C makes it signal boxr, which
    // passes the signal on (the workload is in a session of its own, on its own terminal).
    let scratch = Scratch::new("tty-ctrl-c");
    let config = scratch.config(&Config::new());
    let marker = Marker::new();
    let pty = TestPty::open(24, 80);
    let before = pty.attributes();
    let mut session = pty.spawn(&[
        "run",
        "-t",
        "--config",
        config.to_str().unwrap(),
        "--",
        "sleep",
        marker.as_str(),
    ]);
    // boxr's command line carries the marker too, and so does its clone until that execs the
    // init: wait for sleep itself.
    let started = || {
        marker.pids().into_iter().any(|pid| ProcStat::of(pid).is_some_and(|s| s.comm == "sleep"))
    };
    assert!(wait_until(STEP_TIMEOUT, started), "sleep did not start");
    assert_eq!(pty.attributes().c_lflag, before.c_lflag, "-t alone changed the terminal");
    type_keys(&pty, "\x03");
    let status = session.wait();
    assert_eq!(status.code(), Some(130), "{status:?}; the terminal shows:\n{}", session.text);
}

#[test]
fn terminal_is_restored_when_the_command_cannot_run() {
    let scratch = Scratch::new("tty-fail");
    let config = shell_config(&scratch);
    let pty = TestPty::open(24, 80);
    let before = pty.attributes();
    let mut session =
        pty.spawn(&["run", "-it", "--config", config.to_str().unwrap(), "--", "no-such-command"]);
    let status = session.wait();
    session.expect("executable file not found in $PATH");
    assert_eq!(status.code(), Some(127), "the terminal shows:\n{}", session.text);
    let after = pty.attributes();
    assert_eq!(after.c_lflag, before.c_lflag, "local modes not restored");
    assert_eq!(after.c_oflag, before.c_oflag, "output modes not restored");
}

#[test]
fn tty_without_a_terminal_around_boxr() {
    let scratch = Scratch::new("tty-pipes");
    let config = scratch.config(&Config::new());
    // stdin is /dev/null and stdout a pipe: the workload still has a terminal.
    let out = Boxr::run(&config).arg("-t").command(&["/bin/sh", "-c", "tty; exit 4"]).output();
    assert_eq!(out.lines(), ["/dev/pts/0"], "\n{out}");
    out.expect_code(4);
}

#[test]
fn piped_input_reaches_the_terminal() {
    let scratch = Scratch::new("tty-input");
    let config = shell_config(&scratch);
    let out = Boxr::run(&config)
        .args(["-i", "-t"])
        .stdin("echo he''llo; exit 3\n")
        .command(&["/bin/sh"])
        .output();
    assert!(out.lines().contains(&"hello"), "\n{out}");
    out.expect_code(3);
}

#[test]
fn detached_terminal_is_refused() {
    let scratch = Scratch::new("tty-detach");
    let config = scratch.config(&Config::new());
    let out = Boxr::run(&config).args(["-d", "-t"]).output();
    let line = out.expect_boxr_error();
    assert_eq!(line, "boxr: detached containers with a terminal are not supported; drop -t or -d");
}
