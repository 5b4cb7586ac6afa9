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
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
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
        for stream in [out, err] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
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
        }
    }

    /// Waits up to `wait` until the worker printed `n` lines containing `text`.
    pub fn wait_lines(&mut self, text: &str, n: usize, wait: Duration) {
        let deadline = Instant::now() + wait;
        while self.count(text) < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "{}: no {n} {text:?} lines within {wait:?}:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The lines gathered so far containing `text`.
    pub fn count(&self, text: &str) -> usize {
        self.seen.iter().filter(|l| l.contains(text)).count()
    }

    /// Stops the worker with `stop` and waits for it to exit (a graceful stop must succeed);
    /// returns every line it printed.
    pub fn stop(mut self, stop: Stop) -> Vec<String> {
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
        let status = self.exit_within(EXIT_WAIT);
        if stop == Stop::Interrupt {
            assert!(
                status.success(),
                "{} exited with {status} after SIGINT:\n{}",
                self.name,
                self.seen.join("\n")
            );
        }
        // Its pipes are closed: the readers end once they sent what was left.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen)
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
                self.seen.push(line);
            }
            std::thread::sleep(Duration::from_millis(20));
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
                self.seen.push(line);
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
