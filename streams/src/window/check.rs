//! Checking a windowed table's changelog records, which recovery replays into the store.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::layout::{self, Clock, StoreKey};
use crate::codec::DecodeFailure;
use crate::table::{RecordCheck, Table};

fn failure_text(failure: DecodeFailure) -> String {
    match failure.field {
        Some(field) => format!("at field `{field}`: {}", failure.reason),
        None => failure.reason,
    }
}

/// Checks a windowed table's changelog records: window entries hold the table's key and
/// value types, the clock entry its three times.
pub(super) fn record_check<K, V>(table: &Table<K, V>) -> RecordCheck
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    let (ks, vs) = table.serializers();
    let (ks, vs) = (ks.clone(), vs.clone());
    Arc::new(move |key, value| match layout::parse_key(key) {
        Some(StoreKey::Window { user_key, .. }) => {
            ks.decode::<K>(user_key)
                .map_err(|e| ("key", failure_text(e)))?;
            if let Some(value) = value {
                let (_, bytes) = layout::parse_value(value)
                    .ok_or(("value", "shorter than a window's end time".to_owned()))?;
                vs.decode::<V>(bytes)
                    .map_err(|e| ("value", failure_text(e)))?;
            }
            Ok(())
        }
        Some(StoreKey::Due { user_key, .. }) => {
            ks.decode::<K>(user_key)
                .map_err(|e| ("key", failure_text(e)))?;
            match value {
                Some(v) if !v.is_empty() => {
                    Err(("value", "a due entry has an empty value".to_owned()))
                }
                _ => Ok(()),
            }
        }
        Some(StoreKey::Clock) => match value.map(Clock::decode) {
            Some(None) => Err(("value", "not a window clock (24 bytes)".to_owned())),
            _ => Ok(()),
        },
        None => Err((
            "key",
            "not a windowed table's key (a window, a due entry or the clock): was the changelog \
             written by a table that was not windowed?"
                .to_owned(),
        )),
    })
}
