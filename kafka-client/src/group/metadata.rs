//! [`ConsumerGroupMetadata`]: who consumed, for a transactional producer's offsets.

/// A group member's identity at one generation, as a transactional producer sends it with
/// the offsets of a transaction (TxnOffsetCommit v3+, KIP-447): the group coordinator refuses
/// them when the member is no longer part of that generation, so a zombie that lost its
/// partitions in a rebalance cannot commit them. Take it from
/// [`GroupConsumer::group_metadata`](super::GroupConsumer::group_metadata) (or a rebalance
/// callback's context) right before
/// `Producer::send_offsets_to_transaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// The consumer group's id.
    pub group_id: String,
    /// -1 when the member has not joined (the coordinator then checks nothing but the group).
    pub generation_id: i32,
    /// Empty when the member has not joined.
    pub member_id: String,
    /// Static membership's `group.instance.id`, if configured.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Metadata for a group without member checks (generation -1, no member id), as the Java
    /// client's `new ConsumerGroupMetadata(groupId)`: only for applications that do not use
    /// the group's membership; it gives up KIP-447 zombie fencing.
    pub fn group_only(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}
