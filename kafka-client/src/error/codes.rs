//! [`KafkaCode`]: the error codes Kafka brokers answer with, by name.
//!
//! The constants and the name table are generated from the protocol's list of error codes. A
//! code this table does not know (a newer broker's) is kept as its number, never turned into
//! another code.

use std::fmt;

/// An error code from a Kafka broker, such as [`KafkaCode::NotLeaderOrFollower`].
///
/// Known codes are constants named as Kafka's `Errors` enum names them (in Rust case), so they
/// can be compared and matched; a code this crate does not know is kept as its number
/// ([`KafkaCode::code`]) and is not retriable. `Display` prints the name and the number;
/// the constants' docs give Kafka's upper-case wire name, as broker logs write it.
///
/// ```
/// use kafka_client::KafkaCode;
/// let code = KafkaCode::try_from_code(6).unwrap();
/// assert_eq!(code, KafkaCode::NotLeaderOrFollower);
/// assert!(code.is_retriable());
/// assert_eq!(code.to_string(), "NotLeaderOrFollower (6)");
///
/// let newer = KafkaCode::try_from_code(9999).unwrap();
/// assert_eq!(newer.code(), 9999);
/// assert!(!newer.is_retriable());
/// assert_eq!(KafkaCode::try_from_code(0), None); // 0 means no error
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KafkaCode(i16);

impl KafkaCode {
    /// The code a response carries, or `None` for 0 (no error). Unknown codes are kept.
    pub const fn try_from_code(code: i16) -> Option<KafkaCode> {
        if code == 0 {
            None
        } else {
            Some(KafkaCode(code))
        }
    }

    /// The numeric code as it travels on the wire.
    pub const fn code(self) -> i16 {
        self.0
    }

    /// Whether the protocol marks this error retriable (the same request may succeed later,
    /// typically after a metadata refresh). Unknown codes are not.
    pub fn is_retriable(self) -> bool {
        describe(self.0).is_some_and(|(_, retriable)| retriable)
    }

    /// The code's name as the constants spell it (`NotLeaderOrFollower`), or `None` for a
    /// code this crate does not know.
    pub fn name(self) -> Option<&'static str> {
        describe(self.0).map(|(name, _)| name)
    }
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "unknown error code {}", self.0),
        }
    }
}

impl fmt::Debug for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "KafkaCode({})", self.0),
        }
    }
}

impl From<KafkaCode> for i16 {
    fn from(code: KafkaCode) -> i16 {
        code.0
    }
}

