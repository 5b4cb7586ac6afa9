//! Runs the app's timers, crontabs and tasks beside the agents: one tokio task each, started
//! with every worker and stopped with it. Intervals tick on tokio's clock and cron fire times
//! are read from the app's Clock, so paused tokio time drives them all.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use kafka_client::producer::Producer;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use super::commit::Committer;
use crate::clock::Clock;
use crate::declarations::{Declarations, Schedule, ServiceSpec};
use crate::error::{panic_message, AgentFailure, Error, Result};
use crate::outbox::in_transactions;

/// The running services of one worker.
pub(crate) struct Services {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Services {
    /// Starts every declared service. `leader` says whether this worker leads the group now;
    /// a service that fails with `stop_app_on_error` halts `committer`, which stops the worker
    /// as a failed agent does. Under exactly-once their sends go into `transactions`.
    pub(crate) fn start(
        decls: &Declarations,
        leader: &watch::Sender<bool>,
        committer: &Arc<Committer>,
        transactions: Option<Arc<Producer>>,
    ) -> Services {
        let (stop, stopping) = watch::channel(false);
        let clock = decls.clock();
        let tasks = decls
            .services()
            .into_iter()
            .map(|spec| {
                let (clock, leader, stopping) =
                    (clock.clone(), leader.subscribe(), stopping.clone());
                let committer = committer.clone();
                let work = async move {
                    if let Err(e) = run(&spec, &clock, leader, stopping).await {
                        committer.agent_failed(e).await;
                    }
                };
                match &transactions {
                    Some(producer) => tokio::spawn(in_transactions(producer.clone(), work)),
                    None => tokio::spawn(work),
                }
            })
            .collect();
        Services { stop, tasks }
    }

    /// Asks every service to end: none fires again; a body running now finishes.
    pub(crate) fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// The services' tasks, to join (or abort) with the agents' at the worker's stop.
    pub(crate) fn take_tasks(&mut self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut self.tasks)
    }
}

/// Runs one service until `stop` turns true: `Err(Error::TimerFailed)` when its body failed
/// and it was declared `stop_app_on_error`. A leader-only service fires only while `leader`
/// is true.
pub(crate) async fn run(
    spec: &ServiceSpec,
    clock: &Clock,
    mut leader: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    match &spec.schedule {
        Schedule::Once => {
            if spec.on_leader {
                tokio::select! {
                    biased;
                    _ = until_stopped(&mut stop) => return Ok(()),
                    led = leader.wait_for(|l| *l) => if led.is_err() { return Ok(()) },
                }
            }
            fire(spec).await
        }
        Schedule::Every(every) => {
            let mut ticks = interval_at(Instant::now() + *every, *every);
            // A body that outlasts the interval skips the ticks it missed (as Faust).
            ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    biased;
                    _ = until_stopped(&mut stop) => return Ok(()),
                    _ = ticks.tick() => {}
                }
                if !spec.on_leader || *leader.borrow() {
                    fire(spec).await?;
                }
            }
        }
        Schedule::Cron(cron) => {
            let mut last = clock.now();
            loop {
                // Strictly after the last fire time: a body quicker than the clock's
                // resolution must not fire twice for one time; fire times it overran are
                // skipped.
                let after = clock.now().max(last);
                let Some(next) = cron.next_after(after) else {
                    tracing::warn!(timer = %spec.name, "the crontab matches no later time; it stops");
                    return Ok(());
                };
                tokio::select! {
                    biased;
                    _ = until_stopped(&mut stop) => return Ok(()),
                    _ = clock.sleep_until(next) => {}
                }
                last = next;
                if !spec.on_leader || *leader.borrow() {
                    fire(spec).await?;
                }
            }
        }
    }
}

