//! The consumer protocol's member metadata and assignment bytes, as the Java client writes
//! them: a big-endian `i16` version, then `ConsumerProtocolSubscription` /
//! `ConsumerProtocolAssignment` at that version. Newer versions only append fields, so a
//! version above ours is read at ours.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::assignor::{Assignment, Subscription};
use crate::error::{Error, Result};
use crate::topic_partition::TopicPartition;

/// The protocol type of consumer groups.
pub(crate) const PROTOCOL_TYPE: &str = "consumer";
/// Highest subscription/assignment version we write (Java 3.x+ writes 3 as well).
const VERSION: i16 = 3;

/// Topic → sorted partitions.
fn by_topic(tps: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut out: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        out.entry(tp.topic.as_str()).or_default().push(tp.partition);
    }
    for v in out.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    out
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// One topic's partitions, as owned (subscription) and assigned (assignment) topics list them.
fn flatten<'a>(
    topic: &'a TopicName,
    partitions: &'a [i32],
) -> impl Iterator<Item = TopicPartition> + 'a {
    partitions
        .iter()
        .map(|&p| TopicPartition::new(topic.0.to_string(), p))
}

fn with_version(
    version: i16,
    body: impl FnOnce(&mut BytesMut) -> std::result::Result<(), String>,
) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    body(&mut buf).map_err(|e| Error::malformed("consumer protocol metadata", e))?;
    Ok(buf.freeze())
}

/// The metadata this member sends for one protocol in JoinGroup.
pub(crate) fn encode_subscription(
    topics: &[String],
    user_data: Option<Bytes>,
    owned: &[TopicPartition],
    generation: i32,
    rack: Option<&str>,
) -> Result<Bytes> {
    let mut sorted = topics.to_vec();
    sorted.sort();
    sorted.dedup();
    let message = ConsumerProtocolSubscription::default()
        .with_topics(sorted.into_iter().map(StrBytes::from_string).collect())
        .with_user_data(user_data)
        .with_owned_partitions(
            by_topic(owned)
                .into_iter()
                .map(|(t, ps)| {
                    OwnedTopic::default()
                        .with_topic(name(t))
                        .with_partitions(ps)
                })
                .collect(),
        )
        .with_generation_id(generation)
        .with_rack_id(rack.map(|r| StrBytes::from_string(r.to_owned())));
    with_version(VERSION, |buf| {
        message.encode(buf, VERSION).map_err(|e| e.to_string())
    })
}

fn read_version(bytes: &mut Bytes, what: &'static str) -> Result<i16> {
    if bytes.remaining() < 2 {
        return Err(Error::malformed(what, "shorter than its version header"));
    }
    let version = bytes.get_i16();
    if version < 0 {
        return Err(Error::malformed(
            what,
            format!("negative version {version}"),
        ));
    }
    Ok(version.min(VERSION))
}

/// A member's metadata as the leader receives it in the JoinGroup response.
pub(crate) fn decode_subscription(
    member_id: String,
    group_instance_id: Option<String>,
    mut bytes: Bytes,
) -> Result<Subscription> {
    const WHAT: &str = "consumer subscription";
    let version = read_version(&mut bytes, WHAT)?;
    let s = ConsumerProtocolSubscription::decode(&mut bytes, version)
        .map_err(|e| Error::malformed(WHAT, e.to_string()))?;
    Ok(Subscription {
        member_id,
        group_instance_id,
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        user_data: s.user_data,
        owned_partitions: s
            .owned_partitions
            .iter()
            .flat_map(|t| flatten(&t.topic, &t.partitions))
            .collect(),
        generation: s.generation_id,
        rack: s.rack_id.map(|r| r.to_string()),
    })
}

/// One member's assignment, as the leader sends it in SyncGroup.
pub(crate) fn encode_assignment(a: &Assignment) -> Result<Bytes> {
    let message = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(
            by_topic(&a.partitions)
                .into_iter()
                .map(|(t, ps)| {
                    AssignedTopic::default()
                        .with_topic(name(t))
                        .with_partitions(ps)
                })
                .collect(),
        )
        .with_user_data(a.user_data.clone());
    with_version(VERSION, |buf| {
        message.encode(buf, VERSION).map_err(|e| e.to_string())
    })
}

/// This member's assignment from the SyncGroup response; empty bytes mean nothing assigned.
pub(crate) fn decode_assignment(mut bytes: Bytes) -> Result<Assignment> {
    const WHAT: &str = "consumer assignment";
    if bytes.is_empty() {
        return Ok(Assignment::default());
    }
    let version = read_version(&mut bytes, WHAT)?;
    let a = ConsumerProtocolAssignment::decode(&mut bytes, version)
        .map_err(|e| Error::malformed(WHAT, e.to_string()))?;
    Ok(Assignment {
        partitions: a
            .assigned_partitions
            .iter()
            .flat_map(|t| flatten(&t.topic, &t.partitions))
            .collect(),
        user_data: a.user_data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_round_trips_with_version_header() {
        let owned = vec![TopicPartition::new("b", 1), TopicPartition::new("a", 0)];
        let bytes = encode_subscription(
            &["b".into(), "a".into()],
            Some(Bytes::from_static(b"\0\0\0\x05")),
            &owned,
            5,
            Some("r1"),
        )
        .unwrap();
        assert_eq!(&bytes[..2], &[0, 3]);
        // topics: array of 2 strings, "a" then "b"
        assert_eq!(&bytes[2..6], &[0, 0, 0, 2]);
        assert_eq!(&bytes[6..9], &[0, 1, b'a']);
        let s = decode_subscription("m".into(), None, bytes).unwrap();
        assert_eq!(s.topics, ["a", "b"]);
        assert_eq!(s.generation, 5);
        assert_eq!(s.rack.as_deref(), Some("r1"));
        assert_eq!(
            s.owned_partitions,
            [TopicPartition::new("a", 0), TopicPartition::new("b", 1)]
        );
    }

    #[test]
    fn reads_version_0_and_future_versions() {
        // v0: topics ["t"], user_data null.
        let v0 = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
        let s = decode_subscription("m".into(), None, v0).unwrap();
        assert_eq!(s.topics, ["t"]);
        assert_eq!(s.generation, -1);
        // A v9 header with a v3 body plus trailing bytes a later version might add.
        let mut v9 =
            BytesMut::from(&encode_subscription(&["t".into()], None, &[], 2, None).unwrap()[..]);
        v9[1] = 9;
        v9.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            decode_subscription("m".into(), None, v9.freeze())
                .unwrap()
                .generation,
            2
        );
    }

    #[test]
    fn assignment_round_trips_and_empty_means_none() {
        let a = Assignment {
            partitions: vec![TopicPartition::new("t", 2), TopicPartition::new("t", 0)],
            user_data: None,
        };
        let back = decode_assignment(encode_assignment(&a).unwrap()).unwrap();
        assert_eq!(
            back.partitions,
            [TopicPartition::new("t", 0), TopicPartition::new("t", 2)]
        );
        assert_eq!(
            decode_assignment(Bytes::new()).unwrap(),
            Assignment::default()
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&[0u8][..], &[0xff, 0xff], &[0, 3, 0x7f, 0xff, 0xff, 0xff]] {
            assert!(decode_subscription("m".into(), None, Bytes::copy_from_slice(bad)).is_err());
            assert!(decode_assignment(Bytes::copy_from_slice(bad)).is_err());
        }
    }
}
