//! table_bench's `join`, `fill-profiles` and `verify-join`: purchases enriched with their
//! user's profile, the stream-table join benches/peers runs against Kafka Streams'
//! `PeerStreams join` (the records here and there must match field for field).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use kafka_client::admin::{Admin, CreateTopicsOptions, NewTopic};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::ClientConfig;
use serde::{Deserialize, Serialize};

use super::{app, read_all, Args, PARTITIONS};

/// An input record, as streams_bench's (its `prefill` writes them).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Purchase {
    username: String,
    currency: String,
    amount: u32,
    note: String,
}

/// A table record: a user's profile, keyed by username.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    username: String,
    level: String,
    country: String,
}

/// An output record: the purchase with its user's profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Enriched {
    username: String,
    currency: String,
    amount: u32,
    level: String,
    country: String,
}

const LEVELS: [&str; 3] = ["gold", "silver", "bronze"];
const COUNTRIES: [&str; 5] = ["FR", "DE", "US", "JP", "BR"];

/// User `i`'s profile; none for every tenth user, whose purchases an inner join drops.
fn profile(i: u64) -> Option<Profile> {
    (i % 10 != 9).then(|| Profile {
        username: format!("user-{i}"),
        level: LEVELS[(i % 3) as usize].to_owned(),
        country: COUNTRIES[(i % 5) as usize].to_owned(),
    })
}

/// `table_bench join`: see the binary's doc.
pub(super) async fn run(
    started: Instant,
    args: &Args,
    bootstrap: &str,
    input: &str,
    output: &str,
    n: u64,
) -> Result<(), String> {
    let profiles_topic = args
        .profiles
        .as_deref()
        .ok_or("join needs --profiles TOPIC")?;
    if args.wait_profiles > 0 {
        load_profiles(args, bootstrap, profiles_topic).await?;
    }
    let app = app(args, bootstrap)?;
    let purchases = app.topic::<String, Purchase>(input);
    let profiles = app.topic::<String, Profile>(profiles_topic);
    let out = app.topic::<String, Enriched>(output);
    // Kafka Streams: builder.table(profiles)
    let table = app
        .table_builder::<String, Profile>("profiles")
        .from_topic(&profiles)
        .map_err(|e| e.to_string())?;
    let events = Arc::new(AtomicU64::new(0));
    let outputs = Arc::new(AtomicU64::new(0));
    let (seen, sent, stopper) = (events.clone(), outputs.clone(), app.clone());
    app.agent_builder("enrich", &purchases)
        // Every input event counts, joined or not (an inner join drops some before the body);
        // the Nth asks for a graceful stop, which still lets it finish.
        .processor(move |purchase| {
            if seen.fetch_add(1, Ordering::Relaxed) + 1 == n {
                stopper.stop();
            }
            purchase
        })
        .inner_join(&table)
        .run(move |mut joined| {
            let (out, sent) = (out.clone(), sent.clone());
            async move {
                while let Some(event) = joined.next().await {
                    let key = event.key.clone().unwrap_or_default();
                    let (p, profile) = event.into_value();
                    let enriched = Enriched {
                        username: p.username,
                        currency: p.currency,
                        amount: p.amount,
                        level: profile.level,
                        country: profile.country,
                    };
                    out.send(key, enriched).await?;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), streams::Error>(())
            }
        });
    app.run().await.map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    let events = events.load(Ordering::Relaxed);
    if events < n {
        return Err(format!("stopped after {events} of {n} input events"));
    }
    println!(
        "rust-join events={events} outputs={} secs={secs:.3} ev_per_s={:.1}",
        outputs.load(Ordering::Relaxed),
        events as f64 / secs
    );
    Ok(())
}

/// Runs the app with the profiles table alone until the table holds `--wait-profiles`
/// entries, then shuts it down (store and offsets kept): the join app, the same app id and
/// store, starts with the profiles in its table, as Kafka Streams, reading records in
/// timestamp order, has them before the purchases written after them. (Blocking the join's
/// body until the table is full instead does not work: the runtime's dispatch waits for the
/// body, and the table's agent with it.)
async fn load_profiles(args: &Args, bootstrap: &str, topic: &str) -> Result<(), String> {
    let app = app(args, bootstrap)?;
    let profiles = app.topic::<String, Profile>(topic);
    app.table_builder::<String, Profile>("profiles")
        .from_topic(&profiles)
        .map_err(|e| e.to_string())?;
    app.start().await.map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held: u64 = app
            .table_partitions()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|p| p.entries)
            .sum();
        if held >= args.wait_profiles {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the profiles table holds {held} of {} entries after 120 s",
                args.wait_profiles
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.shutdown().await.map_err(|e| e.to_string())
}

