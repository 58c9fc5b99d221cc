//! The workload's terminal, on the frontend's side (`boxr run -t`).
//!
//! boxr-init allocates a pseudo-terminal from the container's own devpts instance and sends its
//! master over the console socket ([`receive_master`]). [`PtyRelay`] then copies the caller's
//! stdin to the master and the master to the caller's stdout from the supervise poll loop,
//! keeps the terminal's size in step with the caller's (at the start and on every `SIGWINCH`)
//! and, for `-i` on a terminal, holds the caller's terminal in raw mode ([`RawTerminal`]) so
//! that every key, Ctrl-C included, reaches the container's terminal, whose line discipline
//! turns it into a signal for the workload's foreground process group. [`open_pty`] allocates
//! a terminal for `boxr exec -t`.

use crate::errno::describe;
use crate::spawn::Container;
use anyhow::{Result, anyhow, bail};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::io::{Errno, IoSliceMut};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::{self, OptionalActions, Termios};
use std::mem::MaybeUninit;

/// Receives the master of the workload's terminal that boxr-init sends on the console socket
/// (the frontend's end, [`crate::spawn::Container::console`]); waits until it comes. `None`
/// when the init closed the socket without sending one: it failed before, and its report on the
/// plan socket says why.
pub fn receive_master(console: &OwnedFd) -> Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        let mut iov = [IoSliceMut::new(&mut byte)];
        match rustix::net::recvmsg(console, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Err(Errno::INTR) => continue,
            other => break other,
        }
    };
    let received = received
        .map_err(|e| anyhow!("cannot receive the container's terminal: {}", describe(&e.into())))?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    let mut fds = fds.into_iter();
    match fds.next() {
        Some(master) if termios::isatty(&master) => Ok(Some(master)),
        Some(_) => bail!("boxr-init sent something other than a terminal on the console socket"),
        None if received.bytes == 0 => Ok(None),
        None => bail!("boxr-init sent no terminal on the console socket"),
    }
}

/// For a container started with a terminal ([`boxr_plan::flags::TTY`]): waits for the
/// terminal's master and returns the relay for boxr's caller (`interactive`: `-i`). `None` for a
/// container without a terminal, or whose init failed before sending it (its report says why).
pub fn attach(container: &mut Container, interactive: bool) -> Result<Option<PtyRelay>> {
    let Some(console) = container.console.take() else { return Ok(None) };
    let master = receive_master(&console)?;
    master.map(|master| PtyRelay::for_caller(master, interactive)).transpose()
}

/// Both ends of a new pseudo-terminal, close-on-exec.
pub struct Pty {
    pub master: OwnedFd,
    /// The terminal's other end, for the process that uses it (opened with `O_NOCTTY`).
    pub pts: OwnedFd,
}

/// Allocates a pseudo-terminal from the devpts instance that `/dev/ptmx` leads to in the
/// current mount namespace. For `boxr exec -t`, once it has joined the container's: then the
/// terminal is of the container's own devpts, like the one boxr-init allocates for `run -t`.
pub fn open_pty() -> Result<Pty> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let fail = |what: &str, e: Errno| anyhow!("cannot {what}: {}", describe(&e.into()));
    let master = rustix::pty::openpt(flags).map_err(|e| fail("open /dev/ptmx", e))?;
    rustix::pty::unlockpt(&master).map_err(|e| fail("unlock the new terminal", e))?;
    let pts = rustix::pty::ioctl_tiocgptpeer(&master, flags)
        .map_err(|e| fail("open the new terminal's other end", e))?;
    Ok(Pty { master, pts })
}

/// A terminal in raw mode (`cfmakeraw`): no echo, no line editing, no signal keys, no output
/// processing. Dropping it restores the attributes it had.
pub struct RawTerminal {
    fd: OwnedFd,
    saved: Termios,
}

impl RawTerminal {
    /// Puts `fd` into raw mode; `None` if it is not a terminal.
    pub fn enter(fd: BorrowedFd<'_>) -> Result<Option<RawTerminal>> {
        if !termios::isatty(fd) {
            return Ok(None);
        }
        let fail =
            |e: Errno| anyhow!("cannot put the terminal in raw mode: {}", describe(&e.into()));
        let fd = rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(fail)?;
        let saved = termios::tcgetattr(&fd).map_err(fail)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&fd, OptionalActions::Now, &raw).map_err(fail)?;
        Ok(Some(RawTerminal { fd, saved }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, OptionalActions::Now, &self.saved);
    }
}

