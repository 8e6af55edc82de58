//! Nodes: every `herald serve` and `herald send` process is a node, with an id, a role and
//! a heartbeat, so that several of them can share one database (PostgreSQL) and an operator
//! sees which are alive and how much each sent.
//!
//! - [`NodeId`]: `node.id` from the settings, or the host name plus a short random suffix
//!   (a new one at every start). The store records it in every delivery row the node
//!   sends (`deliveries.sent_by`).
//! - [`Role`]: what a `herald serve` node runs (`--role web|worker|all`).
//! - [`heartbeat`]: the task that rewrites the node's row every [`HEARTBEAT_EVERY`] and
//!   removes it at a clean stop. A node is *live* while its last heartbeat is at most
//!   [`LIVE_WITHIN`] old ([`live_since`]).
//! - [`Wake`] and [`listen`]: wake-ups between nodes. Queuing work (an enqueue, a sign-up's
//!   notice) wakes this process's dispatcher or notice worker at once and, on PostgreSQL,
//!   every other node's too (`LISTEN`/`NOTIFY` on one channel, see
//!   [`crate::store::wake`]); the listener opens its connection again when it is lost.
//!   Polling stays as the fallback.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{watch, Notify};

use crate::dispatch::unix_now;
use crate::store::wake::Heard;
use crate::store::{BackendKind, Store};

/// How often a running node rewrites its heartbeat row.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// A node whose last heartbeat is at most this old counts as live: six missed heartbeats.
pub const LIVE_WITHIN: Duration = Duration::from_secs(30);

/// The earliest heartbeat time of a live node, seen at `now` (Unix seconds).
pub fn live_since(now: i64) -> i64 {
    now - LIVE_WITHIN.as_secs() as i64
}

/// Why a node id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("a node id must not be empty")]
    Empty,
    #[error("a node id has at most {max} characters", max = NodeId::MAX_LEN)]
    TooLong,
    #[error("a node id holds only letters, digits, '.', '-' and '_' (found {0:?})")]
    BadChar(char),
    #[error("unknown role {0:?}: web, worker or all")]
    UnknownRole(String),
}

/// A node's id: 1 to [`NodeId::MAX_LEN`] ASCII letters, digits, `.`, `-` or `_`, so it
/// reads the same in a log line, a table and a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeId(String);

impl NodeId {
    /// The longest id.
    pub const MAX_LEN: usize = 64;

    /// Parses an id as written in `node.id`.
    pub fn parse(raw: &str) -> Result<Self, NodeError> {
        if raw.is_empty() {
            return Err(NodeError::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(NodeError::TooLong);
        }
        if let Some(c) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return Err(NodeError::BadChar(c));
        }
        Ok(Self(raw.to_string()))
    }

    /// The default id: this machine's host name (cut to fit, and reduced to the characters
    /// an id allows) and six random hexadecimal digits, as in `mail1-3fa9c2`.
    pub fn generate() -> Self {
        Self::from_host(&host_name())
    }

    fn from_host(host: &str) -> Self {
        let mut base: String = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '-'
                }
            })
            .take(Self::MAX_LEN - 7)
            .collect();
        if base.is_empty() {
            base.push_str("herald");
        }
        let suffix: u32 = rand::thread_rng().gen_range(0..0x100_0000);
        Self(format!("{base}-{suffix:06x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The machine's host name, or `herald` when it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "herald".into())
}

/// What a `herald serve` node runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// The web server for readers and editors (sign-up, links, archive, API, dashboard,
    /// webhooks, `/health`); nothing is sent from it except what readers ask for through
    /// the notice queue, which a worker sends.
    Web,
    /// The dispatcher, the scheduler, the notice worker and the readers of returned mail;
    /// over HTTP only `/health`.
    Worker,
    /// Both: one node that does everything (the default).
    #[default]
    All,
}

