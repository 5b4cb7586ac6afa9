//! Codecs that compose (Faust's `serializer="binary|json"`): values are JSON, then base64
//! (`binary`) wrapped in a JSON string, on the wire; the agent sees typed values.
//!
//! ```text
//! cargo run --example serialization
//! ```

use std::process::ExitCode;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use streams::App;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Greeting {
    from: String,
    text: String,
}

fn main() -> ExitCode {
    let app = match App::builder("serialization-app")
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
    let greetings = app
        .topic::<String, Greeting>("greetings")
        .value_serializer("binary|json");

    app.agent(&greetings, |stream| async move {
        let mut events = stream.events();
        while let Some(e) = events.next().await {
            println!("decoded: {} says {:?}", e.value.from, e.value.text);
        }
    });

    app.main_with_demo(move |_app| async move {
        for (from, text) in [("alice", "hello"), ("bob", "hej"), ("carol", "bonjour")] {
            let g = Greeting {
                from: from.into(),
                text: text.into(),
            };
            let wire = greetings.record(None, &g)?.value.unwrap_or_default();
            println!("on the wire: {}", String::from_utf8_lossy(&wire));
            greetings.send(from.to_owned(), g).await?;
        }
        Ok::<(), streams::Error>(())
    })
}
