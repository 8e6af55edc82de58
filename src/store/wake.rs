//! Wake-ups between nodes: a node that queued work tells every other node on the database
//! at once (PostgreSQL's `LISTEN`/`NOTIFY`), so their dispatchers and notice workers need
//! not wait for their next poll.
//!
//! [`Store::notify_nodes`] sends a topic on [`WAKE_CHANNEL`]; [`Store::wake_listener`] opens
//! a [`WakeListener`] that receives them. PostgreSQL delivers a notification once the
//! transaction that sent it commits, to every session listening at that moment; one sent
//! while a listener's connection was down is lost, which [`WakeListener::next`] reports
//! so its caller can look for work itself. On SQLite (one machine, one file) there are no
//! other nodes to wake: sending does nothing and there is no listener.

use super::{Engine, Store, StoreError};

/// The channel every node listens on.
pub const WAKE_CHANNEL: &str = "herald_wake";

/// What a [`WakeListener`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A node sent this topic.
    Topic(String),
    /// The connection was lost and is listening again: anything sent meanwhile is lost.
    Reconnected,
}

/// A connection of its own that listens on [`WAKE_CHANNEL`] (PostgreSQL only). It takes
/// one connection of the pool for as long as it lives.
pub struct WakeListener {
    inner: super::postgres::WakeListener,
}

impl WakeListener {
    /// The next notification, or [`Heard::Reconnected`] after the connection was lost and
    /// opened again. An error means it could not listen again (the database is down); the
    /// next call tries again.
    pub async fn next(&mut self) -> Result<Heard, StoreError> {
        self.inner.next().await
    }
}

impl Store {
    /// Tells every node listening on the database about `topic` (PostgreSQL's `NOTIFY`).
    /// Does nothing on SQLite.
    pub async fn notify_nodes(&self, topic: &str) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(_) => Ok(()),
            Engine::Postgres(db) => db.notify_nodes(WAKE_CHANNEL, topic).await,
        }
    }

    /// Starts listening on [`WAKE_CHANNEL`]; `None` on SQLite, where there is nothing to
    /// listen to.
    pub async fn wake_listener(&self) -> Result<Option<WakeListener>, StoreError> {
        match &self.engine {
            Engine::Sqlite(_) => Ok(None),
            Engine::Postgres(db) => Ok(Some(WakeListener {
                inner: db.wake_listener(WAKE_CHANNEL).await?,
            })),
        }
    }
}
