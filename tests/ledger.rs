//! The delivery ledger against a real, migrated database, on SQLite and on PostgreSQL:
//! enqueue, claims under leases, outcomes, crash recovery, and the issue's completion.

mod support;

use std::collections::HashSet;
use std::time::Instant;

use herald::domain::{EmailAddress, ErasureKey, SubscriberStatus};
use herald::store::{
    self, Claim, ClaimCheck, NewIssue, NewSubscriber, Outcome, OutcomeKind, StatusChange, Store,
};
use secrecy::SecretString;
use support::postgres::Backend;

const T0: i64 = 1_800_000_000;
const TOKEN: i64 = 7;
const LEASE: i64 = 300;

struct Db {
    url: String,
    _dir: tempfile::TempDir,
    store: Store,
}

impl Db {
    async fn open(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("herald.db").display()),
            Backend::Postgres => support::postgres::fresh_database().await?,
        };
        let store = store::connect(&url).await.unwrap();
        Some(Self {
            url,
            _dir: dir,
            store,
        })
    }

    /// A second handle (its own pool) on the same database, as a second process would have.
    async fn other(&self) -> Store {
        store::connect(&self.url).await.unwrap()
    }

    /// Adds subscribers `user{from}..user{to}` with `status`, in one batch.
    async fn add(&self, range: std::ops::Range<usize>, status: SubscriberStatus) {
        let rows: Vec<NewSubscriber> = range
            .map(|i| NewSubscriber {
                email: address(i),
                name: None,
                status,
                attributes: Default::default(),
            })
            .collect();
        for chunk in rows.chunks(1_000) {
            self.store
                .import_subscriber_batch(chunk, &erasure(), "test")
                .await
                .unwrap();
        }
    }

    async fn id_of(&self, i: usize) -> i64 {
        self.store
            .find_subscriber_by_email(&address(i))
            .await
            .unwrap()
            .unwrap()
            .id
    }

    async fn set_status(&self, i: usize, to: SubscriberStatus) {
        let change = self
            .store
            .change_subscriber_status(&address(i), to, "test")
            .await
            .unwrap();
        assert!(matches!(change, StatusChange::Changed { .. }));
    }

    async fn enqueue(&self, slug: &str, hash: &str, now: i64) -> herald::store::Enqueued {
        self.store
            .enqueue_issue(&issue(slug, hash), "cli", now)
            .await
            .unwrap()
    }

    async fn claim(&self, issue_id: i64, limit: u32, now: i64) -> Vec<Claim> {
        self.store
            .claim_deliveries(issue_id, TOKEN, now + LEASE, limit, now)
            .await
            .unwrap()
    }

    async fn record(&self, issue_id: i64, outcomes: &[Outcome]) -> u64 {
        self.store
            .record_outcomes_at(issue_id, outcomes, T0)
            .await
            .unwrap()
            .into_iter()
            .filter(|applied| *applied)
            .count() as u64
    }

    async fn row(&self, issue_id: i64, subscriber_id: i64) -> herald::store::DeliveryRow {
        self.store
            .find_delivery(issue_id, subscriber_id)
            .await
            .unwrap()
            .unwrap()
    }

    async fn status_of(&self, i: usize) -> SubscriberStatus {
        self.store
            .find_subscriber_by_email(&address(i))
            .await
            .unwrap()
            .unwrap()
            .status
    }
}

fn address(i: usize) -> EmailAddress {
    EmailAddress::parse(&format!("user{i}@example.com")).unwrap()
}

fn erasure() -> ErasureKey {
    ErasureKey::new(&SecretString::from(
        "test-secret-key-0123456789abcdef".to_string(),
    ))
}

fn issue<'a>(slug: &'a str, hash: &'a str) -> NewIssue<'a> {
    NewIssue {
        slug,
        title: "Title",
        subject: "Subject",
        source_hash: hash,
    }
}

fn ids(claims: &[Claim]) -> Vec<i64> {
    claims.iter().map(|c| c.subscriber_id).collect()
}

fn sent(subscriber_id: i64) -> Outcome {
    Outcome {
        subscriber_id,
        lease_token: TOKEN,
        kind: OutcomeKind::Sent {
            message_id: format!("<{subscriber_id}@herald.test>"),
            reply: "250 2.0.0 Ok: queued".into(),
            at: T0 + 5,
        },
    }
}