/// `table_bench fill-profiles`: see the binary's doc.
pub(super) async fn fill_profiles(bootstrap: &str, topic: &str, users: u64) -> Result<(), String> {
    let client = ClientConfig::new(bootstrap).map_err(|e| e.to_string())?;
    Admin::new(client.clone())
        .await
        .map_err(|e| e.to_string())?
        .create_topics_with(
            vec![NewTopic::new(topic, PARTITIONS, 1)],
            CreateTopicsOptions {
                ignore_existing: true,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let producer = Producer::new(client, ProducerConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let wrote = Instant::now();
    let mut acks = Vec::new();
    for p in (0..users).filter_map(profile) {
        let value = serde_json::to_vec(&p).map_err(|e| e.to_string())?;
        let record = ProducerRecord::new(topic)
            .key(Bytes::from(p.username.into_bytes()))
            .value(Bytes::from(value));
        acks.push(producer.send(record).await.map_err(|e| e.to_string())?);
    }
    let profiles = acks.len();
    for ack in acks {
        ack.await.map_err(|e| e.to_string())?;
    }
    producer.close().await.map_err(|e| e.to_string())?;
    println!(
        "fill-profiles profiles={profiles} secs={:.3}",
        wrote.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Per username: records and the sum of their amounts.
type Tally = HashMap<String, (u64, u64)>;

/// `table_bench verify-join`: see the binary's doc.
pub(super) async fn verify(
    bootstrap: &str,
    profiles_topic: &str,
    input: &str,
    output: &str,
) -> Result<(), String> {
    let decode =
        |what: &str, r: &kafka_client::consumer::ConsumerRecord| -> Result<Bytes, String> {
            r.value
                .clone()
                .ok_or_else(|| format!("{what} {}:{} has no value", r.partition, r.offset))
        };
    let mut profiles: HashMap<String, Profile> = HashMap::new();
    read_all(bootstrap, profiles_topic, |r| {
        let p: Profile =
            serde_json::from_slice(&decode("profile", r)?).map_err(|e| e.to_string())?;
        profiles.insert(p.username.clone(), p);
        Ok(())
    })
    .await?;
    let mut expected = Tally::new();
    let mut expected_n = 0u64;
    read_all(bootstrap, input, |r| {
        let p: Purchase =
            serde_json::from_slice(&decode("purchase", r)?).map_err(|e| e.to_string())?;
        if profiles.contains_key(&p.username) {
            let t = expected.entry(p.username).or_default();
            t.0 += 1;
            t.1 += u64::from(p.amount);
            expected_n += 1;
        }
        Ok(())
    })
    .await?;
    let mut got = Tally::new();
    let mut bad: Vec<String> = Vec::new();
    let (outputs, _) = read_all(bootstrap, output, |r| {
        let e: Enriched = serde_json::from_slice(&decode("output", r)?)
            .map_err(|e| format!("output {}:{}: {e}", r.partition, r.offset))?;
        let keyed_right = r.key.as_deref() == Some(e.username.as_bytes());
        let profile_right = profiles
            .get(&e.username)
            .is_some_and(|p| p.level == e.level && p.country == e.country);
        if !(keyed_right && profile_right) && bad.len() < 5 {
            bad.push(format!("output {}:{}: {e:?}", r.partition, r.offset));
        }
        let t = got.entry(e.username).or_default();
        t.0 += 1;
        t.1 += u64::from(e.amount);
        Ok(())
    })
    .await?;
    println!(
        "verify-join expected={expected_n} output={outputs} users={}",
        got.len()
    );
    if let Some((user, want)) = expected.iter().find(|(u, t)| got.get(*u) != Some(*t)) {
        bad.push(format!(
            "user {user}: expected (records, amount sum) {want:?}, output {:?}",
            got.get(user)
        ));
    }
    if got.len() != expected.len() {
        bad.push(format!(
            "{} users in the output, {} expected",
            got.len(),
            expected.len()
        ));
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("the join's output is wrong: {}", bad.join("; ")))
    }
}
