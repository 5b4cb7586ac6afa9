//! [`Api`]: a request type of the Kafka protocol, as errors name it.
//!
//! The constants and the name table are generated from the protocol's list of APIs.

use std::fmt;

/// A request type of the Kafka protocol (its API key), such as [`Api::Produce`]; errors that
/// concern one request ([`Error::Timeout`](crate::Error::Timeout),
/// [`Error::UnsupportedVersion`](crate::Error::UnsupportedVersion)) say which.
///
/// ```
/// use kafka_client::error::Api;
/// assert_eq!(Api::Produce.key(), 0);
/// assert_eq!(Api::from_key(1), Api::Fetch);
/// assert_eq!(Api::Fetch.to_string(), "Fetch");
/// assert_eq!(Api::from_key(999).to_string(), "API 999");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Api(i16);

impl Api {
    /// The API with this numeric key (one this crate does not know is kept as its number).
    pub const fn from_key(key: i16) -> Api {
        Api(key)
    }

    /// The numeric API key as it travels on the wire.
    pub const fn key(self) -> i16 {
        self.0
    }

    /// The API's name (`Produce`), or `None` for a key this crate does not know.
    pub fn name(self) -> Option<&'static str> {
        name(self.0)
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "API {}", self.0),
        }
    }
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Api {
    /// The API of the protocol crate's key (crate-private: that crate stays out of our API).
    pub(crate) fn of(key: kafka_protocol::messages::ApiKey) -> Api {
        Api(key as i16)
    }
}

