//! Typed, validated records (Faust's `faust.Record` with `validation=True`): good purchases
//! reach the agent; a wrong type or a rule broken is logged with topic, partition, offset and
//! the failing field, and skipped (or dead-lettered, or stops the agent: `OnDecodeError`).
//!
//! ```text
//! cargo run --example deserialization
//! ```

use std::process::ExitCode;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use streams::{App, Error, Validate};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Purchase {
    username: String,
    currency: String,
    amount: i64,
}

impl Validate for Purchase {
    fn validate(&self) -> Result<(), Error> {
        if self.amount <= 0 {
            return Err(Error::validation(
                "amount",
                format!("must be positive, got {}", self.amount),
            ));
        }
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(Error::validation(
                "currency",
                format!("must be an ISO code like EUR, got {:?}", self.currency),
            ));
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let app = match App::builder("deserialization-app")
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
    let purchases = app.topic::<String, Purchase>("purchases").validated();
    // The same topic, untyped: how a buggy producer writes records the agent must survive.
    let raw = app.topic::<String, serde_json::Value>("purchases");

    app.agent(&purchases, |mut purchases| async move {
        while let Some(p) = purchases.next().await {
            println!("valid purchase: {p:?}");
        }
    });

    app.main_with_demo(move |_app| async move {
        let good = Purchase {
            username: "alice".into(),
            currency: "EUR".into(),
            amount: 3,
        };
        purchases.send("alice".to_owned(), good).await?;
        let bad = [
            serde_json::json!({"username": "bob", "currency": "USD", "amount": "twelve"}),
            serde_json::json!({"username": "carol", "currency": "euro", "amount": 7}),
            serde_json::json!({"username": "dave", "currency": "GBP", "amount": -1}),
            serde_json::json!({"username": "erin", "currency": "GBP"}),
        ];
        for value in bad {
            println!("sending a bad record: {value}");
            raw.send("bad".to_owned(), value).await?;
        }
        let good = Purchase {
            username: "frank".into(),
            currency: "USD".into(),
            amount: 40,
        };
        purchases.send("frank".to_owned(), good).await?;
        Ok::<(), streams::Error>(())
    })
}
