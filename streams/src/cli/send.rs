//! The CLI's `send`: a key and a value from the command line, checked against the topic's
//! declared types and encoded with its codecs (or codecs named on the command line, or none).

use clap::Args;
use kafka_client::producer::{ProducerRecord, RecordMetadata};

use crate::app::App;
use crate::codec::{Payload, Serializer};
use crate::error::{Error, Result};
use crate::topic::TopicSpec;

use super::render;

/// `send`'s arguments.
#[derive(Debug, Args)]
pub(super) struct SendArgs {
    /// Topic to send to
    pub topic: String,
    /// Value: JSON for JSON topics (a bare word is sent as a JSON string)
    pub value: String,
    /// Record key (raw text, encoded with the topic's key codecs)
    #[arg(long, short = 'k')]
    pub key: Option<String>,
    /// Partition to send to (default: by key, as Kafka's Java producer)
    #[arg(long, short = 'p', value_name = "N")]
    pub partition: Option<i32>,
    /// Send the record this many times
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,
    /// Codec chain for the key instead of the topic's: raw, json, binary, a chain such as
    /// binary|json, or a codec the app registers (an unknown name is a usage error)
    #[arg(long, value_name = "CODECS", conflicts_with = "raw")]
    pub key_serializer: Option<String>,
    /// Codec chain for the value instead of the topic's (names as for --key-serializer)
    #[arg(long, value_name = "CODECS", conflicts_with = "raw")]
    pub value_serializer: Option<String>,
    /// Send the key and value bytes as given: no codec and no type check (to test
    /// dead-lettering, say)
    #[arg(long)]
    pub raw: bool,
    /// Print what was sent as one JSON document on stdout:
    /// {"sent": [{"topic": "...", "partition": 0, "offset": 42}, ...]}
    #[arg(long)]
    pub json: bool,
}

