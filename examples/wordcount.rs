//! Word count: one agent splits sentences and sends each word keyed by itself, so every
//! occurrence of a word lands in one partition; a second agent (concurrency 2) counts.
//!
//! ```text
//! cargo run --example wordcount
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use streams::App;

fn main() -> ExitCode {
    let app = match App::builder("wordcount-app")
        .broker("mock://")
        .topic_partitions(4)
        .build()
    {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sentences = app.topic::<String, String>("sentences");
    let words = app.topic::<String, u64>("words");
    let counts = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));

    let out = words.clone();
    app.agent(&sentences, move |mut sentences| async move {
        while let Some(sentence) = sentences.next().await {
            for word in sentence
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
            {
                out.send(word.to_lowercase(), 1).await?;
            }
        }
        Ok::<(), streams::Error>(())
    });

    let c = counts.clone();
    app.agent_builder("count", &words)
        .concurrency(2)
        .run(move |stream| {
            let c = c.clone();
            async move {
                let mut items = stream.items();
                while let Some((word, n)) = items.next().await {
                    let mut counts = c.lock().unwrap_or_else(|e| e.into_inner());
                    *counts.entry(word.unwrap_or_default()).or_default() += n;
                }
            }
        });

    app.main_with_demo(move |app| async move {
        for line in [
            "the quick brown fox",
            "jumps over the lazy dog",
            "The dog sleeps, the fox runs",
        ] {
            println!("sentence: {line}");
            sentences.send_value(line.to_owned()).await?;
        }
        app.wait_caught_up(std::time::Duration::from_secs(30))
            .await?;
        for (word, n) in counts.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            println!("count {word}: {n}");
        }
        Ok::<(), streams::Error>(())
    })
}
