//! `nodes`: one row per running herald process (a node) with its heartbeat, and which node
//! sent each delivery (`deliveries.sent_by`).
//!
//! A node rewrites its row every few seconds while it runs ([`Store::node_heartbeat`]) and
//! removes it when it stops cleanly ([`Store::forget_node`]); a node that died leaves a row
//! whose heartbeat grows old. Readers decide what "recent" means (see [`crate::nodes`]).
//! A store given a node id ([`Store::for_node`]) records it in every row it marks `sent`.
//!
//! The queries are in `shared/nodes.rs`.

use std::sync::Arc;

use super::{delegate, Engine, Store, StoreError};

/// How long a row of a node that stopped without saying so is kept: after this, its
/// heartbeat is so old that no reader needs it (its `sent_by` marks stay).
pub const NODE_ROW_KEPT_SECONDS: i64 = 24 * 3600;

/// One node, as its heartbeat row and the ledger show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeRow {
    pub id: String,
    /// `web`, `worker` or `all` (`herald serve`), or `send` (`herald send`).
    pub role: String,
    pub started_at: i64,
    pub last_seen_at: i64,
    /// Delivery rows this node marked `sent`, over every issue.
    pub sent: u64,
}

/// How many rows of one issue a node sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SentByNode {
    /// The node's id; `None` for rows sent before nodes had ids.
    pub node: Option<String>,
    pub sent: u64,
}

delegate! {
    /// Writes the node's heartbeat: its row is created or refreshed (`last_seen_at = now`),
    /// and rows of nodes not seen for [`NODE_ROW_KEPT_SECONDS`] are removed.
    pub async fn node_heartbeat(
        &self,
        id: &str,
        role: &str,
        started_at: i64,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Removes the node's row (it stopped cleanly). Its `sent_by` marks stay.
    pub async fn forget_node(&self, id: &str) -> Result<(), StoreError>;

    /// The nodes whose last heartbeat is at or after `since`, by id, each with how many rows
    /// it sent.
    pub async fn nodes_seen_since(&self, since: i64) -> Result<Vec<NodeRow>, StoreError>;

    /// How many rows of the issue each node sent, most first.
    pub async fn sent_by_node(&self, issue_id: i64) -> Result<Vec<SentByNode>, StoreError>;
}

impl Store {
    /// This store, recording `node` as the sender of every delivery row it marks `sent`
    /// ([`Store::record_outcomes`]). Clones share the pool.
    pub fn for_node(mut self, node: &str) -> Store {
        let node: Arc<str> = Arc::from(node);
        match &mut self.engine {
            Engine::Sqlite(db) => db.node = Some(node),
            Engine::Postgres(db) => db.node = Some(node),
        }
        self
    }

    /// The node this store records as the sender, if one was given.
    pub fn node(&self) -> Option<&str> {
        match &self.engine {
            Engine::Sqlite(db) => db.node.as_deref(),
            Engine::Postgres(db) => db.node.as_deref(),
        }
    }
}
