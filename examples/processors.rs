//! Processors (Faust's `app.stream(topic, processors=[transform, delete_field])`): functions
//! applied to each value in order before the agent sees it. Here one normalises a field and
//! the other deletes personal data (a PII field) before anything downstream can log it.
//!
//! ```text
//! cargo run --example processors
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use futures::StreamExt;
use serde_json::{json, Value};
use streams::{App, Processor};

/// Upper-cases the currency.
fn transform(mut v: Value) -> Value {
    if let Some(c) = v.get("currency").and_then(Value::as_str) {
        v["currency"] = Value::String(c.to_uppercase());
    }
    v
}

/// Removes the credit card number.
fn delete_field(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.remove("credit_card");
    }
    v
}

fn main() -> ExitCode {
    let app = match App::builder("processors-app")
        .broker("mock://")
        .topic_partitions(1)
        .build()
    {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let demo_topic = app.topic::<String, Value>("demo-topic");
    let processors: Vec<Processor<Value>> = vec![Arc::new(transform), Arc::new(delete_field)];

    app.stream(&demo_topic, processors)
        .run_once(|mut stream| async move {
            while let Some(value) = stream.next().await {
                println!("processed: {value}");
            }
        });

    app.main_with_demo(move |_app| async move {
        for (user, currency, card) in [
            ("alice", "eur", "4111-1111-1111-1111"),
            ("bob", "usd", "5500-0000-0000-0004"),
        ] {
            let value = json!({"username": user, "currency": currency, "credit_card": card});
            println!("sent: {value}");
            demo_topic.send(user.to_owned(), value).await?;
        }
        Ok::<(), streams::Error>(())
    })
}