/// Completes once a stop is asked for (or its sender is gone).
async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs the body once. A failure is logged and passes, unless the service stops the app on
/// error.
async fn fire(spec: &ServiceSpec) -> Result<()> {
    let outcome = match AssertUnwindSafe(async { (spec.body)().await })
        .catch_unwind()
        .await
    {
        Ok(outcome) => outcome,
        Err(panic) => Err(AgentFailure::Panicked(panic_message(&*panic).to_owned())),
    };
    match outcome {
        Ok(()) => Ok(()),
        Err(source) if spec.stop_app_on_error => Err(Error::TimerFailed {
            timer: spec.name.clone(),
            source,
        }),
        Err(error) => {
            tracing::warn!(timer = %spec.name, %error, "timer failed; it keeps its schedule");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::declarations::{Body, CronSchedule};
    use crate::timestamp::Timestamp;

    fn at(rfc3339: &str) -> Timestamp {
        Timestamp::parse_rfc3339(rfc3339).expect("test time")
    }

    /// A body that records the clock's time at each call.
    fn recording(clock: &Clock) -> (Body, Arc<Mutex<Vec<Timestamp>>>) {
        let fires = Arc::new(Mutex::new(Vec::new()));
        let (clock, seen) = (clock.clone(), fires.clone());
        let body: Body = Arc::new(move || {
            seen.lock().unwrap().push(clock.now());
            futures::future::ready(Ok(())).boxed()
        });
        (body, fires)
    }

    fn spec(schedule: Schedule, body: Body) -> ServiceSpec {
        ServiceSpec {
            name: "t".into(),
            schedule,
            on_leader: false,
            stop_app_on_error: false,
            body,
        }
    }

    /// Runs `spec` in a task; the senders lead and stop it.
    fn spawn(
        spec: ServiceSpec,
        clock: &Clock,
        leads: bool,
    ) -> (
        watch::Sender<bool>,
        watch::Sender<bool>,
        JoinHandle<Result<()>>,
    ) {
        let (leader, leading) = watch::channel(leads);
        let (stop, stopping) = watch::channel(false);
        let clock = clock.clone();
        let task = tokio::spawn(async move { run(&spec, &clock, leading, stopping).await });
        (leader, stop, task)
    }

    fn times(start: Timestamp, every: Duration, n: u32) -> Vec<Timestamp> {
        (1..=n).map(|i| start.saturating_add(every * i)).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn an_interval_timer_fires_once_per_interval() {
        let start = at("2026-01-01T00:00:00Z");
        let clock = Clock::starting_at(start);
        let (body, fires) = recording(&clock);
        let every = Duration::from_secs(10);
        let (_leader, stop, task) = spawn(spec(Schedule::Every(every), body), &clock, false);
        tokio::time::sleep(every * 5 + every / 2).await;
        assert_eq!(*fires.lock().unwrap(), times(start, every, 5));
        stop.send_replace(true);
        task.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_body_makes_the_timer_skip_the_ticks_it_missed() {
        let start = at("2026-01-01T00:00:00Z");
        let clock = Clock::starting_at(start);
        let every = Duration::from_secs(10);
        let (record, fires) = recording(&clock);
        // Each run lasts 2.5 intervals: the ticks it overran are not made up one by one.
        let body: Body = Arc::new(move || {
            let recorded = record();
            async move {
                recorded.await?;
                tokio::time::sleep(every * 5 / 2).await;
                Ok(())
            }
            .boxed()
        });
        let (_leader, _stop, _task) = spawn(spec(Schedule::Every(every), body), &clock, false);
        tokio::time::sleep(every * 7).await;
        let secs = |s| start.saturating_add(Duration::from_secs(s));
        // Late ticks fire once at the end of the run, then the schedule goes on from there.
        assert_eq!(*fires.lock().unwrap(), vec![secs(10), secs(35), secs(60)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_crontab_fires_at_the_wall_times_of_its_zone() {
        let start = at("2026-03-10T07:58:30Z");
        let clock = Clock::starting_at(start);
        let (body, fires) = recording(&clock);
        // India is UTC+5:30: "*/5" minutes fall on the same instants as in UTC.
        let cron = CronSchedule::parse("t", "*/5 * * * *", "Asia/Kolkata", start).unwrap();
        let (_leader, _stop, _task) =
            spawn(spec(Schedule::Cron(Box::new(cron)), body), &clock, false);
        clock.sleep_until(at("2026-03-10T08:12:00Z")).await;
        tokio::task::yield_now().await;
        assert_eq!(
            *fires.lock().unwrap(),
            vec![
                at("2026-03-10T08:00:00Z"),
                at("2026-03-10T08:05:00Z"),
                at("2026-03-10T08:10:00Z"),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_daily_crontab_follows_its_zone_across_a_summer_time_change() {
        let start = at("2026-03-27T00:00:00Z");
        let clock = Clock::starting_at(start);
        let (body, fires) = recording(&clock);
        // 9:30 in Paris: 8:30 UTC in winter (UTC+1), 7:30 UTC from March 29 (UTC+2).
        let cron = CronSchedule::parse("t", "30 9 * * *", "Europe/Paris", start).unwrap();
        let (_leader, _stop, _task) =
            spawn(spec(Schedule::Cron(Box::new(cron)), body), &clock, false);
        clock.sleep_until(at("2026-03-30T00:00:00Z")).await;
        tokio::task::yield_now().await;
        assert_eq!(
            *fires.lock().unwrap(),
            vec![
                at("2026-03-27T08:30:00Z"),
                at("2026-03-28T08:30:00Z"),
                at("2026-03-29T07:30:00Z"),
            ]
        );
    }

    /// A body that fails in turn by an error and by a panic.
    fn failing(calls: &Arc<AtomicUsize>) -> Body {
        let calls = calls.clone();
        Arc::new(move || {
            if calls.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                futures::future::ready(Err(AgentFailure::Returned("boom".into()))).boxed()
            } else {
                panic!("kaboom")
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_body_keeps_its_schedule() {
        let clock = Clock::starting_at(at("2026-01-01T00:00:00Z"));
        let calls = Arc::new(AtomicUsize::new(0));
        let every = Duration::from_secs(1);
        let (_leader, _stop, task) =
            spawn(spec(Schedule::Every(every), failing(&calls)), &clock, false);
        tokio::time::sleep(every * 4 + every / 2).await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(!task.is_finished());
    }

    #[tokio::test(start_paused = true)]
    async fn stop_app_on_error_ends_the_timer_with_its_failure() {
        let clock = Clock::starting_at(at("2026-01-01T00:00:00Z"));
        let calls = Arc::new(AtomicUsize::new(1)); // the first call panics
        let mut spec = spec(Schedule::Every(Duration::from_secs(1)), failing(&calls));
        spec.stop_app_on_error = true;
        let (_leader, _stop, task) = spawn(spec, &clock, false);
        match task.await.unwrap() {
            Err(Error::TimerFailed {
                timer,
                source: AgentFailure::Panicked(message),
            }) => assert_eq!((timer.as_str(), message.as_str()), ("t", "kaboom")),
            other => panic!("expected TimerFailed, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_only_timer_fires_only_while_this_worker_leads() {
        let start = at("2026-01-01T00:00:00Z");
        let clock = Clock::starting_at(start);
        let (body, fires) = recording(&clock);
        let every = Duration::from_secs(10);
        let mut spec = spec(Schedule::Every(every), body);
        spec.on_leader = true;
        let (leader, _stop, _task) = spawn(spec, &clock, false);
        tokio::time::sleep(every * 3 + every / 2).await; // 35 s: not leading
        assert!(fires.lock().unwrap().is_empty());
        leader.send_replace(true);
        tokio::time::sleep(every * 2).await; // 55 s: fired at 40 and 50
        leader.send_replace(false);
        tokio::time::sleep(every * 2).await;
        let expected: Vec<_> = times(start, every, 5).split_off(3);
        assert_eq!(*fires.lock().unwrap(), expected);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_only_task_runs_once_when_this_worker_leads() {
        let start = at("2026-01-01T00:00:00Z");
        let clock = Clock::starting_at(start);
        let (body, fires) = recording(&clock);
        let mut spec = spec(Schedule::Once, body);
        spec.on_leader = true;
        let (leader, _stop, task) = spawn(spec, &clock, false);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(fires.lock().unwrap().is_empty());
        leader.send_replace(true);
        task.await.unwrap().unwrap();
        leader.send_replace(false);
        assert_eq!(
            *fires.lock().unwrap(),
            vec![start.saturating_add(Duration::from_secs(30))]
        );
    }
}