/// How much one read takes.
const CHUNK: usize = 4096;
/// The most [`PtyRelay::finish`] copies after the container exited: more than a terminal
/// buffers, so it only stops a process outside the container that goes on writing.
const DRAIN_LIMIT: usize = 1 << 20;

/// The fds a [`PtyRelay`] polls.
#[derive(Clone, Copy)]
enum End {
    Resize,
    Input,
    Master,
    Output,
}

/// Copies input to the terminal's master and the master's output to `output`, driven by a poll
/// loop: add [`PtyRelay::poll_fds`] to the poll set, then pass their `revents` to
/// [`PtyRelay::handle`]. Reads and writes happen only when poll said they would not block (the
/// master is non-blocking too); a partial write keeps the rest for the next round.
pub struct PtyRelay {
    master: OwnedFd,
    /// Where the keys come from; `None` without `-i` and after EOF.
    input: Option<OwnedFd>,
    /// Where the terminal's output goes; `None` once writing to it failed (the output is then
    /// read and dropped, so that the workload never blocks on a full terminal).
    output: Option<OwnedFd>,
    to_master: Vec<u8>,
    to_output: Vec<u8>,
    /// False once the master reads EOF or EIO: no process holds the terminal any more.
    master_open: bool,
    /// The caller's terminal whose size the container's follows, and a signalfd for its
    /// `SIGWINCH`.
    window: Option<(OwnedFd, OwnedFd)>,
    /// Declared last: restored after everything above is closed.
    _raw: Option<RawTerminal>,
}

