//! The talk's "Tumbling Windows": purchases totalled per currency in 5-minute windows kept an
//! hour. The purchases carry explicit timestamps (minutes 0 to 12), so the windows and their
//! totals are the same at every run; each window's total is printed when it closes (stream
//! time, the largest timestamp its partition has seen, passes its end).
//!
//! ```text
//! cargo run --example tumbling                    # the demo, on an embedded mock broker
//! cargo run --example tumbling -- --broker kafka://localhost:9092 worker
//! ```
//!
//! Faust:
//! ```python
//! currency_total = app.Table("currency_total", default=int).tumbling(
//!     timedelta(minutes=5), expires=timedelta(hours=1))
//! @app.agent(purchases)
//! async def totals(purchases):
//!     async for p in purchases:
//!         currency_total[p.currency] += p.amount
//!         print(p.currency, currency_total[p.currency].current())
//! ```

use std::process::ExitCode;
use std::time::Duration;

use examples::windows_demo::{print_closed, run_totals, send_and_print, Purchase};
use streams::App;

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
    let app = App::builder(&env("TUMBLING_APP", "tumbling-app"))
        .broker("mock://")
        .topic_partitions(3)
        .build()?;
    // Keyed by currency: each currency's purchases are in the partition of its table entries.
    let purchases = app.topic::<String, Purchase>(&env("TUMBLING_TOPIC", "purchases"));
    let currency_total = app
        .table::<String, i64>("currency_total")?
        .with_default(i64::default)
        .tumbling(Duration::from_secs(5 * 60))
        .expires(Duration::from_secs(60 * 60))
        .on_window_close(print_closed)
        .build()?;
    let agent = app
        .agent_builder("totals", &purchases)
        .table(&currency_total);
    // The agent (examples/src/windows_demo.rs): `currency_total[p.currency] += p.amount`.
    run_totals(agent, &currency_total);
    Ok(app.main_with_demo(move |app| send_and_print(app, purchases, currency_total)))
}
