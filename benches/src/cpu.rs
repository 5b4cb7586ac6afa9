//! The CPU time this process has used, all threads (live and exited), user plus system: what
//! `getrusage(RUSAGE_SELF)` or bash's `time` report, read from `/proc/self/stat` (the workspace
//! forbids `unsafe`, so no libc call). Linux only; resolution one clock tick (10 ms).

/// Clock ticks per second of `/proc`'s times (`USER_HZ`, 100 on every Linux architecture).
const TICKS_PER_SECOND: f64 = 100.0;

/// User and system CPU seconds of this process so far.
pub fn process_cpu_seconds() -> std::io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    parse_stat(&stat).ok_or_else(|| std::io::Error::other("unexpected /proc/self/stat format"))
}

/// utime + stime from a `/proc/<pid>/stat` line, in seconds.
fn parse_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses: fields are counted after
    // its last ')'. utime and stime are fields 14 and 15, i.e. the 12th and 13th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::parse_stat;

    #[test]
    fn reads_utime_and_stime_after_the_command_name() {
        let line = "4242 (web bench) (x) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 9 0";
        assert_eq!(parse_stat(line), Some(3.25));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        let cpu = super::process_cpu_seconds().expect("Linux /proc");
        assert!(cpu >= 0.0);
    }
}
