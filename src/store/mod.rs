//! All of herald's SQL lives here, one intention-named function per query, so that one grep
//! finds every statement that touches a table.
//!
//! # The database
//!
//! [`connect`] opens (and creates) the SQLite file with WAL journaling, `foreign_keys=ON`,
//! a [`BUSY_TIMEOUT`], and `synchronous=FULL`. SQLite sets `synchronous` per connection, not
//! per table, so every table gets the durability the delivery ledger and the event trail
//! need: a commit has reached the disk before herald acts on it. It then applies the embedded
//! migrations (`migrations/`) under a write lock, so two herald processes starting on a new
//! file at once do not both try to create the schema.
//!
//! Every transaction that writes starts with `BEGIN IMMEDIATE`. A deferred transaction that
//! reads first and writes later can fail with "database is locked" when another process
//! commits in between, and the busy timeout cannot help with that; taking the write lock up
//! front turns a concurrent writer into a wait.
//!
//! Times are INTEGER Unix seconds, UTC, everywhere.
//!
//! # Why the `query!` macros are not used
//!
//! sqlx's `query!`/`query_as!` check SQL against a live database or committed `.sqlx/` data
//! at compile time. herald does without them, deliberately:
//!
//! - The hot paths cannot use them. The import's multi-row `INSERT` has a row count that
//!   varies with the batch, and its erasure check is an `IN (...)` list of varying length;
//!   the macros only take a fixed SQL string literal.
//! - They need `sqlx-cli` installed for every developer and in CI (`cargo sqlx prepare` after
//!   every SQL change, `cargo sqlx prepare --check` in CI), and the `.sqlx/` files conflict
//!   whenever two branches touch queries. The planned PostgreSQL backend doubles that data.
//! - What they would catch is caught anyway: every function in this module is exercised by
//!   the tests against a real SQLite file migrated with the real migrations, so a typo in a
//!   column name fails `cargo test`, not production. Rows are decoded by column name with
//!   typed `try_get`, and statuses go through [`SubscriberStatus`] parsing, so a drift between
//!   the schema and the code is an error, never a silent misread.
//!
//! Values are always bound parameters; only placeholders (`?1, ?2, ...`) are ever formatted
//! into SQL text.
//!
//! [`SubscriberStatus`]: crate::domain::SubscriberStatus

mod deliveries;
mod editor;
mod notices;
mod schedule;
mod signup;
mod subscribers;

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Connection;

pub use deliveries::{
    Claim, DeliveryCounts, DeliveryRow, Enqueued, IssueRow, NewIssue, Outcome, OutcomeKind,
};
pub use editor::{StoredAnswer, SubscriberPage};
pub use notices::{NoticeClaim, NoticeOutcome, NoticeRow};
pub use schedule::{EnqueuedIssueDate, ScheduleRun, ScheduledEnqueue};
pub use signup::{ConfirmOutcome, NewSignup, SignupOutcome, CONFIRM_RESEND_SECONDS};
pub use subscribers::{
    AddOutcome, BatchOutcome, NewSubscriber, StatusChange, Subscriber, SubscriberRecord,
};

/// How long a statement waits for another process's write lock before giving up. Long enough
/// to outlast any transaction herald itself holds (an import batch takes well under a second).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The embedded migrations from `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {url:?} is not valid: {source}")]
    BadUrl { url: String, source: sqlx::Error },
    #[error("cannot open the database: {0}")]
    Open(#[source] sqlx::Error),
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("the database holds a value herald cannot read: {0}")]
    BadValue(String),
}

/// A handle on the database: a small connection pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

/// Opens the database at `url` (e.g. `sqlite://herald.db`), creating the file if missing,
/// and applies any pending migrations.
#[tracing::instrument(skip_all)]
pub async fn connect(url: &str) -> Result<Store, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| StoreError::BadUrl {
            url: url.to_string(),
            source,
        })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .synchronous(SqliteSynchronous::Full);
    let pool = open_pool(options).await?;
    let store = Store { pool };
    store.apply_migrations().await?;
    Ok(store)
}

/// Opens the pool. Switching a new file to WAL needs an exclusive lock that SQLite does not
/// wait for, so when two processes create the same file at once one of them is told "busy";
/// it retries here until [`BUSY_TIMEOUT`].
async fn open_pool(options: SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    let started = Instant::now();
    loop {
        let attempt = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await;
        match attempt {
            Ok(pool) => return Ok(pool),
            Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(e) => return Err(StoreError::Open(e)),
        }
    }
}

/// True for SQLITE_BUSY and SQLITE_LOCKED, with any extended code.
fn is_busy(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else {
        return false;
    };
    db.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

impl Store {
    /// Applies pending migrations inside one `BEGIN IMMEDIATE` transaction, so concurrent
    /// processes apply them once, one after the other.
    async fn apply_migrations(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        MIGRATOR.run(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The number of migrations applied to this database (for `herald migrate`).
    pub async fn count_applied_migrations(&self) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Copies what the WAL holds into the database file without waiting for anyone
    /// (`PRAGMA wal_checkpoint(PASSIVE)`). Run often from a task of its own while writes
    /// stream in, it keeps the WAL short, so the automatic checkpoint that SQLite runs
    /// inside a committing transaction once the WAL passes 1,000 pages rarely falls on a
    /// writer that clients are waiting for.
    pub async fn checkpoint_passive(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// The current time in Unix seconds, as stored.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
