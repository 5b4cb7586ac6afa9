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

use examples::windows_demo::{send_and_print, tumbling, TumblingDemo};

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
    // The app (examples/src/windows_demo.rs): `currency_total[p.currency] += p.amount` into
    // 5-minute tumbling windows.
    let TumblingDemo {
        app,
        purchases,
        currency_total,
    } = tumbling(
        &env("TUMBLING_APP", "tumbling-app"),
        &env("TUMBLING_TOPIC", "purchases"),
    )?;
    Ok(app.main_with_demo(move |app| send_and_print(app, purchases, currency_total)))
}