impl PtyRelay {
    /// The relay for boxr's own caller: output to stdout; with `interactive` (`-i`), input from
    /// stdin, and stdin in raw mode if it is a terminal; the size of stdout's terminal, or else
    /// stdin's.
    pub fn for_caller(master: OwnedFd, interactive: bool) -> Result<PtyRelay> {
        let dup = |fd: BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .map_err(|e| anyhow!("cannot duplicate a standard fd: {}", describe(&e)))
        };
        let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
        let input = if interactive { Some(dup(stdin.as_fd())?) } else { None };
        let terminal = [stdout.as_fd(), stdin.as_fd()].into_iter().find(|fd| termios::isatty(fd));
        let terminal = terminal.map(dup).transpose()?;
        let mut relay = PtyRelay::new(master, input, dup(stdout.as_fd())?, terminal)?;
        if interactive {
            relay._raw = RawTerminal::enter(stdin.as_fd())?;
        }
        Ok(relay)
    }

    /// A relay between `master` and `input`/`output`; with `terminal`, the container's terminal
    /// takes its size now and on every `SIGWINCH` (which this blocks: the process must be
    /// single-threaded).
    pub fn new(
        master: OwnedFd,
        input: Option<OwnedFd>,
        output: OwnedFd,
        terminal: Option<OwnedFd>,
    ) -> Result<PtyRelay> {
        rustix::io::ioctl_fionbio(&master, true).map_err(|e| {
            anyhow!("cannot make the container's terminal non-blocking: {}", describe(&e.into()))
        })?;
        let window = match terminal {
            Some(terminal) => Some((terminal, window_changes()?)),
            None => None,
        };
        let relay = PtyRelay {
            master,
            input,
            output: Some(output),
            to_master: Vec::new(),
            to_output: Vec::new(),
            master_open: true,
            window,
            _raw: None,
        };
        relay.resize();
        Ok(relay)
    }

    /// Gives the container's terminal the size of the caller's. The kernel then sends
    /// `SIGWINCH` to the terminal's foreground process group if it changed.
    fn resize(&self) {
        if let Some((terminal, _)) = &self.window
            && let Ok(size) = termios::tcgetwinsize(terminal)
        {
            let _ = termios::tcsetwinsize(&self.master, size);
        }
    }

    /// The fds to poll now and for what; [`Self::handle`] relies on the same order.
    fn interest(&self) -> impl Iterator<Item = (End, PollFlags)> + use<> {
        let mut master = PollFlags::empty();
        if self.master_open && self.to_output.is_empty() {
            master |= PollFlags::IN;
        }
        if self.master_open && !self.to_master.is_empty() {
            master |= PollFlags::OUT;
        }
        let reading = self.input.is_some() && self.master_open && self.to_master.is_empty();
        // A resize first: keys typed after it find the new size in place.
        [
            (End::Resize, if self.window.is_some() { PollFlags::IN } else { PollFlags::empty() }),
            (End::Input, if reading { PollFlags::IN } else { PollFlags::empty() }),
            (End::Master, master),
            (
                End::Output,
                if self.to_output.is_empty() { PollFlags::empty() } else { PollFlags::OUT },
            ),
        ]
        .into_iter()
        .filter(|(_, flags)| !flags.is_empty())
    }

    fn fd(&self, end: End) -> BorrowedFd<'_> {
        let fd = match end {
            End::Input => self.input.as_ref(),
            End::Master => Some(&self.master),
            End::Output => self.output.as_ref(),
            End::Resize => self.window.as_ref().map(|(_, signals)| signals),
        };
        fd.expect("only fds the relay has are polled").as_fd()
    }

    /// Appends the fds the relay waits for to `fds`.
    pub fn poll_fds<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) {
        for (end, flags) in self.interest() {
            fds.push(PollFd::from_borrowed_fd(self.fd(end), flags));
        }
    }

    /// Acts on a poll: `revents` are those of the fds [`Self::poll_fds`] appended, in order
    /// (nothing else may have touched the relay in between).
    pub fn handle(&mut self, revents: &[PollFlags]) {
        let ready: Vec<End> = self
            .interest()
            .zip(revents)
            .filter(|(_, revents)| !revents.is_empty())
            .map(|((end, _), _)| end)
            .collect();
        for end in ready {
            match end {
                End::Input => self.read_input(),
                End::Master => {
                    self.write_master();
                    if self.to_output.is_empty() {
                        self.read_master();
                    }
                }
                End::Output => self.write_output(),
                End::Resize => {
                    if let Some((_, signals)) = &self.window {
                        let mut info = [0u8; size_of::<libc::signalfd_siginfo>()];
                        while rustix::io::read(signals, &mut info).is_ok_and(|n| n > 0) {}
                    }
                    self.resize();
                }
            }
        }
    }

    /// After the container exited: copies what is left on the terminal to the output.
    pub fn finish(&mut self) {
        let mut left = DRAIN_LIMIT;
        loop {
            self.flush_output();
            if left == 0 {
                return;
            }
            match self.read_master() {
                0 => return,
                n => left = left.saturating_sub(n),
            }
        }
    }

    fn read_input(&mut self) {
        let Some(input) = &self.input else { return };
        let mut buf = [0u8; CHUNK];
        match rustix::io::read(input, &mut buf) {
            Ok(0) => self.input = None,
            Ok(n) => {
                self.to_master.extend_from_slice(&buf[..n]);
                self.write_master();
            }
            Err(Errno::INTR | Errno::AGAIN) => {}
            Err(_) => self.input = None,
        }
    }

    fn write_master(&mut self) {
        if self.to_master.is_empty() {
            return;
        }
        match rustix::io::write(&self.master, &self.to_master) {
            Ok(n) => drop(self.to_master.drain(..n)),
            Err(Errno::INTR | Errno::AGAIN) => {}
            Err(_) => self.to_master.clear(),
        }
    }

    /// Reads one chunk from the master (non-blocking); returns its length, 0 if there was none.
    fn read_master(&mut self) -> usize {
        if !self.master_open {
            return 0;
        }
        let mut buf = [0u8; CHUNK];
        match rustix::io::read(&self.master, &mut buf) {
            Ok(0) => self.close_master(),
            Ok(n) => {
                if self.output.is_some() {
                    self.to_output.extend_from_slice(&buf[..n]);
                }
                return n;
            }
            Err(Errno::INTR | Errno::AGAIN) => {}
            // EIO: the last process holding the terminal closed it.
            Err(_) => self.close_master(),
        }
        0
    }

    fn close_master(&mut self) {
        self.master_open = false;
        self.to_master.clear();
    }

    fn write_output(&mut self) {
        let Some(output) = &self.output else { return };
        match rustix::io::write(output, &self.to_output) {
            Ok(n) => drop(self.to_output.drain(..n)),
            Err(Errno::INTR | Errno::AGAIN) => {}
            Err(_) => {
                self.output = None;
                self.to_output.clear();
            }
        }
    }

    /// Writes all pending output, waiting for the output to take it.
    fn flush_output(&mut self) {
        while !self.to_output.is_empty() {
            if let Some(output) = &self.output {
                let mut fds = [PollFd::new(output, PollFlags::OUT)];
                let _ = rustix::event::poll(&mut fds, None);
            }
            self.write_output();
        }
    }
}

