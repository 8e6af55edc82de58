//! The batched hit writer: `/l/` and `/o/` hand each hit over a channel to one task, which
//! records whatever is waiting (up to [`GROUP_MAX`]) in one transaction, so the rate of hits
//! is never capped by the disk's commit rate. The redirect does not wait for the commit;
//! [`HitQueue::flush`] waits for everything handed over before it (the report calls it, so
//! it includes every hit answered before it was asked for).

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Hit, Store};

/// The most hits recorded in one transaction.
pub const GROUP_MAX: usize = 2048;
/// Hits waiting for the writer before a handler waits for room.
const QUEUE_DEPTH: usize = 65_536;

enum Item {
    Hit(Hit),
    /// Answered once every hit before it is recorded.
    Flush(oneshot::Sender<()>),
}

/// The handle handlers submit hits through. Cheap to clone; the writer stops once every
/// handle is gone and what was submitted is recorded.
#[derive(Clone)]
pub struct HitQueue {
    tx: mpsc::Sender<Item>,
}

impl HitQueue {
    /// Spawns the writer over `store`.
    pub fn start(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let writer = tokio::spawn(write_hits(store, rx));
        (Self { tx }, writer)
    }

    /// Hands `hit` to the writer; waits only when the queue is full.
    pub async fn submit(&self, hit: Hit) {
        if self.tx.send(Item::Hit(hit)).await.is_err() {
            tracing::warn!("the hit writer has stopped; a hit is not recorded");
        }
    }

    /// Returns once every hit submitted before this call is recorded (or given up on).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Item::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_hits(store: Store, mut rx: mpsc::Receiver<Item>) {
    let mut items: Vec<Item> = Vec::with_capacity(GROUP_MAX);
    let mut group: Vec<Hit> = Vec::with_capacity(GROUP_MAX);
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    while rx.recv_many(&mut items, GROUP_MAX).await > 0 {
        for item in items.drain(..) {
            match item {
                Item::Hit(hit) => group.push(hit),
                Item::Flush(done) => flushes.push(done),
            }
        }
        if !group.is_empty() {
            commit(&store, &group).await;
            group.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Records one group, retrying a few times on a transient database error.
async fn commit(store: &Store, group: &[Hit]) {
    let mut delay = Duration::from_millis(20);
    for attempt in 1..=4 {
        match store.record_hits(group).await {
            Ok(_) => return,
            Err(e) if attempt < 4 => {
                tracing::warn!(error = %e, attempt, "cannot record hits yet; retrying");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
            Err(e) => {
                tracing::error!(error = %e, hits = group.len(), "cannot record hits; they are lost");
            }
        }
    }
}
