//! App services: interval timers, crontab timers and start-up tasks (Faust's `@app.timer`,
//! `@app.crontab` and `@app.task`). The builders check their input and register a
//! [`ServiceSpec`]; the runtime runs them beside the agents.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::{AgentResult, Shared};
use crate::error::{AgentFailure, Error, Result};
use crate::timestamp::Timestamp;

/// A service's body: called at each firing, its future run to the end.
pub(crate) type Body = Arc<dyn Fn() -> BoxFuture<'static, Result<(), AgentFailure>> + Send + Sync>;

/// When a service runs.
pub(crate) enum Schedule {
    /// Every interval, the first one interval after the worker starts.
    Every(Duration),
    /// At the wall times a cron expression names, in a time zone.
    Cron(Box<CronSchedule>),
    /// Once, when the worker starts.
    Once,
}

impl Schedule {
    /// What a service of this schedule is called: `timer`, `crontab` or `task`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Schedule::Every(_) => "timer",
            Schedule::Cron(_) => "crontab",
            Schedule::Once => "task",
        }
    }
}

/// A parsed cron expression and the zone its fields are read in.
pub(crate) struct CronSchedule {
    cron: croner::Cron,
    zone: chrono_tz::Tz,
}

impl CronSchedule {
    /// Parses `expression` in `zone` (an IANA name), naming `timer` in the errors; an
    /// expression that matches no time after `now` is refused too.
    pub(crate) fn parse(timer: &str, expression: &str, zone: &str, now: Timestamp) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidCron {
            timer: timer.to_owned(),
            expression: expression.to_owned(),
            reason,
        };
        let cron = croner::Cron::from_str(expression).map_err(|e| invalid(e.to_string()))?;
        let zone = chrono_tz::Tz::from_str(zone).map_err(|_| Error::UnknownTimeZone {
            timer: timer.to_owned(),
            zone: zone.to_owned(),
        })?;
        let schedule = CronSchedule { cron, zone };
        match schedule.next_after(now) {
            Some(_) => Ok(schedule),
            None => Err(invalid("it matches no time from now on".into())),
        }
    }

    /// The first time the expression matches strictly after `after` (whole seconds).
    pub(crate) fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let at =
            DateTime::<Utc>::from_timestamp_millis(after.as_millis())?.with_timezone(&self.zone);
        let next = self.cron.find_next_occurrence(&at, false).ok()?;
        Some(Timestamp::from_millis(next.timestamp_millis()))
    }
}

/// A declared timer, crontab or task, as the runtime reads it.
pub(crate) struct ServiceSpec {
    pub name: String,
    pub schedule: Schedule,
    /// Runs only on the worker that leads the consumer group.
    pub on_leader: bool,
    /// A failure stops the worker instead of being logged.
    pub stop_app_on_error: bool,
    pub body: Body,
}

/// The options every kind of service has.
#[derive(Debug, Clone, Copy, Default)]
struct Options {
    on_leader: bool,
    stop_app_on_error: bool,
}

fn body<F, Fut>(f: F) -> Body
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: AgentResult,
{
    Arc::new(move || f().map(AgentResult::into_result).boxed())
}

/// Declares the service; [`Error::DuplicateService`] when the app has one of that name.
fn register(
    decls: &Shared,
    name: String,
    schedule: Schedule,
    options: Options,
    body: Body,
) -> Result<()> {
    decls.add_service(ServiceSpec {
        name,
        schedule,
        on_leader: options.on_leader,
        stop_app_on_error: options.stop_app_on_error,
        body,
    })
}

