//! Recovery progress: a bar with records, rate and ETA on a terminal, periodic log lines
//! otherwise. Hand-written (a few lines) rather than a progress-bar crate.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the bar is redrawn on a terminal.
const DRAW_EVERY: Duration = Duration::from_millis(200);
/// How often a log line is written when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Progress of reading `total` records (an upper bound: compaction leaves gaps).
#[derive(Debug)]
pub(crate) struct Progress {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    last_report: Instant,
    tty: bool,
}

impl Progress {
    /// Reports on stderr if it is a terminal, else through `tracing`.
    pub fn new(label: String, total: u64) -> Self {
        let now = Instant::now();
        Progress {
            label,
            total,
            done: 0,
            started: now,
            last_report: now,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// `n` more records were read.
    pub fn advance(&mut self, n: u64) {
        self.done += n;
        let every = if self.tty { DRAW_EVERY } else { LOG_EVERY };
        if self.last_report.elapsed() >= every {
            self.last_report = Instant::now();
            self.report(false);
        }
    }

    /// Done: the final line (always logged).
    pub fn finish(&mut self) {
        self.report(true);
    }

    fn report(&self, last: bool) {
        let line = render(
            &self.label,
            self.done,
            self.total,
            self.started.elapsed(),
            self.tty,
        );
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{line}\x1b[K");
            if last {
                let _ = writeln!(err);
            }
            let _ = err.flush();
        }
        if last || !self.tty {
            tracing::info!(
                "{}",
                render(
                    &self.label,
                    self.done,
                    self.total,
                    self.started.elapsed(),
                    false
                )
            );
        }
    }
}

/// `label [=====>     ] 1200/5000 records, 3.1k records/s, ETA 2s` (no bar without a tty).
fn render(label: &str, done: u64, total: u64, elapsed: Duration, bar: bool) -> String {
    const WIDTH: u64 = 24;
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let remaining = total.saturating_sub(done);
    let eta = if remaining == 0 {
        "done".to_string()
    } else if rate > 0.0 {
        format!("ETA {}", human_duration(remaining as f64 / rate))
    } else {
        "ETA ?".to_string()
    };
    let bar = if bar {
        let filled = (done.min(total) * WIDTH)
            .checked_div(total)
            .unwrap_or(WIDTH)
            .min(WIDTH);
        let mut s = String::from(" [");
        s.extend((0..WIDTH).map(|i| match i.cmp(&filled) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal => '>',
            std::cmp::Ordering::Greater => ' ',
        }));
        s.push(']');
        s
    } else {
        String::new()
    };
    format!(
        "{label}{bar} {done}/{total} records, {} records/s, {eta}",
        human_count(rate)
    )
}

fn human_count(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

fn human_duration(secs: f64) -> String {
    let secs = secs.ceil() as u64;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_records_rate_and_eta() {
        let line = render("totals/3", 2_000, 10_000, Duration::from_secs(2), true);
        assert_eq!(
            line,
            "totals/3 [====>                   ] 2000/10000 records, 1.0k records/s, ETA 8s"
        );
        let line = render("t/0", 10, 10, Duration::from_millis(5), false);
        assert_eq!(line, "t/0 10/10 records, 2.0k records/s, done");
        let line = render("t/0", 0, 7_200_000, Duration::ZERO, false);
        assert!(line.ends_with("ETA ?"), "{line}");
        assert_eq!(human_duration(3725.0), "1h02m");
        assert_eq!(human_duration(61.2), "1m02s");
    }
}