#[allow(non_upper_case_globals)]
impl KafkaCode {
    /// `UNKNOWN_SERVER_ERROR` (code -1, not retriable).
    pub const UnknownServerError: KafkaCode = KafkaCode(-1);
    /// `OFFSET_OUT_OF_RANGE` (code 1, not retriable).
    pub const OffsetOutOfRange: KafkaCode = KafkaCode(1);
    /// `CORRUPT_MESSAGE` (code 2, retriable).
    pub const CorruptMessage: KafkaCode = KafkaCode(2);
    /// `UNKNOWN_TOPIC_OR_PARTITION` (code 3, retriable).
    pub const UnknownTopicOrPartition: KafkaCode = KafkaCode(3);
    /// `INVALID_FETCH_SIZE` (code 4, not retriable).
    pub const InvalidFetchSize: KafkaCode = KafkaCode(4);
    /// `LEADER_NOT_AVAILABLE` (code 5, retriable).
    pub const LeaderNotAvailable: KafkaCode = KafkaCode(5);
    /// `NOT_LEADER_OR_FOLLOWER` (code 6, retriable).
    pub const NotLeaderOrFollower: KafkaCode = KafkaCode(6);
    /// `REQUEST_TIMED_OUT` (code 7, retriable).
    pub const RequestTimedOut: KafkaCode = KafkaCode(7);
    /// `BROKER_NOT_AVAILABLE` (code 8, not retriable).
    pub const BrokerNotAvailable: KafkaCode = KafkaCode(8);
    /// `REPLICA_NOT_AVAILABLE` (code 9, retriable).
    pub const ReplicaNotAvailable: KafkaCode = KafkaCode(9);
    /// `MESSAGE_TOO_LARGE` (code 10, not retriable).
    pub const MessageTooLarge: KafkaCode = KafkaCode(10);
    /// `STALE_CONTROLLER_EPOCH` (code 11, not retriable).
    pub const StaleControllerEpoch: KafkaCode = KafkaCode(11);
    /// `OFFSET_METADATA_TOO_LARGE` (code 12, not retriable).
    pub const OffsetMetadataTooLarge: KafkaCode = KafkaCode(12);
    /// `NETWORK_EXCEPTION` (code 13, retriable).
    pub const NetworkException: KafkaCode = KafkaCode(13);
    /// `COORDINATOR_LOAD_IN_PROGRESS` (code 14, retriable).
    pub const CoordinatorLoadInProgress: KafkaCode = KafkaCode(14);
    /// `COORDINATOR_NOT_AVAILABLE` (code 15, retriable).
    pub const CoordinatorNotAvailable: KafkaCode = KafkaCode(15);
    /// `NOT_COORDINATOR` (code 16, retriable).
    pub const NotCoordinator: KafkaCode = KafkaCode(16);
    /// `INVALID_TOPIC_EXCEPTION` (code 17, not retriable).
    pub const InvalidTopicException: KafkaCode = KafkaCode(17);
    /// `RECORD_LIST_TOO_LARGE` (code 18, not retriable).
    pub const RecordListTooLarge: KafkaCode = KafkaCode(18);
    /// `NOT_ENOUGH_REPLICAS` (code 19, retriable).
    pub const NotEnoughReplicas: KafkaCode = KafkaCode(19);
    /// `NOT_ENOUGH_REPLICAS_AFTER_APPEND` (code 20, retriable).
    pub const NotEnoughReplicasAfterAppend: KafkaCode = KafkaCode(20);
    /// `INVALID_REQUIRED_ACKS` (code 21, not retriable).
    pub const InvalidRequiredAcks: KafkaCode = KafkaCode(21);
    /// `ILLEGAL_GENERATION` (code 22, not retriable).
    pub const IllegalGeneration: KafkaCode = KafkaCode(22);
    /// `INCONSISTENT_GROUP_PROTOCOL` (code 23, not retriable).
    pub const InconsistentGroupProtocol: KafkaCode = KafkaCode(23);
    /// `INVALID_GROUP_ID` (code 24, not retriable).
    pub const InvalidGroupId: KafkaCode = KafkaCode(24);
    /// `UNKNOWN_MEMBER_ID` (code 25, not retriable).
    pub const UnknownMemberId: KafkaCode = KafkaCode(25);
    /// `INVALID_SESSION_TIMEOUT` (code 26, not retriable).
    pub const InvalidSessionTimeout: KafkaCode = KafkaCode(26);
    /// `REBALANCE_IN_PROGRESS` (code 27, not retriable).
    pub const RebalanceInProgress: KafkaCode = KafkaCode(27);
    /// `INVALID_COMMIT_OFFSET_SIZE` (code 28, not retriable).
    pub const InvalidCommitOffsetSize: KafkaCode = KafkaCode(28);
    /// `TOPIC_AUTHORIZATION_FAILED` (code 29, not retriable).
    pub const TopicAuthorizationFailed: KafkaCode = KafkaCode(29);
    /// `GROUP_AUTHORIZATION_FAILED` (code 30, not retriable).
    pub const GroupAuthorizationFailed: KafkaCode = KafkaCode(30);
    /// `CLUSTER_AUTHORIZATION_FAILED` (code 31, not retriable).
    pub const ClusterAuthorizationFailed: KafkaCode = KafkaCode(31);
    /// `INVALID_TIMESTAMP` (code 32, not retriable).
    pub const InvalidTimestamp: KafkaCode = KafkaCode(32);
    /// `UNSUPPORTED_SASL_MECHANISM` (code 33, not retriable).
    pub const UnsupportedSaslMechanism: KafkaCode = KafkaCode(33);
    /// `ILLEGAL_SASL_STATE` (code 34, not retriable).
    pub const IllegalSaslState: KafkaCode = KafkaCode(34);
    /// `UNSUPPORTED_VERSION` (code 35, not retriable).
    pub const UnsupportedVersion: KafkaCode = KafkaCode(35);
    /// `TOPIC_ALREADY_EXISTS` (code 36, not retriable).
    pub const TopicAlreadyExists: KafkaCode = KafkaCode(36);
    /// `INVALID_PARTITIONS` (code 37, not retriable).
    pub const InvalidPartitions: KafkaCode = KafkaCode(37);
    /// `INVALID_REPLICATION_FACTOR` (code 38, not retriable).
    pub const InvalidReplicationFactor: KafkaCode = KafkaCode(38);
    /// `INVALID_REPLICA_ASSIGNMENT` (code 39, not retriable).
    pub const InvalidReplicaAssignment: KafkaCode = KafkaCode(39);
    /// `INVALID_CONFIG` (code 40, not retriable).
    pub const InvalidConfig: KafkaCode = KafkaCode(40);
    /// `NOT_CONTROLLER` (code 41, retriable).
    pub const NotController: KafkaCode = KafkaCode(41);
    /// `INVALID_REQUEST` (code 42, not retriable).
    pub const InvalidRequest: KafkaCode = KafkaCode(42);
    /// `UNSUPPORTED_FOR_MESSAGE_FORMAT` (code 43, not retriable).
    pub const UnsupportedForMessageFormat: KafkaCode = KafkaCode(43);
    /// `POLICY_VIOLATION` (code 44, not retriable).
    pub const PolicyViolation: KafkaCode = KafkaCode(44);
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` (code 45, not retriable).
    pub const OutOfOrderSequenceNumber: KafkaCode = KafkaCode(45);
    /// `DUPLICATE_SEQUENCE_NUMBER` (code 46, not retriable).
    pub const DuplicateSequenceNumber: KafkaCode = KafkaCode(46);
    /// `INVALID_PRODUCER_EPOCH` (code 47, not retriable).
    pub const InvalidProducerEpoch: KafkaCode = KafkaCode(47);
    /// `INVALID_TXN_STATE` (code 48, not retriable).
    pub const InvalidTxnState: KafkaCode = KafkaCode(48);
    /// `INVALID_PRODUCER_ID_MAPPING` (code 49, not retriable).
    pub const InvalidProducerIdMapping: KafkaCode = KafkaCode(49);
    /// `INVALID_TRANSACTION_TIMEOUT` (code 50, not retriable).
    pub const InvalidTransactionTimeout: KafkaCode = KafkaCode(50);
    /// `CONCURRENT_TRANSACTIONS` (code 51, not retriable).
    pub const ConcurrentTransactions: KafkaCode = KafkaCode(51);
    /// `TRANSACTION_COORDINATOR_FENCED` (code 52, not retriable).
    pub const TransactionCoordinatorFenced: KafkaCode = KafkaCode(52);
    /// `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` (code 53, not retriable).
    pub const TransactionalIdAuthorizationFailed: KafkaCode = KafkaCode(53);
    /// `SECURITY_DISABLED` (code 54, not retriable).
    pub const SecurityDisabled: KafkaCode = KafkaCode(54);
    /// `OPERATION_NOT_ATTEMPTED` (code 55, not retriable).
    pub const OperationNotAttempted: KafkaCode = KafkaCode(55);
    /// `KAFKA_STORAGE_ERROR` (code 56, retriable).
    pub const KafkaStorageError: KafkaCode = KafkaCode(56);
    /// `LOG_DIR_NOT_FOUND` (code 57, not retriable).
    pub const LogDirNotFound: KafkaCode = KafkaCode(57);
    /// `SASL_AUTHENTICATION_FAILED` (code 58, not retriable).
    pub const SaslAuthenticationFailed: KafkaCode = KafkaCode(58);
    /// `UNKNOWN_PRODUCER_ID` (code 59, not retriable).
    pub const UnknownProducerId: KafkaCode = KafkaCode(59);
    /// `REASSIGNMENT_IN_PROGRESS` (code 60, not retriable).
    pub const ReassignmentInProgress: KafkaCode = KafkaCode(60);
    /// `DELEGATION_TOKEN_AUTH_DISABLED` (code 61, not retriable).
    pub const DelegationTokenAuthDisabled: KafkaCode = KafkaCode(61);
    /// `DELEGATION_TOKEN_NOT_FOUND` (code 62, not retriable).
    pub const DelegationTokenNotFound: KafkaCode = KafkaCode(62);
    /// `DELEGATION_TOKEN_OWNER_MISMATCH` (code 63, not retriable).
    pub const DelegationTokenOwnerMismatch: KafkaCode = KafkaCode(63);
    /// `DELEGATION_TOKEN_REQUEST_NOT_ALLOWED` (code 64, not retriable).
    pub const DelegationTokenRequestNotAllowed: KafkaCode = KafkaCode(64);
    /// `DELEGATION_TOKEN_AUTHORIZATION_FAILED` (code 65, not retriable).
    pub const DelegationTokenAuthorizationFailed: KafkaCode = KafkaCode(65);
    /// `DELEGATION_TOKEN_EXPIRED` (code 66, not retriable).
    pub const DelegationTokenExpired: KafkaCode = KafkaCode(66);
    /// `INVALID_PRINCIPAL_TYPE` (code 67, not retriable).
    pub const InvalidPrincipalType: KafkaCode = KafkaCode(67);
    /// `NON_EMPTY_GROUP` (code 68, not retriable).
    pub const NonEmptyGroup: KafkaCode = KafkaCode(68);
    /// `GROUP_ID_NOT_FOUND` (code 69, not retriable).
    pub const GroupIdNotFound: KafkaCode = KafkaCode(69);
    /// `FETCH_SESSION_ID_NOT_FOUND` (code 70, retriable).
    pub const FetchSessionIdNotFound: KafkaCode = KafkaCode(70);
    /// `INVALID_FETCH_SESSION_EPOCH` (code 71, retriable).
    pub const InvalidFetchSessionEpoch: KafkaCode = KafkaCode(71);
    /// `LISTENER_NOT_FOUND` (code 72, retriable).
    pub const ListenerNotFound: KafkaCode = KafkaCode(72);
    /// `TOPIC_DELETION_DISABLED` (code 73, not retriable).
    pub const TopicDeletionDisabled: KafkaCode = KafkaCode(73);
    /// `FENCED_LEADER_EPOCH` (code 74, retriable).
    pub const FencedLeaderEpoch: KafkaCode = KafkaCode(74);
    /// `UNKNOWN_LEADER_EPOCH` (code 75, retriable).
    pub const UnknownLeaderEpoch: KafkaCode = KafkaCode(75);
    /// `UNSUPPORTED_COMPRESSION_TYPE` (code 76, not retriable).
    pub const UnsupportedCompressionType: KafkaCode = KafkaCode(76);
    /// `STALE_BROKER_EPOCH` (code 77, not retriable).
    pub const StaleBrokerEpoch: KafkaCode = KafkaCode(77);
    /// `OFFSET_NOT_AVAILABLE` (code 78, retriable).
    pub const OffsetNotAvailable: KafkaCode = KafkaCode(78);
    /// `MEMBER_ID_REQUIRED` (code 79, not retriable).
    pub const MemberIdRequired: KafkaCode = KafkaCode(79);
    /// `PREFERRED_LEADER_NOT_AVAILABLE` (code 80, retriable).
    pub const PreferredLeaderNotAvailable: KafkaCode = KafkaCode(80);
    /// `GROUP_MAX_SIZE_REACHED` (code 81, not retriable).
    pub const GroupMaxSizeReached: KafkaCode = KafkaCode(81);
    /// `FENCED_INSTANCE_ID` (code 82, not retriable).
    pub const FencedInstanceId: KafkaCode = KafkaCode(82);
    /// `ELIGIBLE_LEADERS_NOT_AVAILABLE` (code 83, retriable).
    pub const EligibleLeadersNotAvailable: KafkaCode = KafkaCode(83);
    /// `ELECTION_NOT_NEEDED` (code 84, retriable).
    pub const ElectionNotNeeded: KafkaCode = KafkaCode(84);
    /// `NO_REASSIGNMENT_IN_PROGRESS` (code 85, not retriable).
    pub const NoReassignmentInProgress: KafkaCode = KafkaCode(85);
    /// `GROUP_SUBSCRIBED_TO_TOPIC` (code 86, not retriable).
    pub const GroupSubscribedToTopic: KafkaCode = KafkaCode(86);
    /// `INVALID_RECORD` (code 87, not retriable).
    pub const InvalidRecord: KafkaCode = KafkaCode(87);
    /// `UNSTABLE_OFFSET_COMMIT` (code 88, retriable).
    pub const UnstableOffsetCommit: KafkaCode = KafkaCode(88);
    /// `THROTTLING_QUOTA_EXCEEDED` (code 89, retriable).
    pub const ThrottlingQuotaExceeded: KafkaCode = KafkaCode(89);
    /// `PRODUCER_FENCED` (code 90, not retriable).
    pub const ProducerFenced: KafkaCode = KafkaCode(90);
    /// `RESOURCE_NOT_FOUND` (code 91, not retriable).
    pub const ResourceNotFound: KafkaCode = KafkaCode(91);
    /// `DUPLICATE_RESOURCE` (code 92, not retriable).
    pub const DuplicateResource: KafkaCode = KafkaCode(92);
    /// `UNACCEPTABLE_CREDENTIAL` (code 93, not retriable).
    pub const UnacceptableCredential: KafkaCode = KafkaCode(93);
    /// `INCONSISTENT_VOTER_SET` (code 94, not retriable).
    pub const InconsistentVoterSet: KafkaCode = KafkaCode(94);
    /// `INVALID_UPDATE_VERSION` (code 95, not retriable).
    pub const InvalidUpdateVersion: KafkaCode = KafkaCode(95);
    /// `FEATURE_UPDATE_FAILED` (code 96, not retriable).
    pub const FeatureUpdateFailed: KafkaCode = KafkaCode(96);
    /// `PRINCIPAL_DESERIALIZATION_FAILURE` (code 97, not retriable).
    pub const PrincipalDeserializationFailure: KafkaCode = KafkaCode(97);
    /// `SNAPSHOT_NOT_FOUND` (code 98, not retriable).
    pub const SnapshotNotFound: KafkaCode = KafkaCode(98);
    /// `POSITION_OUT_OF_RANGE` (code 99, not retriable).
    pub const PositionOutOfRange: KafkaCode = KafkaCode(99);
    /// `UNKNOWN_TOPIC_ID` (code 100, retriable).
    pub const UnknownTopicId: KafkaCode = KafkaCode(100);
    /// `DUPLICATE_BROKER_REGISTRATION` (code 101, not retriable).
    pub const DuplicateBrokerRegistration: KafkaCode = KafkaCode(101);
    /// `BROKER_ID_NOT_REGISTERED` (code 102, not retriable).
    pub const BrokerIdNotRegistered: KafkaCode = KafkaCode(102);
    /// `INCONSISTENT_TOPIC_ID` (code 103, retriable).
    pub const InconsistentTopicId: KafkaCode = KafkaCode(103);
    /// `INCONSISTENT_CLUSTER_ID` (code 104, not retriable).
    pub const InconsistentClusterId: KafkaCode = KafkaCode(104);
    /// `TRANSACTIONAL_ID_NOT_FOUND` (code 105, not retriable).
    pub const TransactionalIdNotFound: KafkaCode = KafkaCode(105);
    /// `FETCH_SESSION_TOPIC_ID_ERROR` (code 106, retriable).
    pub const FetchSessionTopicIdError: KafkaCode = KafkaCode(106);
    /// `INELIGIBLE_REPLICA` (code 107, not retriable).
    pub const IneligibleReplica: KafkaCode = KafkaCode(107);
    /// `NEW_LEADER_ELECTED` (code 108, not retriable).
    pub const NewLeaderElected: KafkaCode = KafkaCode(108);
    /// `OFFSET_MOVED_TO_TIERED_STORAGE` (code 109, not retriable).
    pub const OffsetMovedToTieredStorage: KafkaCode = KafkaCode(109);
    /// `FENCED_MEMBER_EPOCH` (code 110, not retriable).
    pub const FencedMemberEpoch: KafkaCode = KafkaCode(110);
    /// `UNRELEASED_INSTANCE_ID` (code 111, not retriable).
    pub const UnreleasedInstanceId: KafkaCode = KafkaCode(111);
    /// `UNSUPPORTED_ASSIGNOR` (code 112, not retriable).
    pub const UnsupportedAssignor: KafkaCode = KafkaCode(112);
    /// `STALE_MEMBER_EPOCH` (code 113, not retriable).
    pub const StaleMemberEpoch: KafkaCode = KafkaCode(113);
    /// `MISMATCHED_ENDPOINT_TYPE` (code 114, not retriable).
    pub const MismatchedEndpointType: KafkaCode = KafkaCode(114);
    /// `UNSUPPORTED_ENDPOINT_TYPE` (code 115, not retriable).
    pub const UnsupportedEndpointType: KafkaCode = KafkaCode(115);
    /// `UNKNOWN_CONTROLLER_ID` (code 116, not retriable).
    pub const UnknownControllerId: KafkaCode = KafkaCode(116);
    /// `UNKNOWN_SUBSCRIPTION_ID` (code 117, not retriable).
    pub const UnknownSubscriptionId: KafkaCode = KafkaCode(117);
    /// `TELEMETRY_TOO_LARGE` (code 118, not retriable).
    pub const TelemetryTooLarge: KafkaCode = KafkaCode(118);
    /// `INVALID_REGISTRATION` (code 119, not retriable).
    pub const InvalidRegistration: KafkaCode = KafkaCode(119);
    /// `TRANSACTION_ABORTABLE` (code 120, not retriable).
    pub const TransactionAbortable: KafkaCode = KafkaCode(120);
    /// `INVALID_RECORD_STATE` (code 121, not retriable).
    pub const InvalidRecordState: KafkaCode = KafkaCode(121);
    /// `SHARE_SESSION_NOT_FOUND` (code 122, retriable).
    pub const ShareSessionNotFound: KafkaCode = KafkaCode(122);
    /// `INVALID_SHARE_SESSION_EPOCH` (code 123, retriable).
    pub const InvalidShareSessionEpoch: KafkaCode = KafkaCode(123);
    /// `FENCED_STATE_EPOCH` (code 124, not retriable).
    pub const FencedStateEpoch: KafkaCode = KafkaCode(124);
    /// `INVALID_VOTER_KEY` (code 125, not retriable).
    pub const InvalidVoterKey: KafkaCode = KafkaCode(125);
    /// `DUPLICATE_VOTER` (code 126, not retriable).
    pub const DuplicateVoter: KafkaCode = KafkaCode(126);
    /// `VOTER_NOT_FOUND` (code 127, not retriable).
    pub const VoterNotFound: KafkaCode = KafkaCode(127);
    /// `INVALID_REGULAR_EXPRESSION` (code 128, not retriable).
    pub const InvalidRegularExpression: KafkaCode = KafkaCode(128);
    /// `REBOOTSTRAP_REQUIRED` (code 129, not retriable).
    pub const RebootstrapRequired: KafkaCode = KafkaCode(129);
    /// `STREAMS_INVALID_TOPOLOGY` (code 130, not retriable).
    pub const StreamsInvalidTopology: KafkaCode = KafkaCode(130);
    /// `STREAMS_INVALID_TOPOLOGY_EPOCH` (code 131, not retriable).
    pub const StreamsInvalidTopologyEpoch: KafkaCode = KafkaCode(131);
    /// `STREAMS_TOPOLOGY_FENCED` (code 132, not retriable).
    pub const StreamsTopologyFenced: KafkaCode = KafkaCode(132);
    /// `SHARE_SESSION_LIMIT_REACHED` (code 133, retriable).
    pub const ShareSessionLimitReached: KafkaCode = KafkaCode(133);
}

/// The name and whether retrying may succeed, for a known code.
pub(super) fn describe(code: i16) -> Option<(&'static str, bool)> {
    Some(match code {
        -1 => ("UnknownServerError", false),
        1 => ("OffsetOutOfRange", false),
        2 => ("CorruptMessage", true),
        3 => ("UnknownTopicOrPartition", true),
        4 => ("InvalidFetchSize", false),
        5 => ("LeaderNotAvailable", true),
        6 => ("NotLeaderOrFollower", true),
        7 => ("RequestTimedOut", true),
        8 => ("BrokerNotAvailable", false),
        9 => ("ReplicaNotAvailable", true),
        10 => ("MessageTooLarge", false),
        11 => ("StaleControllerEpoch", false),
        12 => ("OffsetMetadataTooLarge", false),
        13 => ("NetworkException", true),
        14 => ("CoordinatorLoadInProgress", true),
        15 => ("CoordinatorNotAvailable", true),
        16 => ("NotCoordinator", true),
        17 => ("InvalidTopicException", false),
        18 => ("RecordListTooLarge", false),
        19 => ("NotEnoughReplicas", true),
        20 => ("NotEnoughReplicasAfterAppend", true),
        21 => ("InvalidRequiredAcks", false),
        22 => ("IllegalGeneration", false),
        23 => ("InconsistentGroupProtocol", false),
        24 => ("InvalidGroupId", false),
        25 => ("UnknownMemberId", false),
        26 => ("InvalidSessionTimeout", false),
        27 => ("RebalanceInProgress", false),
        28 => ("InvalidCommitOffsetSize", false),
        29 => ("TopicAuthorizationFailed", false),
        30 => ("GroupAuthorizationFailed", false),
        31 => ("ClusterAuthorizationFailed", false),
        32 => ("InvalidTimestamp", false),
        33 => ("UnsupportedSaslMechanism", false),
        34 => ("IllegalSaslState", false),
        35 => ("UnsupportedVersion", false),
        36 => ("TopicAlreadyExists", false),
        37 => ("InvalidPartitions", false),
        38 => ("InvalidReplicationFactor", false),
        39 => ("InvalidReplicaAssignment", false),
        40 => ("InvalidConfig", false),
        41 => ("NotController", true),
        42 => ("InvalidRequest", false),
        43 => ("UnsupportedForMessageFormat", false),
        44 => ("PolicyViolation", false),
        45 => ("OutOfOrderSequenceNumber", false),
        46 => ("DuplicateSequenceNumber", false),
        47 => ("InvalidProducerEpoch", false),
        48 => ("InvalidTxnState", false),
        49 => ("InvalidProducerIdMapping", false),
        50 => ("InvalidTransactionTimeout", false),
        51 => ("ConcurrentTransactions", false),
        52 => ("TransactionCoordinatorFenced", false),
        53 => ("TransactionalIdAuthorizationFailed", false),
        54 => ("SecurityDisabled", false),
        55 => ("OperationNotAttempted", false),
        56 => ("KafkaStorageError", true),
        57 => ("LogDirNotFound", false),
        58 => ("SaslAuthenticationFailed", false),
        59 => ("UnknownProducerId", false),
        60 => ("ReassignmentInProgress", false),
        61 => ("DelegationTokenAuthDisabled", false),
        62 => ("DelegationTokenNotFound", false),
        63 => ("DelegationTokenOwnerMismatch", false),
        64 => ("DelegationTokenRequestNotAllowed", false),
        65 => ("DelegationTokenAuthorizationFailed", false),
        66 => ("DelegationTokenExpired", false),
        67 => ("InvalidPrincipalType", false),
        68 => ("NonEmptyGroup", false),
        69 => ("GroupIdNotFound", false),
        70 => ("FetchSessionIdNotFound", true),
        71 => ("InvalidFetchSessionEpoch", true),
        72 => ("ListenerNotFound", true),
        73 => ("TopicDeletionDisabled", false),
        74 => ("FencedLeaderEpoch", true),
        75 => ("UnknownLeaderEpoch", true),
        76 => ("UnsupportedCompressionType", false),
        77 => ("StaleBrokerEpoch", false),
        78 => ("OffsetNotAvailable", true),
        79 => ("MemberIdRequired", false),
        80 => ("PreferredLeaderNotAvailable", true),
        81 => ("GroupMaxSizeReached", false),
        82 => ("FencedInstanceId", false),
        83 => ("EligibleLeadersNotAvailable", true),
        84 => ("ElectionNotNeeded", true),
        85 => ("NoReassignmentInProgress", false),
        86 => ("GroupSubscribedToTopic", false),
        87 => ("InvalidRecord", false),
        88 => ("UnstableOffsetCommit", true),
        89 => ("ThrottlingQuotaExceeded", true),
        90 => ("ProducerFenced", false),
        91 => ("ResourceNotFound", false),
        92 => ("DuplicateResource", false),
        93 => ("UnacceptableCredential", false),
        94 => ("InconsistentVoterSet", false),
        95 => ("InvalidUpdateVersion", false),
        96 => ("FeatureUpdateFailed", false),
        97 => ("PrincipalDeserializationFailure", false),
        98 => ("SnapshotNotFound", false),
        99 => ("PositionOutOfRange", false),
        100 => ("UnknownTopicId", true),
        101 => ("DuplicateBrokerRegistration", false),
        102 => ("BrokerIdNotRegistered", false),
        103 => ("InconsistentTopicId", true),
        104 => ("InconsistentClusterId", false),
        105 => ("TransactionalIdNotFound", false),
        106 => ("FetchSessionTopicIdError", true),
        107 => ("IneligibleReplica", false),
        108 => ("NewLeaderElected", false),
        109 => ("OffsetMovedToTieredStorage", false),
        110 => ("FencedMemberEpoch", false),
        111 => ("UnreleasedInstanceId", false),
        112 => ("UnsupportedAssignor", false),
        113 => ("StaleMemberEpoch", false),
        114 => ("MismatchedEndpointType", false),
        115 => ("UnsupportedEndpointType", false),
        116 => ("UnknownControllerId", false),
        117 => ("UnknownSubscriptionId", false),
        118 => ("TelemetryTooLarge", false),
        119 => ("InvalidRegistration", false),
        120 => ("TransactionAbortable", false),
        121 => ("InvalidRecordState", false),
        122 => ("ShareSessionNotFound", true),
        123 => ("InvalidShareSessionEpoch", true),
        124 => ("FencedStateEpoch", false),
        125 => ("InvalidVoterKey", false),
        126 => ("DuplicateVoter", false),
        127 => ("VoterNotFound", false),
        128 => ("InvalidRegularExpression", false),
        129 => ("RebootstrapRequired", false),
        130 => ("StreamsInvalidTopology", false),
        131 => ("StreamsInvalidTopologyEpoch", false),
        132 => ("StreamsTopologyFenced", false),
        133 => ("ShareSessionLimitReached", true),
        _ => return None,
    })
}