on_both_backends! {
    async fn enqueue_freezes_the_recipient_set(db: Db) {
        db.add(0..5, SubscriberStatus::Active).await;
        db.add(5..7, SubscriberStatus::Pending).await;
        db.add(7..8, SubscriberStatus::Unsubscribed).await;

        let first = db.enqueue("first-issue", "h1", T0).await;
        assert_eq!((first.added, first.total), (5, 5));
        assert!(!first.source_changed);

        let issue = db.store.find_issue("first-issue").await.unwrap().unwrap();
        assert_eq!(issue.id, first.issue_id);
        assert_eq!(issue.status, "sending");
        assert_eq!(issue.started_at, Some(T0));
        assert_eq!(issue.created_at, T0);

        let row = db.row(first.issue_id, db.id_of(0).await).await;
        assert_eq!(row.status, "queued");
        assert_eq!((row.queued_at, row.next_attempt_at), (T0, T0));
        assert_eq!(row.attempts, 0);
        assert!(db
            .store
            .find_delivery(first.issue_id, db.id_of(5).await)
            .await
            .unwrap()
            .is_none());

        let again = db.enqueue("first-issue", "h1", T0 + 10).await;
        assert_eq!(again.issue_id, first.issue_id);
        assert_eq!((again.added, again.total), (0, 5));
        assert!(!again.source_changed);

        db.set_status(5, SubscriberStatus::Active).await;
        db.add(8..9, SubscriberStatus::Active).await;
        let third = db.enqueue("first-issue", "h2", T0 + 20).await;
        assert_eq!(third.issue_id, first.issue_id);
        assert_eq!((third.added, third.total), (2, 7));
        assert!(third.source_changed);

        let issue = db.store.find_issue("first-issue").await.unwrap().unwrap();
        assert_eq!(issue.source_hash, "h2");
        assert_eq!(issue.started_at, Some(T0), "started_at is set once");
        let late = db.row(first.issue_id, db.id_of(8).await).await;
        assert_eq!((late.queued_at, late.next_attempt_at), (T0 + 20, T0 + 20));

        let second = db.enqueue("second-issue", "x", T0 + 30).await;
        assert_ne!(second.issue_id, first.issue_id);
        assert_eq!(second.added, 7);
        let slugs: Vec<String> = db
            .store
            .list_issues()
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.slug)
            .collect();
        assert_eq!(slugs, ["second-issue", "first-issue"], "newest first");
        assert!(db.store.find_issue("missing").await.unwrap().is_none());
    }
}

on_both_backends! {
    async fn claim_takes_the_oldest_due_rows_up_to_the_limit(db: Db) {
        db.add(0..4, SubscriberStatus::Active).await;
        let early = db.enqueue("claims", "h", T0).await.issue_id;
        db.add(4..10, SubscriberStatus::Active).await;
        db.enqueue("claims", "h", T0 + 10).await;
        let early_ids: Vec<i64> = {
            let mut v = Vec::new();
            for i in 0..4 {
                v.push(db.id_of(i).await);
            }
            v
        };

        assert!(
            db.claim(early, 3, T0 - 1).await.is_empty(),
            "nothing due yet"
        );

        let batch = db.claim(early, 3, T0 + 10).await;
        assert_eq!(ids(&batch), early_ids[..3]);
        assert_eq!(batch[0].email, "user0@example.com");
        assert_eq!(batch[0].queued_at, T0);
        assert_eq!(batch[0].attempts, 0);
        let row = db.row(early, early_ids[0]).await;
        assert_eq!(row.status, "sending");
        assert_eq!(row.lease_token, Some(TOKEN));
        assert_eq!(row.lease_until, Some(T0 + 10 + LEASE));

        // Only rows due by `now` are claimed: the later ones are queued at T0 + 10.
        let batch = db.claim(early, 100, T0 + 5).await;
        assert_eq!(ids(&batch), [early_ids[3]]);

        // Retry the first one far in the future: not claimed until due.
        let n = db
            .record(
                early,
                &[Outcome {
                    subscriber_id: early_ids[0],
                    lease_token: TOKEN,
                    kind: OutcomeKind::Retry {
                        reply: "451 try later".into(),
                        next_attempt_at: T0 + 1_000,
                    },
                }],
            )
            .await;
        assert_eq!(n, 1);
        let batch = db.claim(early, 100, T0 + 10).await;
        assert_eq!(batch.len(), 6);
        assert!(!ids(&batch).contains(&early_ids[0]));
        let batch = db.claim(early, 100, T0 + 1_000).await;
        assert_eq!(ids(&batch), [early_ids[0]]);
        assert_eq!(batch[0].attempts, 1);
        assert!(db.claim(early, 100, T0 + 5_000).await.is_empty());
    }
}

