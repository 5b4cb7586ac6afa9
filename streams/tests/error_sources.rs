//! Errors keep their causes: a variant that wraps one returns it from `source()` (typed, for
//! programs that match on it) and prints its text once.

mod common;

use std::error::Error as _;
use std::time::Duration;

use common::{mock, on_mock, stopped_by_itself};
use futures::StreamExt;
use streams::{AgentFailure, App, Error};

#[test]
fn a_bad_broker_url_keeps_the_kafka_client_error_and_lists_the_schemes_once() {
    let err = App::builder("a")
        .broker("http://a:9092")
        .build()
        .expect_err("http is no broker scheme");
    assert!(matches!(err, Error::BrokerUrl { .. }), "{err:?}");
    let source = err.source().expect("the parse error is the source");
    assert!(
        source.downcast_ref::<kafka_client::Error>().is_some(),
        "{source:?}"
    );
    let message = err.to_string();
    for scheme in ["kafka://", "sasl_ssl://", "sasl_plaintext://"] {
        assert_eq!(
            message.matches(scheme).count(),
            1,
            "{scheme} named once: {message}"
        );
    }
    assert!(
        message.matches("invalid configuration").count() <= 1,
        "said once: {message}"
    );
}

#[test]
fn an_invalid_setting_names_the_setting_and_its_value() {
    let err = App::builder("a")
        .broker("kafka://a:9092")
        .topic_partitions(0)
        .build()
        .expect_err("no partitions");
    assert!(
        matches!(&err, Error::InvalidSetting { name, value, .. } if name == "topic_partitions" && value == "0"),
        "{err:?}"
    );
    let err = App::builder("a")
        .broker("kafka://a:9092")
        .processing_guarantee("twice")
        .build()
        .expect_err("no such guarantee");
    assert!(
        matches!(&err, Error::InvalidSetting { name, .. } if name == "processing_guarantee"),
        "{err:?}"
    );
}

#[test]
fn a_table_serializer_naming_an_unknown_codec_keeps_the_codec_error() {
    let app = App::builder("a").broker("kafka://a:9092").build().unwrap();
    let err = app
        .table_builder::<String, i64>("totals")
        .value_serializer("json|nope")
        .build()
        .expect_err("no codec nope");
    assert!(
        matches!(&err, Error::TableSerializer { part: "value", .. }),
        "{err:?}"
    );
    // A nested streams error is boxed (the enum holds itself).
    let source = err
        .source()
        .and_then(|s| s.downcast_ref::<Box<Error>>())
        .map(|b| &**b);
    assert!(
        matches!(source, Some(Error::UnknownCodec { name, .. }) if name == "nope"),
        "{source:?}"
    );
}

#[derive(Debug)]
struct Refused(i64);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused {}", self.0)
    }
}

impl std::error::Error for Refused {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_error_is_the_source_of_agent_failed() {
    let broker = on_mock(mock().await);
    let app = broker
        .app("agent-error-source")
        .topic_partitions(1)
        .broker_commit_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let input = app.topic::<String, i64>("numbers");
    app.agent(&input, move |mut stream| async move {
        while let Some(n) = stream.next().await {
            if *n == 2 {
                return Err(Refused(*n));
            }
        }
        Ok(())
    });
    app.start().await.unwrap();
    for n in 0..3 {
        input.send("k".to_owned(), n).await.unwrap();
    }
    let err = stopped_by_itself(&app).await.expect_err("the agent failed");
    let Error::AgentFailed { source, .. } = &err else {
        panic!("{err:?}")
    };
    let AgentFailure::Returned(returned) = source else {
        panic!("{source:?}")
    };
    assert!(
        matches!(returned.downcast_ref::<Refused>(), Some(Refused(2))),
        "{returned:?}"
    );
    assert_eq!(err.to_string().matches("refused 2").count(), 1, "{err}");
}