/// Builds the record, then sends it `repeat` times, printing where each landed. A refused
/// record sends nothing; Ctrl-C stops between records with [`Error::Interrupted`].
pub(super) async fn run(app: &App, args: SendArgs) -> Result<()> {
    let mut record = encode(app, &args)?;
    record.partition = args.partition;
    // Listening from here (the first poll installs the handler), so a Ctrl-C while connecting
    // also stops before the first record. No handler, no interrupt: never a false one.
    let mut interrupt = Box::pin(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    });
    if futures::FutureExt::now_or_never(interrupt.as_mut()).is_some() {
        return Err(Error::Interrupted { sent: 0 });
    }
    app.connect().await?;
    let mut sent: Vec<RecordMetadata> = Vec::new();
    let mut outcome = Ok(());
    for _ in 0..args.repeat {
        let written = tokio::select! {
            written = app.send_and_wait(record.clone()) => written,
            _ = &mut interrupt => Err(Error::Interrupted { sent: sent.len() as u64 }),
        };
        match written {
            Ok(written) => {
                if !args.json {
                    println!("{}", render::sent_line(&written));
                }
                sent.push(written);
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    if args.json {
        // Also after a failure: a script learns what did go out.
        print!("{}", render::sent_json(&sent));
    }
    let shutdown = app.shutdown().await;
    outcome.and(shutdown)
}

/// The record `send` writes: `--raw` bytes as given; otherwise the key and value through the
/// chosen codecs, checked against the declared types when the app declares the topic.
pub(super) fn encode(app: &App, args: &SendArgs) -> Result<ProducerRecord> {
    let mut record = ProducerRecord::new(args.topic.clone());
    if args.raw {
        if let Some(key) = &args.key {
            record = record.key(key.clone());
        }
        return Ok(record.value(args.value.clone()));
    }
    let spec = app.topic_spec(&args.topic);
    let spec = spec.as_deref();
    let key_ser = serializer(app, "--key-serializer", &args.key_serializer, spec, |s| {
        s.key_ser()
    })?;
    let value_ser = serializer(
        app,
        "--value-serializer",
        &args.value_serializer,
        spec,
        |s| s.value_ser(),
    )?;
    if let Some(key) = &args.key {
        let text = Payload::Value(serde_json::Value::String(key.clone()));
        let bytes = encode_part(&args.topic, "key", key_ser.as_ref(), text)?;
        if let (Some(spec), Some(ser)) = (spec, &key_ser) {
            check(spec, "key", ser, &bytes)?;
        }
        record = record.key(bytes);
    }
    let value = serde_json::from_str(&args.value)
        .unwrap_or_else(|_| serde_json::Value::String(args.value.clone()));
    let bytes = encode_part(
        &args.topic,
        "value",
        value_ser.as_ref(),
        Payload::Value(value),
    )?;
    if let (Some(spec), Some(ser)) = (spec, &value_ser) {
        check(spec, "value", ser, &bytes)?;
    }
    Ok(record.value(bytes))
}

/// The codec chain for one part: the flag's if given (an unknown codec is a usage error), the
/// declared topic's, or none for an undeclared topic (its text goes as it is).
fn serializer(
    app: &App,
    flag: &str,
    given: &Option<String>,
    spec: Option<&TopicSpec>,
    declared: impl Fn(&TopicSpec) -> Result<&Serializer>,
) -> Result<Option<Serializer>> {
    match (given, spec) {
        (Some(name), _) => app
            .parse_serializer(name)
            .map(Some)
            .map_err(|e| Error::CommandLine {
                source: format!("{flag}: {e}").into(),
            }),
        (None, Some(spec)) => declared(spec).cloned().map(Some),
        (None, None) => Ok(None),
    }
}

fn encode_part(
    topic: &str,
    part: &'static str,
    ser: Option<&Serializer>,
    payload: Payload,
) -> Result<Vec<u8>> {
    match ser {
        None => Ok(payload.into_bytes()),
        Some(ser) => ser.encode_payload(payload).map_err(|e| Error::Encode {
            topic: topic.to_owned(),
            part,
            reason: e.to_string(),
        }),
    }
}

/// Refuses bytes that a worker could not decode as the topic's declared type.
fn check(spec: &TopicSpec, part: &'static str, ser: &Serializer, bytes: &[u8]) -> Result<()> {
    let check = if part == "key" {
        &spec.types.key
    } else {
        &spec.types.value
    };
    check(ser, bytes).map_err(|f| Error::SendRefused {
        topic: spec.name.clone(),
        part,
        field: f.field,
        reason: f.reason,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::record::Validate;

    #[derive(Debug, Serialize, Deserialize)]
    struct Purchase {
        username: String,
        currency: String,
        amount: u32,
    }

    impl Validate for Purchase {
        fn validate(&self) -> Result<()> {
            if self.amount == 0 {
                return Err(Error::validation("amount", "must be positive"));
            }
            Ok(())
        }
    }

    /// `send`'s arguments as parsed from a command line.
    #[derive(Debug, Parser)]
    struct Line {
        #[command(flatten)]
        args: SendArgs,
    }

    fn args(line: &[&str]) -> SendArgs {
        Line::try_parse_from(std::iter::once("send").chain(line.iter().copied()))
            .unwrap()
            .args
    }

    fn app() -> App {
        let app = App::builder("cli-send").build().unwrap();
        app.topic::<String, Purchase>("purchases");
        app.topic::<u64, Purchase>("by-id")
            .value_serializer("binary|json")
            .validated();
        app
    }

    const GOOD: &str = r#"{"username":"ann","currency":"EUR","amount":3}"#;

    #[test]
    fn a_value_of_the_declared_type_is_encoded_with_the_topic_codecs() {
        let record = encode(&app(), &args(&["purchases", GOOD, "--key", "ann"])).unwrap();
        assert_eq!(record.key.as_deref(), Some(&b"ann"[..]));
        assert_eq!(record.value.as_deref(), Some(GOOD.as_bytes()));
    }

    #[test]
    fn a_value_that_does_not_decode_is_refused_naming_the_field() {
        let bad = r#"{"username":"ann","currency":"EUR","amount":"x"}"#;
        let e = encode(&app(), &args(&["purchases", bad])).unwrap_err();
        assert!(
            matches!(e, Error::SendRefused { part: "value", .. }),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with(
                "value does not decode as the topic's value type (purchases): \
                 amount: invalid type: string \"x\", expected u32"
            ),
            "{e}"
        );
        let e = encode(&app(), &args(&["purchases", "hello"])).unwrap_err();
        assert!(e.to_string().contains("expected struct Purchase"), "{e}");
    }

    #[test]
    fn keys_and_validation_rules_are_checked_through_the_topic_codecs() {
        let app = app();
        let e = encode(&app, &args(&["by-id", GOOD, "-k", "ann"])).unwrap_err();
        assert!(matches!(e, Error::SendRefused { part: "key", .. }), "{e:?}");
        let zero = r#"{"username":"ann","currency":"EUR","amount":0}"#;
        let e = encode(&app, &args(&["by-id", zero, "-k", "7"])).unwrap_err();
        assert!(
            e.to_string()
                .contains("amount: validation failed: must be positive"),
            "{e}"
        );
        let record = encode(&app, &args(&["by-id", GOOD, "-k", "7"])).unwrap();
        assert_eq!(record.key.as_deref(), Some(&b"7"[..]));
        // binary|json: the JSON string of the base64 of the JSON.
        assert!(record.value.unwrap().starts_with(b"\"eyJ1"));
    }

    #[test]
    fn raw_sends_the_bytes_as_given_without_a_check() {
        let record = encode(
            &app(),
            &args(&["purchases", "not json", "--raw", "-k", "k"]),
        )
        .unwrap();
        assert_eq!(record.value.as_deref(), Some(&b"not json"[..]));
        assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
        let conflict =
            Line::try_parse_from(["send", "t", "v", "--raw", "--value-serializer", "json"]);
        assert!(conflict.is_err());
    }

    #[test]
    fn serializer_flags_override_the_codecs_and_unknown_names_are_usage_errors() {
        let app = app();
        let record = encode(
            &app,
            &args(&["purchases", GOOD, "--value-serializer", "json|binary"]),
        )
        .unwrap();
        assert!(record.value.unwrap().starts_with(b"eyJ1"));
        let e = encode(
            &app,
            &args(&["purchases", GOOD, "--key-serializer", "gzip", "-k", "a"]),
        )
        .unwrap_err();
        assert!(matches!(e, Error::CommandLine { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("--key-serializer") && text.contains("binary, json, raw"),
            "{text}"
        );
    }

    #[test]
    fn an_undeclared_topic_gets_the_text_as_it_is() {
        let record = encode(&app(), &args(&["elsewhere", "plain words", "-k", "k"])).unwrap();
        assert_eq!(record.value.as_deref(), Some(&b"plain words"[..]));
        let record = encode(
            &app(),
            &args(&["elsewhere", "{\"a\": 1}", "--value-serializer", "json"]),
        )
        .unwrap();
        assert_eq!(record.value.as_deref(), Some(&b"{\"a\":1}"[..]));
    }
}
