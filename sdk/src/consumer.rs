//! [`TracedConsumer`]: a `StreamConsumer` whose records come with their [`EventContext`] and a
//! `process {topic}` span, and whose handling scope makes every produce a reaction.

use std::future::Future;

use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message, OwnedMessage};
use serde::de::DeserializeOwned;
use tracing::{Instrument, Span};

use crate::aliases::AliasTable;
use crate::context::EventContext;
use crate::scope::handling;
use crate::spans;

/// A consumer that reads the wire format of every record it receives.
pub struct TracedConsumer {
    consumer: StreamConsumer,
    group: String,
    aliases: AliasTable,
}

impl std::fmt::Debug for TracedConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedConsumer")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl TracedConsumer {
    /// Wraps `consumer`; `group` is its consumer group (recorded on process spans).
    pub fn new(consumer: StreamConsumer, group: impl Into<String>) -> Self {
        Self {
            consumer,
            group: group.into(),
            aliases: AliasTable::default(),
        }
    }

    /// Reads ids through `aliases` instead of the generic table.
    pub fn with_aliases(mut self, aliases: AliasTable) -> Self {
        self.aliases = aliases;
        self
    }

    /// The wrapped consumer, e.g. to subscribe, commit or store offsets.
    pub fn inner(&self) -> &StreamConsumer {
        &self.consumer
    }

    /// Waits for the next record.
    pub async fn recv(&self) -> Result<Received<'_>, KafkaError> {
        let message = self.consumer.recv().await?;
        let context = EventContext::from_message(&message, &self.aliases);
        let span = spans::process_span(&message, &context, &self.group);
        for problem in &context.problems {
            tracing::warn!(parent: &span, topic = message.topic(), partition = message.partition(),
                offset = message.offset(), problem = %problem, "unusable header on consumed record");
        }
        Ok(Received {
            message,
            context,
            span,
        })
    }
}

/// A consumed record with its context and its process span.
#[derive(Debug)]
pub struct Received<'a> {
    message: BorrowedMessage<'a>,
    context: EventContext,
    span: Span,
}

impl<'a> Received<'a> {
    /// The record as the client gave it.
    pub fn message(&self) -> &BorrowedMessage<'a> {
        &self.message
    }

    /// What its headers say.
    pub fn context(&self) -> &EventContext {
        &self.context
    }

    /// Its `process {topic}` span.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The payload decoded as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(self.message.payload().unwrap_or_default())
    }

    /// Runs the handler `fut` inside the process span and the handling scope: every event sent
    /// through a [`TracedProducer`](crate::TracedProducer) in it is a reaction to this record.
    pub async fn handle<F: Future>(&self, fut: F) -> F::Output {
        handling(self.context.clone(), fut.instrument(self.span.clone())).await
    }

    /// An owned copy that outlives the consumer's borrow (e.g. to hand to another task).
    pub fn detach(&self) -> ReceivedOwned {
        ReceivedOwned {
            message: self.message.detach(),
            context: self.context.clone(),
            span: self.span.clone(),
        }
    }
}

/// An owned consumed record with its context and process span.
#[derive(Debug, Clone)]
pub struct ReceivedOwned {
    /// The record.
    pub message: OwnedMessage,
    /// What its headers say.
    pub context: EventContext,
    /// Its `process {topic}` span.
    pub span: Span,
}

impl ReceivedOwned {
    /// Runs the handler `fut` inside the process span and the handling scope.
    pub async fn handle<F: Future>(&self, fut: F) -> F::Output {
        handling(self.context.clone(), fut.instrument(self.span.clone())).await
    }
}