/// Blocks `SIGWINCH` and returns a non-blocking signalfd that receives it.
fn window_changes() -> Result<OwnedFd> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; sigprocmask and
    // signalfd only read it. The caller is single-threaded.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGWINCH);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(anyhow!(
                "cannot block SIGWINCH: {}",
                describe(&std::io::Error::last_os_error())
            ));
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(anyhow!(
                "cannot create a signalfd for SIGWINCH: {}",
                describe(&std::io::Error::last_os_error())
            ));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::Timespec;
    use rustix::io::IoSlice;
    use rustix::net::{
        AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags,
        SocketType,
    };
    use rustix::pipe::PipeFlags;
    use rustix::termios::{LocalModes, Winsize};
    use std::time::{Duration, Instant};

    fn pipe() -> (OwnedFd, OwnedFd) {
        rustix::pipe::pipe_with(PipeFlags::CLOEXEC).unwrap()
    }

    /// Reads what `fd` has ready within `timeout_ms`, if anything.
    fn read_ready(fd: &OwnedFd, timeout_ms: i64) -> Vec<u8> {
        let timeout =
            Timespec { tv_sec: timeout_ms / 1000, tv_nsec: timeout_ms % 1000 * 1_000_000 };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        if rustix::event::poll(&mut fds, Some(&timeout)).unwrap() == 0 {
            return Vec::new();
        }
        let mut buf = [0u8; 65536];
        match rustix::io::read(fd, &mut buf) {
            Ok(n) => buf[..n].to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// Runs `relay`'s poll loop until `done` holds; false if that takes over 10 s.
    fn drive(relay: &mut PtyRelay, mut done: impl FnMut(&PtyRelay) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(relay) {
            if Instant::now() >= deadline {
                return false;
            }
            let mut fds = Vec::new();
            relay.poll_fds(&mut fds);
            let timeout = Timespec { tv_sec: 0, tv_nsec: 20_000_000 };
            rustix::event::poll(&mut fds, Some(&timeout)).unwrap();
            let revents: Vec<PollFlags> = fds.iter().map(PollFd::revents).collect();
            drop(fds);
            relay.handle(&revents);
        }
        true
    }

    fn make_raw(fd: &OwnedFd) {
        let mut t = termios::tcgetattr(fd).unwrap();
        t.make_raw();
        termios::tcsetattr(fd, OptionalActions::Now, &t).unwrap();
    }

    #[test]
    fn open_pty_gives_a_connected_pair() {
        let pty = open_pty().unwrap();
        assert!(termios::isatty(&pty.master) && termios::isatty(&pty.pts));
        rustix::io::write(&pty.pts, b"hi\n").unwrap();
        // The line discipline's default output processing turns \n into \r\n.
        assert_eq!(read_ready(&pty.master, 5000), b"hi\r\n");
        rustix::io::write(&pty.master, b"typed\n").unwrap();
        assert!(read_ready(&pty.pts, 5000).starts_with(b"typed"));
    }

    #[test]
    fn raw_mode_is_undone_on_drop() {
        let pty = open_pty().unwrap();
        let before = termios::tcgetattr(&pty.pts).unwrap();
        assert!(before.local_modes.contains(LocalModes::ICANON | LocalModes::ECHO));
        let raw = RawTerminal::enter(pty.pts.as_fd()).unwrap().expect("a terminal");
        let during = termios::tcgetattr(&pty.pts).unwrap();
        assert!(!during.local_modes.intersects(LocalModes::ICANON | LocalModes::ECHO));
        assert!(!during.local_modes.contains(LocalModes::ISIG));
        drop(raw);
        let after = termios::tcgetattr(&pty.pts).unwrap();
        assert_eq!(after.input_modes, before.input_modes);
        assert_eq!(after.output_modes, before.output_modes);
        assert_eq!(after.control_modes, before.control_modes);
        assert_eq!(after.local_modes, before.local_modes);
        let (read_end, _write_end) = pipe();
        assert!(RawTerminal::enter(read_end.as_fd()).unwrap().is_none());
    }

    #[test]
    fn relay_copies_both_ways_follows_the_size_and_notices_the_close() {
        let container = open_pty().unwrap();
        make_raw(&container.pts);
        let caller = open_pty().unwrap();
        let size = Winsize { ws_row: 37, ws_col: 101, ws_xpixel: 0, ws_ypixel: 0 };
        termios::tcsetwinsize(&caller.pts, size).unwrap();
        let (input, keys) = pipe();
        let (screen, output) = pipe();
        // A small, non-blocking output pipe: writes to it are partial.
        rustix::pipe::fcntl_setpipe_size(&output, 4096).unwrap();
        rustix::io::ioctl_fionbio(&output, true).unwrap();
        let mut relay =
            PtyRelay::new(container.master, Some(input), output, Some(caller.pts)).unwrap();
        let got = termios::tcgetwinsize(&container.pts).unwrap();
        assert_eq!((got.ws_row, got.ws_col), (37, 101));

        rustix::io::write(&keys, b"keys").unwrap();
        let mut typed = Vec::new();
        assert!(drive(&mut relay, |_| {
            typed.extend(read_ready(&container.pts, 0));
            typed == b"keys"
        }));

        let payload: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let writer = container.pts.try_clone().unwrap();
        let sent = payload.clone();
        let thread = std::thread::spawn(move || {
            let mut rest = &sent[..];
            while !rest.is_empty() {
                let n = rustix::io::write(&writer, rest).unwrap();
                rest = &rest[n..];
            }
        });
        let mut shown = Vec::new();
        assert!(drive(&mut relay, |_| {
            shown.extend(read_ready(&screen, 0));
            shown.len() >= payload.len()
        }));
        thread.join().unwrap();
        assert!(shown == payload, "the output arrived changed");

        drop(keys);
        drop(container.pts);
        assert!(drive(&mut relay, |r| r.input.is_none() && !r.master_open));
        relay.finish();
    }

    #[test]
    fn finish_copies_what_is_left() {
        let container = open_pty().unwrap();
        make_raw(&container.pts);
        let (screen, output) = pipe();
        let mut relay = PtyRelay::new(container.master, None, output, None).unwrap();
        rustix::io::write(&container.pts, b"last words").unwrap();
        drop(container.pts);
        relay.finish();
        assert!(!relay.master_open);
        drop(relay);
        assert_eq!(read_ready(&screen, 5000), b"last words");
    }

    fn console_pair() -> (OwnedFd, OwnedFd) {
        rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap()
    }

    fn send(socket: &OwnedFd, fd: Option<BorrowedFd<'_>>) {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds: Vec<_> = fd.into_iter().collect();
        assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
        rustix::net::sendmsg(socket, &[IoSlice::new(&[0])], &mut control, SendFlags::empty())
            .unwrap();
    }

    #[test]
    fn the_master_comes_over_the_console_socket() {
        let (frontend, init) = console_pair();
        let pty = open_pty().unwrap();
        send(&init, Some(pty.master.as_fd()));
        drop(pty.master);
        let master = receive_master(&frontend).unwrap().expect("a master");
        rustix::io::write(&master, b"x\n").unwrap();
        assert!(read_ready(&pty.pts, 5000).starts_with(b"x"));
    }

    #[test]
    fn console_socket_without_a_terminal() {
        let (frontend, init) = console_pair();
        drop(init);
        assert!(receive_master(&frontend).unwrap().is_none());

        let (frontend, init) = console_pair();
        send(&init, None);
        let err = receive_master(&frontend).unwrap_err().to_string();
        assert_eq!(err, "boxr-init sent no terminal on the console socket");

        let (frontend, init) = console_pair();
        let (read_end, _write_end) = pipe();
        send(&init, Some(read_end.as_fd()));
        let err = receive_master(&frontend).unwrap_err().to_string();
        assert!(err.contains("other than a terminal"), "{err}");
    }
}
