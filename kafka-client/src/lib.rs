//! Native Kafka protocol client.