/// A timer that runs its body every interval ([`App::timer`](crate::App::timer); Faust's
/// `@app.timer(interval)`). Finish with [`run`](Self::run).
///
/// The first run is one interval after the worker starts. Runs never overlap: a run that
/// outlasts the interval skips the ticks it missed (as Faust), the next run starts as soon as
/// it ends and the schedule goes on from there. A body that
/// fails (returns an error or panics) is logged with the timer's name and keeps its schedule,
/// unless [`stop_app_on_error`](Self::stop_app_on_error).
///
/// What the body sends goes through the app's producer like any send from user code: under
/// at-least-once it is flushed (and checked delivered) by the worker's next commit; under
/// exactly-once it is part of the commit interval's transaction. A timer has no source offsets
/// of its own: a send that fails stops the worker at that commit, as an agent's would.
pub struct TimerBuilder {
    decls: Shared,
    name: String,
    interval: Duration,
    options: Options,
}

impl TimerBuilder {
    pub(crate) fn new(decls: &Shared, name: &str, interval: Duration) -> Self {
        TimerBuilder {
            decls: decls.clone(),
            name: name.to_owned(),
            interval,
            options: Options::default(),
        }
    }

    /// Runs the timer only on the worker that leads the app's consumer group (Faust's
    /// `on_leader=True`): exactly one worker of the group fires it. The leader is re-checked
    /// at every rebalance; when it dies the timer moves to the next leader within a session
    /// timeout and a rebalance. Workers of an app without agents still form the group: they
    /// subscribe to `<app>-__leader` (one partition, nothing written to it; Faust's leader
    /// topic).
    pub fn on_leader(mut self) -> Self {
        self.options.on_leader = true;
        self
    }

    /// Stops the worker with [`Error::TimerFailed`] when the body fails, as a failed agent
    /// does (the done offsets since the last commit are not committed), instead of logging
    /// the failure and keeping the schedule.
    pub fn stop_app_on_error(mut self) -> Self {
        self.options.stop_app_on_error = true;
        self
    }

    /// Registers the timer with its body (`()` or `Result<(), E>`); the worker runs it.
    /// [`Error::InvalidInterval`] for a zero interval, [`Error::DuplicateService`] for a name
    /// another timer, crontab or task of the app has.
    pub fn run<F, Fut>(self, f: F) -> Result<()>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: AgentResult,
    {
        if self.interval.is_zero() {
            return Err(Error::InvalidInterval { timer: self.name });
        }
        let schedule = Schedule::Every(self.interval);
        register(&self.decls, self.name, schedule, self.options, body(f))
    }
}

/// A timer that runs its body at the wall times a cron expression names
/// ([`App::crontab`](crate::App::crontab); Faust's `@app.crontab(cron_format, timezone=tz)`).
/// Finish with [`run`](Self::run).
///
/// Times are read from the app's [`Clock`](crate::Clock) and the expression in the time zone
/// of [`timezone`](Self::timezone) (UTC by default), so `"0 9 * * *"` in `"Europe/Paris"` fires
/// at 9:00 Paris time, summer and winter. Failures, leader-only runs and sends are as for
/// [`TimerBuilder`].
pub struct CrontabBuilder {
    decls: Shared,
    name: String,
    expression: String,
    zone: String,
    options: Options,
}

impl CrontabBuilder {
    pub(crate) fn new(decls: &Shared, name: &str, expression: &str) -> Self {
        CrontabBuilder {
            decls: decls.clone(),
            name: name.to_owned(),
            expression: expression.to_owned(),
            zone: "UTC".to_owned(),
            options: Options::default(),
        }
    }

    /// The IANA time zone the expression is read in (`"Europe/Paris"`; default `"UTC"`).
    pub fn timezone(mut self, zone: &str) -> Self {
        self.zone = zone.to_owned();
        self
    }

    /// Runs only on the group's leader; see [`TimerBuilder::on_leader`].
    pub fn on_leader(mut self) -> Self {
        self.options.on_leader = true;
        self
    }

    /// Stops the worker when the body fails; see [`TimerBuilder::stop_app_on_error`].
    pub fn stop_app_on_error(mut self) -> Self {
        self.options.stop_app_on_error = true;
        self
    }

