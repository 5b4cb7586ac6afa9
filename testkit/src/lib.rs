//! Mock Kafka cluster: not built yet (see the open "testkit" issue).
