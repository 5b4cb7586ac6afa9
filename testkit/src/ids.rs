//! Random ids for topics and group members.

use std::hash::{BuildHasher, Hasher};

use uuid::Uuid;

/// A random id (never nil, never Kafka's reserved metadata id): topic ids, member ids.
pub(crate) fn random_uuid() -> Uuid {
    let a = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u128;
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(a);
    let b = h.finish() as u128;
    Uuid::from_u128((a << 64 | b) | 2)
}
