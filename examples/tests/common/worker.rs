//! An example's worker process as the crash tests run it: started with its stdout and stderr
//! lines gathered, waited on for a line with a deadline, stopped with SIGKILL or SIGINT and
//! reaped within a deadline. Never left behind: a `Worker` dropped while still running (its
//! test failed or panicked) is SIGKILLed and reaped, and prints its last lines into the
//! failed test's output. (A left-over worker went on running after its test and held the
//! test's stderr open, so a `cargo test | tail` never ended: a failure looked like a hang.)

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a signalled worker may take to exit.
const EXIT_WAIT: Duration = Duration::from_secs(60);
/// Lines of a worker printed when its test fails.
const LAST_LINES: usize = 40;

/// The worker's log filter (`RUST_LOG`): `warn`, or `$WORKER_LOG` to see more of a failing
/// test's workers.
pub fn log_filter() -> String {
    std::env::var("WORKER_LOG").unwrap_or_else(|_| "warn".into())
}

/// How a worker is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGKILL: a crash, nothing flushed or committed on the way out.
    Kill,
    /// SIGINT: a graceful stop, which must exit with success.
    Interrupt,
}

pub struct Worker {
    name: String,
    child: Child,
    /// (from stderr, line)
    lines: mpsc::Receiver<(bool, String)>,
    seen: Vec<String>,
    /// Whether each line of `seen` came from stderr.
    on_stderr: Vec<bool>,
}

/// How a stopped worker exited, with every line it printed.
pub struct Exited {
    pub status: ExitStatus,
    /// Its stdout and stderr lines, in the order they were gathered.
    pub lines: Vec<String>,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Worker {
    /// Starts `command` (named `name` in messages); its stdout and stderr lines are gathered.
    pub fn spawn(name: &str, mut command: Command) -> Worker {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        for (on_stderr, stream) in [(false, out), (true, err)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send((on_stderr, line)).is_err() {
                        return;
                    }
                }
            });
        }
        Worker {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            on_stderr: Vec::new(),
        }
    }

    /// The name given at [`Worker::spawn`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits up to `wait` until the worker printed `n` lines containing `text`.
    pub fn wait_lines(&mut self, text: &str, n: usize, wait: Duration) {
        self.wait_until(&format!("{n} {text:?} lines"), wait, |lines| {
            lines.iter().filter(|l| l.contains(text)).count() >= n
        });
    }

    /// Waits up to `wait` until `done` holds for the lines gathered so far (`what` names it in
    /// the failure); fails at once when the worker's output ends first.
    pub fn wait_until(&mut self, what: &str, wait: Duration, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + wait;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "{}: no {what} within {wait:?}:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "{}: its output ended before {what}:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Gathers the next line, waiting up to `wait` for it; returns it (None when there was
    /// none within `wait`, or the worker's output ended).
    pub fn next_line(&mut self, wait: Duration) -> Option<&str> {
        let line = if wait.is_zero() {
            self.lines.try_recv().ok()?
        } else {
            self.lines.recv_timeout(wait).ok()?
        };
        self.push(line);
        self.seen.last().map(String::as_str)
    }

    /// The lines gathered so far, stdout and stderr in the order they came.
    pub fn lines(&self) -> &[String] {
        &self.seen
    }

    fn push(&mut self, (on_stderr, line): (bool, String)) {
        self.seen.push(line);
        self.on_stderr.push(on_stderr);
    }

    /// The lines gathered so far containing `text`.
    pub fn count(&self, text: &str) -> usize {
        self.seen.iter().filter(|l| l.contains(text)).count()
    }

    /// Stops the worker with `stop` and waits for it to exit (a graceful stop must succeed);
    /// returns every line it printed.
    pub fn stop(self, stop: Stop) -> Vec<String> {
        let name = self.name.clone();
        let exited = self.end(stop, EXIT_WAIT);
        if stop == Stop::Interrupt {
            assert!(
                exited.status.success(),
                "{name} exited with {} after SIGINT:\n{}",
                exited.status,
                exited.lines.join("\n")
            );
        }
        exited.lines
    }

    /// Stops the worker with `stop` and waits up to `wait` for it to exit (failing the test
    /// when it does not); returns how it exited, whatever its status.
    pub fn end(mut self, stop: Stop, wait: Duration) -> Exited {
        match stop {
            Stop::Kill => self.child.kill().unwrap(), // SIGKILL on Unix
            Stop::Interrupt => {
                let pid = self.child.id().to_string();
                assert!(Command::new("kill")
                    .args(["-INT", &pid])
                    .status()
                    .unwrap()
                    .success());
            }
        }
        let status = self.exit_within(wait);
        // Its pipes are closed (unless it left a child of its own holding them): the readers
        // end once they sent what was left.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.push(line);
        }
        let lines = std::mem::take(&mut self.seen);
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        for (line, on_stderr) in lines.iter().zip(std::mem::take(&mut self.on_stderr)) {
            if on_stderr { &mut stderr } else { &mut stdout }.push(line.clone());
        }
        Exited {
            status,
            lines,
            stdout,
            stderr,
        }
    }

    /// Waits up to `wait` for the worker to exit, gathering its lines; SIGKILLs it and fails
    /// the test when it does not.
    fn exit_within(&mut self, wait: Duration) -> ExitStatus {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not exit within {wait:?}:\n{}",
                    self.name,
                    self.seen.join("\n")
                );
            }
            while let Ok(line) = self.lines.try_recv() {
                self.push(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits up to `wait`, gathering the lines of both workers, until `done(a, b)` holds.
pub fn wait_both(
    a: &mut Worker,
    b: &mut Worker,
    what: &str,
    wait: Duration,
    done: impl Fn(&Worker, &Worker) -> bool,
) {
    let deadline = Instant::now() + wait;
    while !done(a, b) {
        assert!(
            Instant::now() < deadline,
            "no {what} within {wait:?}:\n{}:\n{}\n---\n{}:\n{}",
            a.name,
            a.seen.join("\n"),
            b.name,
            b.seen.join("\n")
        );
        let a_line = a.next_line(Duration::ZERO).is_some();
        let b_line = b.next_line(Duration::ZERO).is_some();
        if !a_line && !b_line {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
                self.push(line);
            }
            let from = self.seen.len().saturating_sub(LAST_LINES);
            eprintln!(
                "{} (killed: its test failed), its last lines:\n{}",
                self.name,
                self.seen[from..].join("\n")
            );
        }
    }
}