    /// Registers the crontab with its body. [`Error::InvalidCron`] for an expression that
    /// does not parse or never fires, [`Error::UnknownTimeZone`] for an unknown zone,
    /// [`Error::DuplicateService`] for a name another timer, crontab or task of the app has.
    pub fn run<F, Fut>(self, f: F) -> Result<()>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: AgentResult,
    {
        let now = self.decls.clock().now();
        let cron = CronSchedule::parse(&self.name, &self.expression, &self.zone, now)?;
        register(
            &self.decls,
            self.name,
            Schedule::Cron(Box::new(cron)),
            self.options,
            body(f),
        )
    }
}

/// A body run once when the worker starts ([`App::task`](crate::App::task); Faust's
/// `@app.task`), beside the agents. Finish with [`run`](Self::run).
///
/// It runs again when the worker restarts after a failed agent (as the agents do). With
/// [`on_leader`](Self::on_leader) it waits until this worker leads the group, then runs once.
/// A failure is logged, or with [`stop_app_on_error`](Self::stop_app_on_error) stops the
/// worker with [`Error::TimerFailed`].
pub struct TaskBuilder {
    decls: Shared,
    name: String,
    options: Options,
}

impl TaskBuilder {
    pub(crate) fn new(decls: &Shared, name: &str) -> Self {
        TaskBuilder {
            decls: decls.clone(),
            name: name.to_owned(),
            options: Options::default(),
        }
    }

    /// Runs the task once this worker leads the group (and never on a worker that does not).
    pub fn on_leader(mut self) -> Self {
        self.options.on_leader = true;
        self
    }

    /// Stops the worker when the body fails; see [`TimerBuilder::stop_app_on_error`].
    pub fn stop_app_on_error(mut self) -> Self {
        self.options.stop_app_on_error = true;
        self
    }

    /// Registers the task with its body. [`Error::DuplicateService`] for a name another
    /// timer, crontab or task of the app has.
    pub fn run<F, Fut>(self, f: F) -> Result<()>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: AgentResult,
    {
        register(
            &self.decls,
            self.name,
            Schedule::Once,
            self.options,
            body(f),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        Timestamp::parse_rfc3339(rfc3339).expect("test time")
    }

    #[test]
    fn a_cron_expression_is_read_in_its_zone() {
        let now = at("2026-03-10T07:58:30Z");
        let utc = CronSchedule::parse("t", "0 9 * * *", "UTC", now).unwrap();
        assert_eq!(utc.next_after(now), Some(at("2026-03-10T09:00:00Z")));
        // Paris is UTC+1 in March (before the summer change on the 29th).
        let paris = CronSchedule::parse("t", "0 9 * * *", "Europe/Paris", now).unwrap();
        assert_eq!(paris.next_after(now), Some(at("2026-03-10T08:00:00Z")));
        // Strictly after: a fire time does not match itself.
        let fired = at("2026-03-10T08:00:00Z");
        assert_eq!(paris.next_after(fired), Some(at("2026-03-11T08:00:00Z")));
    }

    #[test]
    fn bad_cron_input_names_the_timer() {
        let now = at("2026-03-10T07:58:30Z");
        match CronSchedule::parse("report", "61 * * * *", "UTC", now) {
            Err(Error::InvalidCron {
                timer, expression, ..
            }) => {
                assert_eq!(
                    (timer.as_str(), expression.as_str()),
                    ("report", "61 * * * *")
                )
            }
            other => panic!("expected InvalidCron, got {:?}", other.err()),
        }
        match CronSchedule::parse("report", "0 9 * * *", "Mars/Olympus", now) {
            Err(Error::UnknownTimeZone { timer, zone }) => {
                assert_eq!((timer.as_str(), zone.as_str()), ("report", "Mars/Olympus"))
            }
            other => panic!("expected UnknownTimeZone, got {:?}", other.err()),
        }
    }
}
