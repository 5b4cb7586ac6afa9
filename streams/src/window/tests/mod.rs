//! Tests of windowed tables over detached tables (every partition held, writes straight to the
//! store) and over held tables whose changelog is captured and replayed (restarts).

mod changelog;
mod close_commit;
mod fixed;
mod idle;
mod listing;
mod model;
mod props;
mod restart;
mod session_sliding;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Window, WindowedAt, WindowedTable, WindowedTableBuilder};
use crate::record::Event;
use crate::table::{Table, TableSpec};
use crate::timestamp::Timestamp;

type Closes = Arc<Mutex<Vec<(String, Window, i64)>>>;

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A detached `String -> i64` table with a default of 0.
fn counts(partitions: i32) -> Table<String, i64> {
    Table::<String, i64>::detached(TableSpec::new("test", "counts").partitions(partitions))
        .unwrap()
        .with_default(i64::default)
}

/// Builds the table, recording every close into the returned list.
fn recording(table: WindowedTableBuilder<String, i64>) -> (WindowedTable<String, i64>, Closes) {
    let closes: Closes = Arc::default();
    let sink = closes.clone();
    let table = table
        .on_window_close(move |k, w, v| {
            sink.lock().unwrap().push((k.clone(), w, *v));
        })
        .build()
        .unwrap();
    (table, closes)
}

/// The window API in milliseconds, as the tests' models count.
trait Millis<V> {
    fn at_ms(&self, time: i64) -> WindowedAt<'_, String, V>;
    fn windows_ms(&self, key: &str, from: i64, to: i64) -> crate::Result<Vec<(Window, V)>>;
    fn stream_ms(&self, partition: i32) -> crate::Result<Option<i64>>;
    fn advance_ms(&self, partition: i32, time: i64) -> crate::Result<usize>;
}

impl<V> Millis<V> for WindowedTable<String, V>
where
    V: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn at_ms(&self, time: i64) -> WindowedAt<'_, String, V> {
        self.at_time(Timestamp::from_millis(time))
    }
    fn windows_ms(&self, key: &str, from: i64, to: i64) -> crate::Result<Vec<(Window, V)>> {
        self.windows(
            key,
            Timestamp::from_millis(from),
            Timestamp::from_millis(to),
        )
    }
    fn stream_ms(&self, partition: i32) -> crate::Result<Option<i64>> {
        Ok(self.stream_time(partition)?.map(Timestamp::as_millis))
    }
    fn advance_ms(&self, partition: i32, time: i64) -> crate::Result<usize> {
        self.advance(partition, Timestamp::from_millis(time))
    }
}

/// An event of topic `src` with key and timestamp; its value is `amount`.
fn event(key: &str, timestamp: i64, amount: i64) -> Event<String, i64> {
    Event::new("src", 0, 0, timestamp, Some(key.to_owned()), amount)
}

/// Adds the event's amount to its key's windows.
fn add(table: &WindowedTable<String, i64>, key: &str, time: i64, amount: i64) -> Option<i64> {
    table
        .at(&event(key, time, amount))
        .unwrap()
        .update(key, |v| *v += amount)
        .unwrap()
}