#[allow(non_upper_case_globals)]
impl Api {
    /// The `Produce` API (key 0).
    pub const Produce: Api = Api(0);
    /// The `Fetch` API (key 1).
    pub const Fetch: Api = Api(1);
    /// The `ListOffsets` API (key 2).
    pub const ListOffsets: Api = Api(2);
    /// The `Metadata` API (key 3).
    pub const Metadata: Api = Api(3);
    /// The `OffsetCommit` API (key 8).
    pub const OffsetCommit: Api = Api(8);
    /// The `OffsetFetch` API (key 9).
    pub const OffsetFetch: Api = Api(9);
    /// The `FindCoordinator` API (key 10).
    pub const FindCoordinator: Api = Api(10);
    /// The `JoinGroup` API (key 11).
    pub const JoinGroup: Api = Api(11);
    /// The `Heartbeat` API (key 12).
    pub const Heartbeat: Api = Api(12);
    /// The `LeaveGroup` API (key 13).
    pub const LeaveGroup: Api = Api(13);
    /// The `SyncGroup` API (key 14).
    pub const SyncGroup: Api = Api(14);
    /// The `DescribeGroups` API (key 15).
    pub const DescribeGroups: Api = Api(15);
    /// The `ListGroups` API (key 16).
    pub const ListGroups: Api = Api(16);
    /// The `SaslHandshake` API (key 17).
    pub const SaslHandshake: Api = Api(17);
    /// The `ApiVersions` API (key 18).
    pub const ApiVersions: Api = Api(18);
    /// The `CreateTopics` API (key 19).
    pub const CreateTopics: Api = Api(19);
    /// The `DeleteTopics` API (key 20).
    pub const DeleteTopics: Api = Api(20);
    /// The `DeleteRecords` API (key 21).
    pub const DeleteRecords: Api = Api(21);
    /// The `InitProducerId` API (key 22).
    pub const InitProducerId: Api = Api(22);
    /// The `OffsetForLeaderEpoch` API (key 23).
    pub const OffsetForLeaderEpoch: Api = Api(23);
    /// The `AddPartitionsToTxn` API (key 24).
    pub const AddPartitionsToTxn: Api = Api(24);
    /// The `AddOffsetsToTxn` API (key 25).
    pub const AddOffsetsToTxn: Api = Api(25);
    /// The `EndTxn` API (key 26).
    pub const EndTxn: Api = Api(26);
    /// The `WriteTxnMarkers` API (key 27).
    pub const WriteTxnMarkers: Api = Api(27);
    /// The `TxnOffsetCommit` API (key 28).
    pub const TxnOffsetCommit: Api = Api(28);
    /// The `DescribeAcls` API (key 29).
    pub const DescribeAcls: Api = Api(29);
    /// The `CreateAcls` API (key 30).
    pub const CreateAcls: Api = Api(30);
    /// The `DeleteAcls` API (key 31).
    pub const DeleteAcls: Api = Api(31);
    /// The `DescribeConfigs` API (key 32).
    pub const DescribeConfigs: Api = Api(32);
    /// The `AlterConfigs` API (key 33).
    pub const AlterConfigs: Api = Api(33);
    /// The `AlterReplicaLogDirs` API (key 34).
    pub const AlterReplicaLogDirs: Api = Api(34);
    /// The `DescribeLogDirs` API (key 35).
    pub const DescribeLogDirs: Api = Api(35);
    /// The `SaslAuthenticate` API (key 36).
    pub const SaslAuthenticate: Api = Api(36);
    /// The `CreatePartitions` API (key 37).
    pub const CreatePartitions: Api = Api(37);
    /// The `CreateDelegationToken` API (key 38).
    pub const CreateDelegationToken: Api = Api(38);
    /// The `RenewDelegationToken` API (key 39).
    pub const RenewDelegationToken: Api = Api(39);
    /// The `ExpireDelegationToken` API (key 40).
    pub const ExpireDelegationToken: Api = Api(40);
    /// The `DescribeDelegationToken` API (key 41).
    pub const DescribeDelegationToken: Api = Api(41);
    /// The `DeleteGroups` API (key 42).
    pub const DeleteGroups: Api = Api(42);
    /// The `ElectLeaders` API (key 43).
    pub const ElectLeaders: Api = Api(43);
    /// The `IncrementalAlterConfigs` API (key 44).
    pub const IncrementalAlterConfigs: Api = Api(44);
    /// The `AlterPartitionReassignments` API (key 45).
    pub const AlterPartitionReassignments: Api = Api(45);
    /// The `ListPartitionReassignments` API (key 46).
    pub const ListPartitionReassignments: Api = Api(46);
    /// The `OffsetDelete` API (key 47).
    pub const OffsetDelete: Api = Api(47);
    /// The `DescribeClientQuotas` API (key 48).
    pub const DescribeClientQuotas: Api = Api(48);
    /// The `AlterClientQuotas` API (key 49).
    pub const AlterClientQuotas: Api = Api(49);
    /// The `DescribeUserScramCredentials` API (key 50).
    pub const DescribeUserScramCredentials: Api = Api(50);
    /// The `AlterUserScramCredentials` API (key 51).
    pub const AlterUserScramCredentials: Api = Api(51);
    /// The `Vote` API (key 52).
    pub const Vote: Api = Api(52);
    /// The `BeginQuorumEpoch` API (key 53).
    pub const BeginQuorumEpoch: Api = Api(53);
    /// The `EndQuorumEpoch` API (key 54).
    pub const EndQuorumEpoch: Api = Api(54);
    /// The `DescribeQuorum` API (key 55).
    pub const DescribeQuorum: Api = Api(55);
    /// The `AlterPartition` API (key 56).
    pub const AlterPartition: Api = Api(56);
    /// The `UpdateFeatures` API (key 57).
    pub const UpdateFeatures: Api = Api(57);
    /// The `Envelope` API (key 58).
    pub const Envelope: Api = Api(58);
    /// The `FetchSnapshot` API (key 59).
    pub const FetchSnapshot: Api = Api(59);
    /// The `DescribeCluster` API (key 60).
    pub const DescribeCluster: Api = Api(60);
    /// The `DescribeProducers` API (key 61).
    pub const DescribeProducers: Api = Api(61);
    /// The `BrokerRegistration` API (key 62).
    pub const BrokerRegistration: Api = Api(62);
    /// The `BrokerHeartbeat` API (key 63).
    pub const BrokerHeartbeat: Api = Api(63);
    /// The `UnregisterBroker` API (key 64).
    pub const UnregisterBroker: Api = Api(64);
    /// The `DescribeTransactions` API (key 65).
    pub const DescribeTransactions: Api = Api(65);
    /// The `ListTransactions` API (key 66).
    pub const ListTransactions: Api = Api(66);
    /// The `AllocateProducerIds` API (key 67).
    pub const AllocateProducerIds: Api = Api(67);
    /// The `ConsumerGroupHeartbeat` API (key 68).
    pub const ConsumerGroupHeartbeat: Api = Api(68);
    /// The `ConsumerGroupDescribe` API (key 69).
    pub const ConsumerGroupDescribe: Api = Api(69);
    /// The `ControllerRegistration` API (key 70).
    pub const ControllerRegistration: Api = Api(70);
    /// The `GetTelemetrySubscriptions` API (key 71).
    pub const GetTelemetrySubscriptions: Api = Api(71);
    /// The `PushTelemetry` API (key 72).
    pub const PushTelemetry: Api = Api(72);
    /// The `AssignReplicasToDirs` API (key 73).
    pub const AssignReplicasToDirs: Api = Api(73);
    /// The `ListConfigResources` API (key 74).
    pub const ListConfigResources: Api = Api(74);
    /// The `DescribeTopicPartitions` API (key 75).
    pub const DescribeTopicPartitions: Api = Api(75);
    /// The `ShareGroupHeartbeat` API (key 76).
    pub const ShareGroupHeartbeat: Api = Api(76);
    /// The `ShareGroupDescribe` API (key 77).
    pub const ShareGroupDescribe: Api = Api(77);
    /// The `ShareFetch` API (key 78).
    pub const ShareFetch: Api = Api(78);
    /// The `ShareAcknowledge` API (key 79).
    pub const ShareAcknowledge: Api = Api(79);
    /// The `AddRaftVoter` API (key 80).
    pub const AddRaftVoter: Api = Api(80);
    /// The `RemoveRaftVoter` API (key 81).
    pub const RemoveRaftVoter: Api = Api(81);
    /// The `UpdateRaftVoter` API (key 82).
    pub const UpdateRaftVoter: Api = Api(82);
    /// The `InitializeShareGroupState` API (key 83).
    pub const InitializeShareGroupState: Api = Api(83);
    /// The `ReadShareGroupState` API (key 84).
    pub const ReadShareGroupState: Api = Api(84);
    /// The `WriteShareGroupState` API (key 85).
    pub const WriteShareGroupState: Api = Api(85);
    /// The `DeleteShareGroupState` API (key 86).
    pub const DeleteShareGroupState: Api = Api(86);
    /// The `ReadShareGroupStateSummary` API (key 87).
    pub const ReadShareGroupStateSummary: Api = Api(87);
    /// The `DescribeShareGroupOffsets` API (key 90).
    pub const DescribeShareGroupOffsets: Api = Api(90);
    /// The `AlterShareGroupOffsets` API (key 91).
    pub const AlterShareGroupOffsets: Api = Api(91);
    /// The `DeleteShareGroupOffsets` API (key 92).
    pub const DeleteShareGroupOffsets: Api = Api(92);
}

