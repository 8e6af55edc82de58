//! The check just before a claimed row goes out: is its lease still this run's, and is its
//! subscriber still active? One checker task per run answers the send tasks
//! ([`Checker::check`]) from reads of many rows at once ([`Store::check_claims`]).
//!
//! A read covers the rows whose answers are awaited and, beyond them, the next rows of the
//! run's claims in the order they go out (the claim loop announces each batch with
//! [`Checker::claimed`]): as many as were asked about in the last [`FRESH`], which is about
//! how many will be asked about before the reading ages. A reading answers a later question
//! about its row only while it is fresh: younger than [`FRESH`] and taken in the same second
//! of the clock. Leases end on a whole second, and a reading says the lease lasts past the second it was taken in, so a
//! row is never sent on a lease that has run out; an unsubscribe or a bounce is honoured
//! unless it comes in less than [`FRESH`] before the copy goes out. With many messages in
//! flight, one read then serves dozens of sends instead of one or two, which on PostgreSQL
//! saves a round trip to the server, and a wake-up of its backend, per message or two.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::unix_now;
use crate::store::{ClaimCheck, Store};

/// The oldest reading a send relies on.
pub const FRESH: Duration = Duration::from_millis(100);
/// The most rows one read covers.
const READ_MAX: usize = 1000;

/// A claimed row: subscriber and lease token.
type Row = (i64, i64);

enum Message {
    /// Rows just claimed, in the order they go out.
    Claimed(Vec<Row>),
    /// A row about to go out, and where its answer goes.
    Check(Row, oneshot::Sender<Result<ClaimCheck, String>>),
}

/// What a read found about a row, and when.
struct Reading {
    check: ClaimCheck,
    at: Instant,
    second: i64,
}

/// A handle on one run's checker. The task ends when every handle is gone.
#[derive(Clone)]
pub struct Checker {
    tx: mpsc::Sender<Message>,
}

impl Checker {
    /// Starts the checker of `issue_id`'s claimed rows, reading at most `ahead` rows beyond
    /// those asked about.
    pub fn start(store: Store, issue_id: i64, ahead: usize) -> Self {
        let (tx, rx) = mpsc::channel(ahead.max(16));
        tokio::spawn(run(store, issue_id, ahead, rx));
        Self { tx }
    }

    /// Announces rows just claimed under `lease_token`, in the order they go out.
    pub async fn claimed(&self, lease_token: i64, subscribers: impl Iterator<Item = i64>) {
        let rows = subscribers.map(|s| (s, lease_token)).collect();
        let _ = self.tx.send(Message::Claimed(rows)).await;
    }