impl Role {
    /// The name as written in `--role` and stored in `nodes.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Web => "web",
            Role::Worker => "worker",
            Role::All => "all",
        }
    }

    /// Whether it answers readers and editors over HTTP.
    pub fn serves_web(self) -> bool {
        matches!(self, Role::Web | Role::All)
    }

    /// Whether it sends (dispatcher, notices), schedules and reads returned mail.
    pub fn works(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }
}

impl FromStr for Role {
    type Err = NodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "web" => Ok(Role::Web),
            "worker" => Ok(Role::Worker),
            "all" => Ok(Role::All),
            _ => Err(NodeError::UnknownRole(s.to_string())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Keeps the node's heartbeat row fresh until `shutdown` turns true, then removes it. The
/// first beat is written at once; a failed beat is logged (once, until one succeeds again)
/// and tried again at the next tick. `role` is stored as given (`web`, `worker`, `all` or
/// `send`).
pub async fn heartbeat(
    store: Store,
    node: NodeId,
    role: &'static str,
    mut shutdown: watch::Receiver<bool>,
) {
    let started_at = unix_now();
    let mut failing = false;
    loop {
        match store
            .node_heartbeat(node.as_str(), role, started_at, unix_now())
            .await
        {
            Ok(()) if failing => {
                tracing::info!(node = %node, "heartbeat written again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!(node = %node, error = %e, "cannot write this node's heartbeat");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    if let Err(e) = store.forget_node(node.as_str()).await {
        tracing::warn!(node = %node, error = %e, "cannot remove this node's heartbeat row");
    }
}

/// What a wake-up is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Deliveries were queued: dispatchers look for due issues.
    Dispatch,
    /// A confirmation or welcome mail was queued: notice workers look for due notices.
    Notice,
}

impl Topic {
    /// The name sent between nodes.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Dispatch => "dispatch",
            Topic::Notice => "notice",
        }
    }

    fn of(name: &str) -> Option<Topic> {
        match name {
            "dispatch" => Some(Topic::Dispatch),
            "notice" => Some(Topic::Notice),
            _ => None,
        }
    }
}

/// A wake-up for one kind of work, for this process and every other node on the database.
/// Cheap to clone.
///
/// [`Wake::notify_one`] wakes this process's waiter at once (an in-process
/// [`Notify`]) and, on PostgreSQL, sends the topic to every node ([`Store::notify_nodes`]),
/// whose [`listen`] task wakes its own waiter. On SQLite only the first happens. Waiters
/// still poll: a wake-up that is lost (a listener reconnecting) delays work, never loses it.
#[derive(Debug, Clone)]
pub struct Wake {
    topic: Topic,
    local: Arc<Notify>,
    /// The store to send the topic through, when other nodes may be listening.
    nodes: Option<Store>,
}

impl Wake {
    /// A wake-up for `topic`; `store` carries it to the other nodes (PostgreSQL).
    pub fn new(topic: Topic, store: &Store) -> Wake {
        Wake {
            topic,
            local: Arc::new(Notify::new()),
            nodes: (store.backend() == BackendKind::Postgres).then(|| store.clone()),
        }
    }

    /// A wake-up for this process only.
    pub fn local(topic: Topic) -> Wake {
        Wake {
            topic,
            local: Arc::new(Notify::new()),
            nodes: None,
        }
    }

    /// Wakes this process's waiter, and tells the other nodes (in the background: the
    /// caller does not wait for the database).
    pub fn notify_one(&self) {
        self.local.notify_one();
        let Some(store) = self.nodes.clone() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let topic = self.topic;
        runtime.spawn(async move {
            if let Err(e) = store.notify_nodes(topic.as_str()).await {
                tracing::warn!(topic = topic.as_str(), error = %e, "cannot wake the other nodes");
            }
        });
    }

    /// Wakes this process's waiter only (a topic heard from another node).
    fn notify_here(&self) {
        self.local.notify_one();
    }

    /// Resolves at the next wake-up (or at once if one came since the last wait).
    pub async fn notified(&self) {
        self.local.notified().await
    }
}

/// How long [`listen`] waits before listening again after the database refused, doubling
/// up to [`LISTEN_RETRY_MAX`].
const LISTEN_RETRY_MIN: Duration = Duration::from_millis(500);
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(30);

/// Listens for the other nodes' wake-ups until `shutdown` turns true, waking `wakes`' local
/// waiters by topic. When the connection was lost (and after listening again), every
/// waiter is woken, since a wake-up sent meanwhile is lost. On SQLite it only waits for
/// the stop.
pub async fn listen(store: Store, wakes: Vec<Wake>, mut shutdown: watch::Receiver<bool>) {
    let wake_all = || wakes.iter().for_each(Wake::notify_here);
    let mut retry = LISTEN_RETRY_MIN;
    let mut listener = loop {
        let opened = tokio::select! {
            opened = store.wake_listener() => opened,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match opened {
            Ok(Some(listener)) => break listener,
            // SQLite: no other node to hear from; wait for the stop like every task.
            Ok(None) => {
                let _ = shutdown.wait_for(|stop| *stop).await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for the other nodes' wake-ups; polling meanwhile");
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
                retry = (retry * 2).min(LISTEN_RETRY_MAX);
            }
        }
    };
    tracing::info!("listening for the other nodes' wake-ups");
    retry = LISTEN_RETRY_MIN;
    let mut failing = false;
    loop {
        let heard = tokio::select! {
            heard = listener.next() => heard,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        match heard {
            Ok(Heard::Topic(name)) => {
                retry = LISTEN_RETRY_MIN;
                match Topic::of(&name).and_then(|t| wakes.iter().find(|w| w.topic == t)) {
                    Some(wake) => wake.notify_here(),
                    None => tracing::debug!(topic = %name, "a wake-up for nothing this node runs"),
                }
            }
            Ok(Heard::Reconnected) => {
                if failing {
                    tracing::info!("listening for the other nodes' wake-ups again");
                    failing = false;
                }
                retry = LISTEN_RETRY_MIN;
                wake_all();
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "lost the connection that listens for the other nodes' wake-ups; polling until it is back");
                    failing = true;
                }
                wake_all();
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
                retry = (retry * 2).min(LISTEN_RETRY_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_id_takes_plain_characters_only() {
        assert_eq!(
            NodeId::parse("mail-1.eu_west").unwrap().as_str(),
            "mail-1.eu_west"
        );
        assert_eq!(NodeId::parse(""), Err(NodeError::Empty));
        assert_eq!(NodeId::parse("a b"), Err(NodeError::BadChar(' ')));
        assert_eq!(NodeId::parse("x\ny"), Err(NodeError::BadChar('\n')));
        assert_eq!(NodeId::parse(&"a".repeat(65)), Err(NodeError::TooLong));
    }

    #[test]
    fn the_default_id_is_the_host_name_with_a_random_suffix_and_always_parses() {
        let id = NodeId::from_host("mail1");
        assert!(id.as_str().starts_with("mail1-"), "{id}");
        assert_eq!(id.as_str().len(), "mail1-".len() + 6);
        assert_ne!(
            NodeId::from_host("mail1"),
            NodeId::from_host("mail1").clone()
        );
        let odd = NodeId::from_host(&format!("höst name{}", "x".repeat(80)));
        assert!(NodeId::parse(odd.as_str()).is_ok(), "{odd}");
        assert!(NodeId::parse(NodeId::from_host("").as_str()).is_ok());
    }

    #[test]
    fn roles_parse_from_their_names_and_say_what_they_run() {
        assert_eq!("worker".parse::<Role>().unwrap(), Role::Worker);
        assert_eq!("WEB".parse::<Role>().unwrap(), Role::Web);
        assert!("send".parse::<Role>().is_err());
        assert!(Role::All.works() && Role::All.serves_web());
        assert!(Role::Worker.works() && !Role::Worker.serves_web());
        assert!(Role::Web.serves_web() && !Role::Web.works());
    }
}