/// The name of a known API key.
pub(super) fn name(key: i16) -> Option<&'static str> {
    Some(match key {
        0 => "Produce",
        1 => "Fetch",
        2 => "ListOffsets",
        3 => "Metadata",
        8 => "OffsetCommit",
        9 => "OffsetFetch",
        10 => "FindCoordinator",
        11 => "JoinGroup",
        12 => "Heartbeat",
        13 => "LeaveGroup",
        14 => "SyncGroup",
        15 => "DescribeGroups",
        16 => "ListGroups",
        17 => "SaslHandshake",
        18 => "ApiVersions",
        19 => "CreateTopics",
        20 => "DeleteTopics",
        21 => "DeleteRecords",
        22 => "InitProducerId",
        23 => "OffsetForLeaderEpoch",
        24 => "AddPartitionsToTxn",
        25 => "AddOffsetsToTxn",
        26 => "EndTxn",
        27 => "WriteTxnMarkers",
        28 => "TxnOffsetCommit",
        29 => "DescribeAcls",
        30 => "CreateAcls",
        31 => "DeleteAcls",
        32 => "DescribeConfigs",
        33 => "AlterConfigs",
        34 => "AlterReplicaLogDirs",
        35 => "DescribeLogDirs",
        36 => "SaslAuthenticate",
        37 => "CreatePartitions",
        38 => "CreateDelegationToken",
        39 => "RenewDelegationToken",
        40 => "ExpireDelegationToken",
        41 => "DescribeDelegationToken",
        42 => "DeleteGroups",
        43 => "ElectLeaders",
        44 => "IncrementalAlterConfigs",
        45 => "AlterPartitionReassignments",
        46 => "ListPartitionReassignments",
        47 => "OffsetDelete",
        48 => "DescribeClientQuotas",
        49 => "AlterClientQuotas",
        50 => "DescribeUserScramCredentials",
        51 => "AlterUserScramCredentials",
        52 => "Vote",
        53 => "BeginQuorumEpoch",
        54 => "EndQuorumEpoch",
        55 => "DescribeQuorum",
        56 => "AlterPartition",
        57 => "UpdateFeatures",
        58 => "Envelope",
        59 => "FetchSnapshot",
        60 => "DescribeCluster",
        61 => "DescribeProducers",
        62 => "BrokerRegistration",
        63 => "BrokerHeartbeat",
        64 => "UnregisterBroker",
        65 => "DescribeTransactions",
        66 => "ListTransactions",
        67 => "AllocateProducerIds",
        68 => "ConsumerGroupHeartbeat",
        69 => "ConsumerGroupDescribe",
        70 => "ControllerRegistration",
        71 => "GetTelemetrySubscriptions",
        72 => "PushTelemetry",
        73 => "AssignReplicasToDirs",
        74 => "ListConfigResources",
        75 => "DescribeTopicPartitions",
        76 => "ShareGroupHeartbeat",
        77 => "ShareGroupDescribe",
        78 => "ShareFetch",
        79 => "ShareAcknowledge",
        80 => "AddRaftVoter",
        81 => "RemoveRaftVoter",
        82 => "UpdateRaftVoter",
        83 => "InitializeShareGroupState",
        84 => "ReadShareGroupState",
        85 => "WriteShareGroupState",
        86 => "DeleteShareGroupState",
        87 => "ReadShareGroupStateSummary",
        90 => "DescribeShareGroupOffsets",
        91 => "AlterShareGroupOffsets",
        92 => "DeleteShareGroupOffsets",
        _ => return None,
    })
}
