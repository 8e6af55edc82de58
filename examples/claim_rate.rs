//! Claim-rate benchmark: how fast concurrent dispatchers take due delivery rows from one
//! database and write them back as sent, with no mail in between. This is the part of a send
//! that every node shares, so it is what bounds a cluster of worker nodes on one database.
//! Run by `scripts/bench-send-pg.sh`, or alone:
//!
//! ```text
//! cargo run --release --example claim_rate -- URL [ROWS] [CLAIMERS] [BATCH]
//! ```
//!
//! URL is an empty database (`sqlite://claims.db` or `postgres://...`); ROWS active
//! subscribers (default 100,000) are imported and one issue is enqueued for them. Then
//! CLAIMERS tasks (default 3), each with a connection pool of its own as a separate node
//! would have, loop: claim up to BATCH rows (default 500, as `sending.batch_size`), record
//! them all as sent in one transaction. It prints one line:
//!
//! ```text
//! claims: backend=postgres claimers=3 batch=500 rows=100000 seconds=4.1 rows_per_second=24390 claims_per_second=48.8
//! ```
//!
//! `claims_per_second` counts claim transactions, `rows_per_second` the rows claimed and
//! marked. It exits non-zero if any row was claimed twice or left behind.

use std::process::ExitCode;
use std::time::Instant;

use herald::domain::{EmailAddress, ErasureKey, SubscriberStatus};
use herald::store::{NewIssue, NewSubscriber, Outcome, OutcomeKind, Store};
use secrecy::SecretString;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(url) = args.first().cloned() else {
        eprintln!("usage: claim_rate URL [ROWS] [CLAIMERS] [BATCH]");
        return ExitCode::from(2);
    };
    let number = |i: usize, default: u64| -> u64 {
        args.get(i)
            .map_or(Some(default), |a| a.parse().ok())
            .unwrap_or_else(|| {
                eprintln!("claim_rate: argument {i} must be a number");
                std::process::exit(2)
            })
    };
    let (rows, claimers, batch) = (number(1, 100_000), number(2, 3), number(3, 500));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(run(&url, rows, claimers, batch as u32)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("claim_rate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(url: &str, rows: u64, claimers: u64, batch: u32) -> Result<String, String> {
    let store = herald::store::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let erasure = ErasureKey::new(&SecretString::from(
        "claim-rate-erasure-0123456789".to_string(),
    ));
    let mut next = 0;
    while next < rows {
        let chunk: Vec<NewSubscriber> = (next..rows.min(next + 10_000))
            .map(|i| NewSubscriber {
                email: EmailAddress::parse(&format!("reader{i}@example.org")).expect("valid"),
                name: None,
                status: SubscriberStatus::Active,
                attributes: Default::default(),
            })
            .collect();
        next += chunk.len() as u64;
        store
            .import_subscriber_batch(&chunk, &erasure, "bench")
            .await
            .map_err(|e| e.to_string())?;
    }
    let issue = NewIssue {
        slug: "claim-rate",
        title: "Claim rate",
        subject: "Claim rate",
        source_hash: "bench",
    };
    let now = chrono::Utc::now().timestamp();
    let enqueued = store
        .enqueue_issue(&issue, "bench", now)
        .await
        .map_err(|e| e.to_string())?;
    if enqueued.total != rows {
        return Err(format!(
            "the database was not empty: {} deliveries for {rows} subscribers",
            enqueued.total
        ));
    }
    let backend = format!("{:?}", store.backend()).to_lowercase();

    let mut nodes = Vec::new();
    for _ in 0..claimers {
        nodes.push(
            herald::store::connect(url)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let started = Instant::now();
    let tasks: Vec<_> = nodes
        .into_iter()
        .enumerate()
        .map(|(n, node)| tokio::spawn(claim_until_done(node, enqueued.issue_id, n as i64, batch)))
        .collect();
    let (mut claimed, mut claims) = (0u64, 0u64);
    for task in tasks {
        let (rows, transactions) = task.await.map_err(|e| e.to_string())??;
        claimed += rows;
        claims += transactions;
    }
    let seconds = started.elapsed().as_secs_f64();
    let counts = store
        .delivery_counts(enqueued.issue_id)
        .await
        .map_err(|e| e.to_string())?;
    if claimed != rows || counts.sent != rows {
        return Err(format!(
            "{claimed} rows claimed and {} marked sent, for {rows} rows",
            counts.sent
        ));
    }
    store.close().await;
    Ok(format!(
        "claims: backend={backend} claimers={claimers} batch={batch} rows={rows} \
         seconds={seconds:.2} rows_per_second={:.0} claims_per_second={:.1}",
        rows as f64 / seconds,
        claims as f64 / seconds
    ))
}

/// One node's loop: claim a batch, mark it sent, until nothing is due. Returns the rows it
/// took and the claims it made.
async fn claim_until_done(
    store: Store,
    issue_id: i64,
    node: i64,
    batch: u32,
) -> Result<(u64, u64), String> {
    let (mut rows, mut claims) = (0u64, 0u64);
    loop {
        let now = chrono::Utc::now().timestamp();
        let token = node * 1_000_000_000 + claims as i64 + 1;
        let claimed = store
            .claim_deliveries(issue_id, token, now + 300, batch, now)
            .await
            .map_err(|e| e.to_string())?;
        claims += 1;
        if claimed.is_empty() {
            store.close().await;
            return Ok((rows, claims));
        }
        let outcomes: Vec<Outcome> = claimed
            .iter()
            .map(|c| Outcome {
                subscriber_id: c.subscriber_id,
                lease_token: token,
                kind: OutcomeKind::Sent {
                    message_id: format!("<{}.{token}@bench.example.org>", c.subscriber_id),
                    reply: "250 2.0.0 Ok: queued".into(),
                    at: now,
                },
            })
            .collect();
        rows += claimed.len() as u64;
        store
            .record_outcomes_at(issue_id, &outcomes, now)
            .await
            .map_err(|e| e.to_string())?;
    }
}
