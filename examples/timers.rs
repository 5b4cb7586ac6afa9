//! App services, as Faust's `@app.timer`, `@app.crontab` and `@app.task`: a leader-only timer
//! that sends a report every second, a crontab at 9:00 Paris time, and a start-up task. Run
//! several workers of the app: only the group's leader reports; kill it and another worker
//! takes the timer over once the group notices (a session timeout, then a rebalance).
//!
//! ```text
//! cargo run --example timers                     # the demo, on an embedded mock broker
//! TIMERS_WORKER=a cargo run --example timers -- --broker kafka://localhost:9092 worker
//! TIMERS_WORKER=b cargo run --example timers -- --broker kafka://localhost:9092 worker
//! ```
//!
//! `TIMERS_APP` changes the app id, `TIMERS_WORKER` the worker name printed with each tick,
//! `TIMERS_INTERVAL_MS` the timer's interval and `TIMERS_SESSION_MS` the group session timeout
//! (the crash test uses them).
//!
//! Faust:
//! ```python
//! @app.timer(interval=1.0, on_leader=True)
//! async def report():
//!     await reports.send(value=f"report from {worker}")
//!
//! @app.crontab("0 9 * * *", timezone=pytz.timezone("Europe/Paris"), on_leader=True)
//! async def morning():
//!     print("good morning")
//!
//! @app.task
//! async def on_started():
//!     print("worker started")
//! ```

use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use streams::App;
use tokio::sync::mpsc;

fn main() -> ExitCode {
    match build() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn build() -> streams::Result<ExitCode> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let millis = |name: &str, default: &str| {
        Duration::from_millis(env(name, default).parse().unwrap_or(1000))
    };
    let worker = env("TIMERS_WORKER", &format!("pid-{}", std::process::id()));
    let app = App::builder(&env("TIMERS_APP", "timers-app"))
        .broker("mock://")
        .broker_session_timeout(millis("TIMERS_SESSION_MS", "10000"))
        .broker_heartbeat_interval(Duration::from_millis(300))
        .build()?;
    let reports = app.topic::<String, String>("timer-reports");

    // Faust: @app.timer(interval=1.0, on_leader=True)
    let (sender, from) = (reports.clone(), worker.clone());
    app.timer("report", millis("TIMERS_INTERVAL_MS", "1000"))
        .on_leader()
        .run(move || {
            let (reports, worker) = (sender.clone(), from.clone());
            async move {
                println!("leader tick from {worker}");
                // Goes out through the app's producer; flushed with the next commit.
                reports.send_value(format!("report from {worker}")).await
            }
        })?;

    // Faust: @app.crontab("0 9 * * *", timezone=pytz.timezone("Europe/Paris"), on_leader=True)
    app.crontab("morning", "0 9 * * *")
        .timezone("Europe/Paris")
        .on_leader()
        .run(|| async { println!("good morning") })?;

    // Faust: @app.task
    let name = worker.clone();
    app.task("on-started").run(move || {
        let name = name.clone();
        async move { println!("worker {name} started") }
    })?;

    // Reading the reports also makes the worker a member of the app's group.
    let (received, mut reports_seen) = mpsc::unbounded_channel();
    app.agent(&reports, move |mut reports| async move {
        while let Some(report) = reports.next().await {
            println!("received: {}", report.as_str());
            let _ = received.send(());
        }
    });

    Ok(app.main_with_demo(move |_app| async move {
        for _ in 0..3 {
            tokio::time::timeout(Duration::from_secs(30), reports_seen.recv()).await?;
        }
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    }))
}
