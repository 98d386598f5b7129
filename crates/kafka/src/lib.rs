//! Kafka client configuration, topics and producers.