on_both_backends! {
    async fn claim_mixes_queued_and_retry_rows_by_due_time(db: Db) {
        db.add(0..2, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("mixed", "h", T0).await.issue_id;
        let (a, b) = (db.id_of(0).await, db.id_of(1).await);
        assert_eq!(ids(&db.claim(issue_id, 1, T0).await), [a]);
        db.record(
            issue_id,
            &[Outcome {
                subscriber_id: a,
                lease_token: TOKEN,
                kind: OutcomeKind::Retry {
                    reply: "421".into(),
                    next_attempt_at: T0 - 100,
                },
            }],
        )
        .await;
        // a (retry, due T0 - 100) is older than b (queued, due T0).
        assert_eq!(ids(&db.claim(issue_id, 2, T0).await), [a, b]);
    }
}

on_both_backends! {
    async fn unsubscribed_subscriber_is_skipped_mid_send(db: Db) {
        db.add(0..6, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("skips", "h", T0).await.issue_id;
        db.set_status(0, SubscriberStatus::Unsubscribed).await;
        db.set_status(1, SubscriberStatus::Bounced).await;
        db.set_status(3, SubscriberStatus::Unsubscribed).await;

        // The skipped rows do not count against the limit: the claim looks further.
        let batch = db.claim(issue_id, 2, T0).await;
        assert_eq!(ids(&batch), [db.id_of(2).await, db.id_of(4).await]);
        for i in [0, 1, 3] {
            assert_eq!(db.row(issue_id, db.id_of(i).await).await.status, "skipped");
        }
        let counts = db.store.delivery_counts(issue_id).await.unwrap();
        assert_eq!((counts.skipped, counts.sending, counts.queued), (3, 2, 1));

        // A batch where everyone left reports empty only once nothing is due.
        db.set_status(5, SubscriberStatus::Unsubscribed).await;
        assert!(db.claim(issue_id, 10, T0).await.is_empty());
        assert_eq!(db.store.delivery_counts(issue_id).await.unwrap().skipped, 4);
    }
}

on_both_backends! {
    async fn two_concurrent_claimers_never_share_a_row(db: Db) {
        const ROWS: usize = 5_000;
        db.add(0..ROWS, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("race", "h", T0).await.issue_id;
        let a = db.store.clone();
        let b = db.other().await;

        let mut seen_a = Vec::new();
        let mut seen_b = Vec::new();
        loop {
            let (ca, cb) = tokio::join!(
                a.claim_deliveries(issue_id, 1, T0 + LEASE, 97, T0),
                b.claim_deliveries(issue_id, 2, T0 + LEASE, 89, T0),
            );
            let (ca, cb) = (ca.unwrap(), cb.unwrap());
            if ca.is_empty() && cb.is_empty() {
                break;
            }
            seen_a.extend(ids(&ca));
            seen_b.extend(ids(&cb));
        }
        let set_a: HashSet<i64> = seen_a.iter().copied().collect();
        let set_b: HashSet<i64> = seen_b.iter().copied().collect();
        assert_eq!(set_a.len(), seen_a.len(), "claimer A got a row twice");
        assert_eq!(set_b.len(), seen_b.len(), "claimer B got a row twice");
        assert!(set_a.is_disjoint(&set_b), "both claimers got the same row");
        assert_eq!(set_a.len() + set_b.len(), ROWS);
        assert!(!set_a.is_empty() && !set_b.is_empty());
        let counts = db.store.delivery_counts(issue_id).await.unwrap();
        assert_eq!(counts.sending, ROWS as u64);
        // Each row is leased to the claimer that got it.
        let row = db.row(issue_id, seen_b[0]).await;
        assert_eq!(row.lease_token, Some(2));
    }
}

on_both_backends! {
    async fn outcomes_set_each_row_state(db: Db) {
        db.add(0..6, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("outcomes", "h", T0).await.issue_id;
        let claims = db.claim(issue_id, 6, T0).await;
        let id: Vec<i64> = ids(&claims);

        let outcomes = vec![
            sent(id[0]),
            Outcome {
                subscriber_id: id[1],
                lease_token: TOKEN,
                kind: OutcomeKind::Retry {
                    reply: "451 4.7.1 greylisted".into(),
                    next_attempt_at: T0 + 60,
                },
            },
            Outcome {
                subscriber_id: id[2],
                lease_token: TOKEN,
                kind: OutcomeKind::Failed {
                    reply: "550 5.1.1 no such user".into(),
                    permanent: true,
                    bounce: true,
                },
            },
            Outcome {
                subscriber_id: id[3],
                lease_token: TOKEN,
                kind: OutcomeKind::Failed {
                    reply: "452 mailbox full, out of attempts".into(),
                    permanent: false,
                    bounce: false,
                },
            },
            Outcome {
                subscriber_id: id[4],
                lease_token: TOKEN,
                kind: OutcomeKind::Skipped,
            },
            Outcome {
                subscriber_id: id[5],
                lease_token: TOKEN,
                kind: OutcomeKind::Release,
            },
        ];
        assert_eq!(db.record(issue_id, &outcomes).await, 6);

        let r = db.row(issue_id, id[0]).await;
        assert_eq!(r.status, "sent");
        assert_eq!(
            r.message_id.as_deref(),
            Some(&*format!("<{}@herald.test>", id[0]))
        );
        assert_eq!(r.sent_at, Some(T0 + 5));
        assert_eq!(r.last_reply.as_deref(), Some("250 2.0.0 Ok: queued"));
        assert_eq!(r.attempts, 0);
        assert_eq!((r.lease_until, r.lease_token), (None, None));

        let r = db.row(issue_id, id[1]).await;
        assert_eq!(r.status, "retry");
        assert_eq!(r.attempts, 1);
        assert_eq!(r.next_attempt_at, T0 + 60);
        assert_eq!(r.last_reply.as_deref(), Some("451 4.7.1 greylisted"));
        assert_eq!((r.lease_until, r.lease_token), (None, None));

        let r = db.row(issue_id, id[2]).await;
        assert_eq!(r.status, "failed");
        assert_eq!(r.attempts, 1);
        assert!(r.permanent);
        assert_eq!(r.last_reply.as_deref(), Some("550 5.1.1 no such user"));
        assert_eq!(db.status_of(2).await, SubscriberStatus::Bounced);

        let r = db.row(issue_id, id[3]).await;
        assert_eq!(
            (r.status.as_str(), r.attempts, r.permanent),
            ("failed", 1, false)
        );
        assert_eq!(db.status_of(3).await, SubscriberStatus::Active);

        let r = db.row(issue_id, id[4]).await;
        assert_eq!((r.status.as_str(), r.attempts), ("skipped", 0));

        let r = db.row(issue_id, id[5]).await;
        assert_eq!((r.status.as_str(), r.attempts), ("queued", 0));
        assert_eq!((r.lease_until, r.lease_token), (None, None));
        assert!(r.next_attempt_at <= T0, "a released row is due at once");

        // The bounce is on the subscriber's record, naming the issue and the reply.
        let record = {
            use futures::StreamExt;
            let mut records = Box::pin(db.store.export_subscriber_records());
            let mut found = None;
            while let Some(r) = records.next().await {
                let r = r.unwrap();
                if r.subscriber.id == id[2] {
                    found = Some(r);
                }
            }
            found.unwrap()
        };
        let events: serde_json::Value = serde_json::from_str(&record.events).unwrap();
        let bounce = events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "bounce")
            .expect("a bounce event");
        assert_eq!(bounce["source"], "dispatcher");
        assert_eq!(bounce["detail"]["issue"], "outcomes");
        assert_eq!(bounce["detail"]["reply"], "550 5.1.1 no such user");

        // The released row is claimable again; then a release after an attempt goes to retry.
        let again = db.claim(issue_id, 10, T0 + 60).await;
        assert_eq!(ids(&again), [id[5], id[1]]);
        db.record(
            issue_id,
            &[
                Outcome {
                    subscriber_id: id[1],
                    lease_token: TOKEN,
                    kind: OutcomeKind::Release,
                },
                sent(id[5]),
            ],
        )
        .await;
        let r = db.row(issue_id, id[1]).await;
        assert_eq!((r.status.as_str(), r.attempts), ("retry", 1));
    }
}

on_both_backends! {
    async fn bounce_does_not_resurrect_an_unsubscribed_subscriber(db: Db) {
        db.add(0..1, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("late-bounce", "h", T0).await.issue_id;
        let id = ids(&db.claim(issue_id, 1, T0).await)[0];
        db.set_status(0, SubscriberStatus::Unsubscribed).await;
        let failed = Outcome {
            subscriber_id: id,
            lease_token: TOKEN,
            kind: OutcomeKind::Failed {
                reply: "550 5.1.1".into(),
                permanent: true,
                bounce: true,
            },
        };
        assert_eq!(db.record(issue_id, &[failed]).await, 1);
        assert_eq!(db.status_of(0).await, SubscriberStatus::Unsubscribed);
    }
}

on_both_backends! {
    async fn a_stale_lease_changes_nothing(db: Db) {
        db.add(0..2, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("stale", "h", T0).await.issue_id;
        let id = ids(&db.claim(issue_id, 2, T0).await);

        // The first dispatcher's lease expires; the row is reclaimed and claimed by another.
        assert_eq!(
            db.store
                .reclaim_expired_leases(T0 + LEASE + 1)
                .await
                .unwrap(),
            2
        );
        let newer = db
            .store
            .claim_deliveries(issue_id, 99, T0 + 2 * LEASE, 1, T0 + LEASE + 1)
            .await
            .unwrap();
        assert_eq!(ids(&newer), [id[0]]);

        // The late write under the old token applies to neither the re-claimed row nor the
        // row that went back to retry.
        let n = db.record(issue_id, &[sent(id[0]), sent(id[1])]).await;
        assert_eq!(n, 0);
        let r = db.row(issue_id, id[0]).await;
        assert_eq!((r.status.as_str(), r.lease_token), ("sending", Some(99)));
        assert_eq!(r.message_id, None);
        assert_eq!(db.row(issue_id, id[1]).await.status, "retry");
        assert_eq!(
            db.store
                .renew_leases(issue_id, TOKEN..=TOKEN, T0 + 10_000)
                .await
                .unwrap(),
            0
        );
    }
}

on_both_backends! {
    async fn sent_rows_are_never_reclaimed_or_claimed_again(db: Db) {
        db.add(0..3, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("sent-once", "h", T0).await.issue_id;
        let id = ids(&db.claim(issue_id, 3, T0).await);
        assert_eq!(db.record(issue_id, &[sent(id[0])]).await, 1);
        // A second Sent for the same row, or any later outcome, changes nothing.
        assert_eq!(db.record(issue_id, &[sent(id[0])]).await, 0);
        let retry = Outcome {
            subscriber_id: id[0],
            lease_token: TOKEN,
            kind: OutcomeKind::Release,
        };
        assert_eq!(db.record(issue_id, &[retry]).await, 0);

        assert_eq!(
            db.store.reclaim_expired_leases(T0 + 100_000).await.unwrap(),
            2
        );
        let again = db.claim(issue_id, 10, T0 + 100_000).await;
        assert_eq!(ids(&again), [id[1], id[2]]);
        assert_eq!(db.row(issue_id, id[0]).await.status, "sent");
        // Enqueueing the issue again does not bring the sent row back either.
        assert_eq!(db.enqueue("sent-once", "h", T0 + 100_001).await.added, 0);
        assert_eq!(db.row(issue_id, id[0]).await.status, "sent");
    }
}

on_both_backends! {
    async fn expired_leases_go_back_to_retry_and_are_claimable(db: Db) {
        db.add(0..4, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("crash", "h", T0).await.issue_id;
        let short = db
            .store
            .claim_deliveries(issue_id, 1, T0 + 100, 2, T0)
            .await
            .unwrap();
        let long = db
            .store
            .claim_deliveries(issue_id, 2, T0 + 1_000, 2, T0)
            .await
            .unwrap();

        assert_eq!(
            db.store.reclaim_expired_leases(T0 + 100).await.unwrap(),
            0,
            "not yet expired"
        );
        // A heartbeat keeps the long lease alive.
        assert_eq!(
            db.store
                .renew_leases(issue_id, 2..=2, T0 + 2_000)
                .await
                .unwrap(),
            2
        );
        assert_eq!(db.store.reclaim_expired_leases(T0 + 101).await.unwrap(), 2);
        for c in &short {
            let r = db.row(issue_id, c.subscriber_id).await;
            assert_eq!(r.status, "retry");
            assert_eq!(
                r.attempts, 0,
                "the outcome is unknown: no attempt is counted"
            );
            assert_eq!(r.next_attempt_at, T0 + 101);
            assert_eq!((r.lease_until, r.lease_token), (None, None));
        }
        for c in &long {
            let r = db.row(issue_id, c.subscriber_id).await;
            assert_eq!(
                (r.status.as_str(), r.lease_until),
                ("sending", Some(T0 + 2_000))
            );
        }
        assert_eq!(
            db.store.reclaim_expired_leases(T0 + 1_500).await.unwrap(),
            0
        );
        let again = db.claim(issue_id, 10, T0 + 101).await;
        assert_eq!(ids(&again), ids(&short));
    }
}

on_both_backends! {
    async fn counts_next_due_and_finishing_an_issue(db: Db) {
        db.add(0..4, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("finish", "h", T0).await.issue_id;
        let counts = db.store.delivery_counts(issue_id).await.unwrap();
        assert_eq!((counts.queued, counts.pending(), counts.total()), (4, 4, 4));
        assert_eq!(db.store.next_due_at(issue_id).await.unwrap(), Some(T0));
        assert!(!db.store.finish_issue_if_done(issue_id, T0).await.unwrap());

        let id = ids(&db.claim(issue_id, 4, T0).await);
        assert_eq!(
            db.store.next_due_at(issue_id).await.unwrap(),
            Some(T0 + LEASE)
        );
        db.record(
            issue_id,
            &[
                sent(id[0]),
                Outcome {
                    subscriber_id: id[1],
                    lease_token: TOKEN,
                    kind: OutcomeKind::Retry {
                        reply: "451".into(),
                        next_attempt_at: T0 + 30,
                    },
                },
                Outcome {
                    subscriber_id: id[2],
                    lease_token: TOKEN,
                    kind: OutcomeKind::Failed {
                        reply: "554".into(),
                        permanent: true,
                        bounce: false,
                    },
                },
            ],
        )
        .await;
        let counts = db.store.delivery_counts(issue_id).await.unwrap();
        assert_eq!(
            (counts.sent, counts.retry, counts.failed, counts.sending),
            (1, 1, 1, 1)
        );
        assert_eq!(db.store.next_due_at(issue_id).await.unwrap(), Some(T0 + 30));
        assert!(!db
            .store
            .finish_issue_if_done(issue_id, T0 + 40)
            .await
            .unwrap());

        db.record(issue_id, &[sent(id[3])]).await;
        let retry = db.claim(issue_id, 4, T0 + 30).await;
        assert_eq!(ids(&retry), [id[1]]);
        db.record(
            issue_id,
            &[Outcome {
                subscriber_id: id[1],
                lease_token: TOKEN,
                kind: OutcomeKind::Skipped,
            }],
        )
        .await;
        assert_eq!(db.store.next_due_at(issue_id).await.unwrap(), None);
        let counts = db.store.delivery_counts(issue_id).await.unwrap();
        assert_eq!(
            (counts.sent, counts.failed, counts.skipped, counts.pending()),
            (2, 1, 1, 0)
        );
        assert_eq!(
            serde_json::to_value(counts).unwrap(),
            serde_json::json!({"queued": 0, "sending": 0, "sent": 2, "retry": 0, "failed": 1, "skipped": 1})
        );

        assert!(db
            .store
            .finish_issue_if_done(issue_id, T0 + 50)
            .await
            .unwrap());
        let issue = db.store.find_issue("finish").await.unwrap().unwrap();
        assert_eq!(
            (issue.status.as_str(), issue.finished_at),
            ("sent", Some(T0 + 50))
        );
        // Asking again keeps the first finish time.
        assert!(db
            .store
            .finish_issue_if_done(issue_id, T0 + 60)
            .await
            .unwrap());
        let issue = db.store.find_issue("finish").await.unwrap().unwrap();
        assert_eq!(issue.finished_at, Some(T0 + 50));
        assert!(!db
            .store
            .finish_issue_if_done(issue_id + 1, T0)
            .await
            .unwrap());
    }
}

on_both_backends! {
    async fn ten_thousand_outcomes_in_one_call(db: Db) {
        const ROWS: usize = 10_000;
        db.add(0..ROWS, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("big", "h", T0).await.issue_id;
        let claims = db.claim(issue_id, ROWS as u32, T0).await;
        assert_eq!(claims.len(), ROWS);
        let outcomes: Vec<Outcome> = claims
            .iter()
            .enumerate()
            .map(|(i, c)| match i % 10 {
                0 => Outcome {
                    subscriber_id: c.subscriber_id,
                    lease_token: TOKEN,
                    kind: OutcomeKind::Retry {
                        reply: "451 4.3.0 try again".into(),
                        next_attempt_at: T0 + 60,
                    },
                },
                _ => sent(c.subscriber_id),
            })
            .collect();
        let started = Instant::now();
        let changed = db.record(issue_id, &outcomes).await;
        eprintln!(
            "record_outcomes: {ROWS} outcomes in one call took {:?}",
            started.elapsed()
        );
        assert_eq!(changed, ROWS as u64);
        let counts = db.store.delivery_counts(issue_id).await.unwrap();
        assert_eq!((counts.sent, counts.retry), (9_000, 1_000));
    }
}

on_both_backends! {
    async fn a_claim_is_checked_before_sending_for_its_token_its_lease_and_its_subscriber(db: Db) {
        db.add(0..3, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("checked", "h", T0).await.issue_id;
        let id = ids(&db.claim(issue_id, 3, T0).await);
        let store = &db.store;
        let check = move |sid: i64, token: i64, now: i64| async move {
            let checks = store.check_claims(issue_id, &[(sid, token)], now).await;
            checks.map(|c| c[0])
        };

        assert_eq!(check(id[0], TOKEN, T0).await.unwrap(), ClaimCheck::Held);
        assert_eq!(check(id[0], TOKEN + 1, T0).await.unwrap(), ClaimCheck::Lost);
        assert_eq!(
            check(id[0], TOKEN, T0 + LEASE).await.unwrap(),
            ClaimCheck::Lost,
            "a lease that has run out is not sent on"
        );
        db.set_status(1, SubscriberStatus::Unsubscribed).await;
        assert_eq!(
            check(id[1], TOKEN, T0).await.unwrap(),
            ClaimCheck::SubscriberLeft
        );
        // Many rows in one read, each answered in the order asked, a row of no claim too.
        assert_eq!(
            db.store
                .check_claims(
                    issue_id,
                    &[(id[2], TOKEN), (id[1], TOKEN), (id[0], TOKEN + 1), (-7, TOKEN), (id[0], TOKEN)],
                    T0
                )
                .await
                .unwrap(),
            [
                ClaimCheck::Held,
                ClaimCheck::SubscriberLeft,
                ClaimCheck::Lost,
                ClaimCheck::Lost,
                ClaimCheck::Held
            ]
        );

        // The heartbeat renews every token of the run's range, and only those.
        assert_eq!(
            db.store
                .renew_leases(issue_id, TOKEN - 1..=TOKEN + 1, T0 + 2 * LEASE)
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            db.store
                .renew_leases(issue_id, TOKEN + 1..=TOKEN + 9, T0 + 3 * LEASE)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            check(id[2], TOKEN, T0 + LEASE).await.unwrap(),
            ClaimCheck::Held
        );
    }
}

on_both_backends! {
    async fn a_mixed_group_is_applied_row_by_row_and_answered_in_order(db: Db) {
        db.add(0..4, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("mixed", "h", T0).await.issue_id;
        let id = ids(&db.claim(issue_id, 4, T0).await);
        let stale = Outcome {
            lease_token: TOKEN + 1,
            ..sent(id[1])
        };
        let retry = Outcome {
            subscriber_id: id[2],
            lease_token: TOKEN,
            kind: OutcomeKind::Retry {
                reply: "451 4.3.0 later".into(),
                next_attempt_at: T0 + 60,
            },
        };
        let applied = db
            .store
            .record_outcomes_at(issue_id, &[sent(id[0]), stale, retry, sent(id[3])], T0)
            .await
            .unwrap();
        assert_eq!(applied, [true, false, true, true]);
        let row = |i: usize| db.row(issue_id, id[i]);
        let first = row(0).await;
        assert_eq!(
            (first.status.as_str(), first.message_id.as_deref(), first.sent_at),
            ("sent", Some(format!("<{}@herald.test>", id[0]).as_str()), Some(T0 + 5))
        );
        assert_eq!(first.last_reply.as_deref(), Some("250 2.0.0 Ok: queued"));
        assert_eq!((first.lease_token, first.lease_until), (None, None));
        assert_eq!(row(1).await.status, "sending", "a stale token changes nothing");
        assert_eq!(row(2).await.status, "retry");
        assert_eq!(row(3).await.status, "sent");
    }
}

/// The plan of `sql` for `bind`, under `plan_cache_mode` `mode` (a prepared statement's
/// custom plan, or the generic plan PostgreSQL may switch to after a few executions).
async fn pg_plan(
    conn: &mut sqlx::PgConnection,
    mode: &str,
    sql: &str,
    bind: impl FnOnce(
        sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> String {
    sqlx::query(&format!("SET plan_cache_mode = {mode}"))
        .execute(&mut *conn)
        .await
        .unwrap();
    let explain = format!("EXPLAIN (FORMAT JSON) {sql}");
    let plan: sqlx::types::JsonValue = {
        use sqlx::Row as _;
        bind(sqlx::query(&explain))
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .get(0)
    };
    plan.to_string()
}

/// On PostgreSQL a claim reads the due rows in claim order and stops at its batch, and a
/// group's accepted messages are marked sent each found by its key: neither reads every
/// row of the issue (every due row, every row in flight), which made a send take time
/// quadratic in its size. Checked with the statistics herald's enqueue leaves (every row
/// queued, none in flight) and with statistics taken mid-send, for custom and generic
/// plans.
#[tokio::test]
async fn on_postgres_taking_back_expired_leases_passes_over_rows_another_transaction_holds() {
    let Some(db) = Db::open(Backend::Postgres).await else {
        return;
    };
    db.add(0..3, SubscriberStatus::Active).await;
    let issue_id = db.enqueue("held", "h", T0).await.issue_id;
    let claimed = ids(&db.claim(issue_id, 3, T0).await);
    assert_eq!(claimed.len(), 3);

    // Another transaction (a run marking the row sent, say) holds the first row.
    use sqlx::Connection as _;
    let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut held = other.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM deliveries WHERE issue_id = $1 AND subscriber_id = $2 FOR UPDATE")
        .bind(issue_id)
        .bind(claimed[0])
        .execute(&mut *held)
        .await
        .unwrap();
    let after_lease = T0 + LEASE + 1;
    let reclaimed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        db.store.reclaim_expired_leases(after_lease),
    )
    .await
    .expect("taking back leases waits for no other transaction")
    .unwrap();
    assert_eq!(reclaimed, 2, "the two rows nobody holds come back");
    held.rollback().await.unwrap();
    assert_eq!(
        db.store.reclaim_expired_leases(after_lease).await.unwrap(),
        1
    );
    assert_eq!(
        db.store.reclaim_expired_leases(after_lease).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn on_postgres_claims_and_outcomes_read_only_their_own_rows() {
    let Some(db) = Db::open(Backend::Postgres).await else {
        return;
    };
    db.add(0..20_000, SubscriberStatus::Active).await;
    let issue_id = db.enqueue("plans", "h", T0).await.issue_id;
    let claimed = ids(&db.claim(issue_id, 500, T0).await);
    assert_eq!(claimed.len(), 500);
    let group: Vec<i64> = claimed[..100].to_vec();

    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    for analysed in [false, true] {
        if analysed {
            sqlx::raw_sql("ANALYZE deliveries; ANALYZE subscribers")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        for mode in ["force_custom_plan", "force_generic_plan"] {
            let claim = pg_plan(&mut conn, mode, store::postgres::SELECT_DUE, |q| {
                q.bind(issue_id).bind(T0).bind(500i64)
            })
            .await;
            assert!(
                claim.contains("\"Index Name\":\"deliveries_due\"")
                    && !claim.contains("\"Node Type\":\"Sort\""),
                "analysed {analysed}, {mode}: the claim sorts every due row: {claim}"
            );
            let tokens = vec![TOKEN; group.len()];
            let texts = vec!["x"; group.len()];
            let times = vec![T0; group.len()];
            let mark = pg_plan(&mut conn, mode, store::postgres::MARK_SENT, |q| {
                q.bind(issue_id)
                    .bind("node-1")
                    .bind(group.clone())
                    .bind(tokens)
                    .bind(texts.clone())
                    .bind(times)
                    .bind(texts)
            })
            .await;
            assert!(
                (mark.contains("\"Index Name\":\"deliveries_pkey\"")
                    || mark.contains("\"Index Name\":\"deliveries_by_subscriber\""))
                    && !mark.contains("\"Node Type\":\"Bitmap Heap Scan\"")
                    && !mark.contains("\"Node Type\":\"Seq Scan\""),
                "analysed {analysed}, {mode}: marking sent reads more than each row by its \
                 key: {mark}"
            );
        }
    }
}

/// Sleeps until just after the clock's next whole second, so the readings that follow are
/// taken, and used, within one second.
async fn at_the_start_of_a_second() {
    let into = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    tokio::time::sleep(std::time::Duration::from_millis(u64::from(1_020 - into))).await;
}

on_both_backends! {
    async fn the_checker_answers_from_readings_ahead_and_sees_an_unsubscribe_once_they_age(db: Db) {
        use herald::dispatch::checker::{Checker, FRESH};
        db.add(0..100, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("checked", "h", T0).await.issue_id;
        // The lease runs to T0 + LEASE, after today: every row is held.
        let claimed = ids(&db.claim(issue_id, 100, T0).await);
        assert_eq!(claimed[30], db.id_of(30).await);
        let checker = Checker::start(db.store.clone(), issue_id, 64);
        checker.claimed(TOKEN, claimed.iter().copied()).await;

        at_the_start_of_a_second().await;
        assert_eq!(checker.check(claimed[0], TOKEN).await, Ok(ClaimCheck::Held));
        db.set_status(30, SubscriberStatus::Unsubscribed).await;
        tokio::time::sleep(FRESH).await;
        assert_eq!(
            checker.check(claimed[30], TOKEN).await,
            Ok(ClaimCheck::SubscriberLeft),
            "a reading older than FRESH is read again"
        );
        assert_eq!(checker.check(claimed[31], TOKEN + 1).await, Ok(ClaimCheck::Lost));

        // A read covers the rows asked about and as many of the next ones to go out as were
        // asked about lately: after a quick run of questions, with the database closed,
        // the next rows are still answered, from the last read.
        let checker = Checker::start(db.store.clone(), issue_id, 64);
        checker.claimed(TOKEN, claimed[40..].iter().copied()).await;
        at_the_start_of_a_second().await;
        for id in &claimed[40..71] {
            assert_eq!(checker.check(*id, TOKEN).await, Ok(ClaimCheck::Held), "{id}");
        }
        db.store.clone().close().await;
        for id in &claimed[71..86] {
            assert_eq!(checker.check(*id, TOKEN).await, Ok(ClaimCheck::Held), "{id}");
        }
        assert!(
            checker.check(claimed[20], TOKEN).await.is_err(),
            "a row no read covered needs a read, which the closed database refuses"
        );
    }

    async fn a_reading_that_aged_before_its_turn_is_read_again_with_the_next_question(db: Db) {
        use herald::dispatch::checker::{Checker, FRESH};
        db.add(0..100, SubscriberStatus::Active).await;
        let issue_id = db.enqueue("aged", "h", T0).await.issue_id;
        let claimed = ids(&db.claim(issue_id, 100, T0).await);
        let checker = Checker::start(db.store.clone(), issue_id, 64);
        checker.claimed(TOKEN, claimed.iter().copied()).await;
        at_the_start_of_a_second().await;
        // A quick run of questions: the reads reach well ahead of row 15.
        for id in &claimed[..15] {
            assert_eq!(checker.check(*id, TOKEN).await, Ok(ClaimCheck::Held), "{id}");
        }
        // The rows read ahead wait past FRESH (pacing held them back, say): their readings
        // age. The next question reads its row and the next one to go out, which is the
        // one whose reading aged, not a row beyond the old reading.
        tokio::time::sleep(FRESH).await;
        assert_eq!(checker.check(claimed[15], TOKEN).await, Ok(ClaimCheck::Held));
        db.store.clone().close().await;
        assert_eq!(
            checker.check(claimed[16], TOKEN).await,
            Ok(ClaimCheck::Held),
            "row 16 was read again with row 15"
        );
        assert!(
            checker.check(claimed[17], TOKEN).await.is_err(),
            "a read reaches as far as the questions of the last FRESH ask for"
        );
    }
}
