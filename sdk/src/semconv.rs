//! OpenTelemetry messaging semantic-convention attribute names used on the SDK's spans
//! (semantic conventions 1.27+, messaging; Kafka-specific names where they exist).

/// `kafka`.
pub const MESSAGING_SYSTEM: &str = "messaging.system";
/// `send` on producer spans, `process` on consumer spans.
pub const MESSAGING_OPERATION_TYPE: &str = "messaging.operation.type";
/// The topic.
pub const MESSAGING_DESTINATION_NAME: &str = "messaging.destination.name";
/// The partition, as a string.
pub const MESSAGING_DESTINATION_PARTITION_ID: &str = "messaging.destination.partition.id";
/// The record offset.
pub const MESSAGING_KAFKA_OFFSET: &str = "messaging.kafka.offset";
/// The record key, when it is UTF-8.
pub const MESSAGING_KAFKA_MESSAGE_KEY: &str = "messaging.kafka.message.key";
/// The consumer group.
pub const MESSAGING_CONSUMER_GROUP_NAME: &str = "messaging.consumer.group.name";
/// The event id (`ce_id`).
pub const MESSAGING_MESSAGE_ID: &str = "messaging.message.id";