    /// Whether the row may still be sent, from a fresh reading.
    pub async fn check(&self, subscriber_id: i64, lease_token: i64) -> Result<ClaimCheck, String> {
        let stopped = || "the claim checker has stopped".to_string();
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Message::Check((subscriber_id, lease_token), reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The rows announced and not yet asked about, in the order they go out.
#[derive(Default)]
struct Upcoming {
    order: VecDeque<(u64, Row)>,
    /// Each waiting row's place in `order`.
    place: HashMap<Row, u64>,
    next: u64,
}

impl Upcoming {
    fn announce(&mut self, rows: Vec<Row>) {
        for row in rows {
            self.order.push_back((self.next, row));
            self.place.insert(row, self.next);
            self.next += 1;
        }
    }

    /// `row` is going out now. Rows announced more than `behind` before it and still not
    /// asked about are passed over: pacing holds them back, or they were handed back. Each
    /// is read when it is asked about, if ever.
    fn asked(&mut self, row: &Row, behind: u64) {
        let Some(place) = self.place.remove(row) else {
            return;
        };
        let floor = place.saturating_sub(behind);
        while let Some(&(at, front)) = self.order.front() {
            let waiting = self.place.get(&front) == Some(&at);
            if waiting && at >= floor {
                break;
            }
            if waiting {
                self.place.remove(&front);
            }
            self.order.pop_front();
        }
    }

    /// The first `count` waiting rows for which `wanted` holds.
    fn first(&self, count: usize, wanted: impl Fn(&Row) -> bool) -> Vec<Row> {
        self.order
            .iter()
            .filter(|(at, row)| self.place.get(row) == Some(at) && wanted(row))
            .map(|(_, row)| *row)
            .take(count)
            .collect()
    }
}

async fn run(store: Store, issue_id: i64, ahead: usize, mut rx: mpsc::Receiver<Message>) {
    let mut upcoming = Upcoming::default();
    let mut readings: HashMap<Row, Reading> = HashMap::new();
    // When each of the questions of the last FRESH came.
    let mut recent: VecDeque<Instant> = VecDeque::new();
    let mut messages = Vec::new();
    while rx.recv_many(&mut messages, READ_MAX).await > 0 {
        let (now, second) = (Instant::now(), unix_now());
        let fresh = |r: &Reading| now.duration_since(r.at) < FRESH && r.second == second;
        while recent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= FRESH)
        {
            recent.pop_front();
        }
        let mut asked = Vec::new();
        for message in messages.drain(..) {
            let (row, reply) = match message {
                Message::Claimed(rows) => {
                    upcoming.announce(rows);
                    continue;
                }
                Message::Check(row, reply) => (row, reply),
            };
            recent.push_back(now);
            upcoming.asked(&row, ahead as u64);
            match readings.remove(&row) {
                Some(reading) if fresh(&reading) => {
                    let _ = reply.send(Ok(reading.check));
                }
                _ => asked.push((row, reply)),
            }
        }
        if asked.is_empty() {
            continue;
        }
        readings.retain(|_, reading| fresh(reading));
        // The rows asked about, then the next ones to go out that have no fresh reading
        // (a row read ahead whose reading aged before its turn is read again).
        let mut rows: Vec<Row> = asked.iter().map(|(row, _)| *row).collect();
        // At most READ_MAX were asked about (`recv_many`'s limit), so all of them fit.
        let limit = (asked.len() + recent.len().min(ahead)).min(READ_MAX);
        rows.extend(upcoming.first(limit - rows.len(), |row| !readings.contains_key(row)));
        let (at, second) = (Instant::now(), unix_now());
        match store.check_claims(issue_id, &rows, second).await {
            Ok(checks) => {
                let mut found: HashMap<Row, ClaimCheck> = rows.into_iter().zip(checks).collect();
                for (row, reply) in asked {
                    let check = found.remove(&row).unwrap_or(ClaimCheck::Lost);
                    let _ = reply.send(Ok(check));
                }
                for (row, check) in found {
                    readings.insert(row, Reading { check, at, second });
                }
            }
            Err(e) => {
                let e = e.to_string();
                for (_, reply) in asked {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Upcoming;

    #[test]
    fn rows_asked_about_leave_and_rows_far_behind_the_last_question_are_passed_over() {
        let mut upcoming = Upcoming::default();
        upcoming.announce((0..200).map(|s| (s, 7)).collect());
        upcoming.asked(&(0, 7), 64);
        upcoming.asked(&(2, 7), 64);
        assert_eq!(upcoming.first(3, |_| true), vec![(1, 7), (3, 7), (4, 7)]);
        assert_eq!(upcoming.first(2, |row| row.0 != 1), vec![(3, 7), (4, 7)]);
        // Row 1 waits for a turn while later rows go out; once 64 rows are past it, it is
        // no longer read ahead, and nothing keeps it.
        upcoming.asked(&(100, 7), 64);
        assert_eq!(upcoming.first(2, |_| true), vec![(36, 7), (37, 7)]);
        assert!(!upcoming.place.contains_key(&(1, 7)));
        assert_eq!(upcoming.order.front(), Some(&(36, (36, 7))));
        // A question about a row never announced (or passed over) changes nothing.
        upcoming.asked(&(1, 7), 64);
        upcoming.asked(&(500, 7), 64);
        assert_eq!(upcoming.first(1, |_| true), vec![(36, 7)]);
        assert_eq!(upcoming.place.len(), 200 - 36 - 1);
    }
}
