//! Enumerate a stream into a destination topic (the Faust talk's `stream.enumerate()` demo):
//! one agent numbers what it reads and sends `(number, value)` on; another prints it.
//!
//! ```text
//! cargo run --example streams
//! ```
//!
//! Python (Faust):
//! ```python
//! @app.agent(source_topic)
//! async def process(stream):
//!     async for num_msg, demo_value in stream.enumerate():
//!         await dest_topic.send(key=num_msg, value=demo_value)
//! ```

use std::process::ExitCode;

use futures::StreamExt;
use streams::App;

fn main() -> ExitCode {
    let app = match App::builder("streams-app")
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
    let source = app.topic::<String, String>("source-topic");
    let dest = app.topic::<u64, String>("dest-topic");

    let out = dest.clone();
    app.agent(&source, move |stream| async move {
        let mut numbered = stream.enumerate();
        while let Some((num_msg, demo_value)) = numbered.next().await {
            out.send(num_msg as u64, demo_value).await?;
        }
        Ok::<(), streams::Error>(())
    });

    app.agent(&dest, |stream| async move {
        let mut items = stream.items();
        while let Some((num, value)) = items.next().await {
            println!("dest-topic: #{} {value}", num.unwrap_or_default());
        }
    });

    app.main_with_demo(move |_app| async move {
        for value in ["apple", "banana", "cherry", "damson", "elder"] {
            source.send_value(value.to_owned()).await?;
        }
        Ok::<(), streams::Error>(())
    })
}
