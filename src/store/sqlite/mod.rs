//! The SQLite backend: one file, WAL journaling, `synchronous=FULL`, and one writer at a time.
//!
//! [`Backend::connect`] opens (and creates) the file with WAL journaling, `foreign_keys=ON`,
//! a [`BUSY_TIMEOUT`], and `synchronous=FULL`. SQLite sets `synchronous` per connection, not
//! per table, so every table gets the durability the delivery ledger and the event trail
//! need: a commit has reached the disk before herald acts on it. It then applies the embedded
//! migrations (`migrations/sqlite/`) under a write lock, so two herald processes starting on
//! a new file at once do not both try to create the schema.
//!
//! Every transaction that writes starts with `BEGIN IMMEDIATE` ([`Backend::begin_write`]). A
//! deferred transaction that reads first and writes later can fail with "database is locked"
//! when another process commits in between, and the busy timeout cannot help with that;
//! taking the write lock up front turns a concurrent writer into a wait. Because writers take
//! turns, a read followed by a write in one transaction needs no row locks here.
//!
//! The queries both backends share are compiled into this module from `../shared/`; what only
//! SQLite says is in `sql.rs`, `claims.rs` and `bulk.rs`.

mod bulk;
mod claims;
pub(crate) mod copy;
mod sql;

#[path = "../shared/bounces.rs"]
mod bounces;
#[path = "../shared/deliveries.rs"]
mod deliveries;
#[path = "../shared/editor.rs"]
mod editor;
#[path = "../shared/health.rs"]
mod health;
#[path = "../shared/nodes.rs"]
mod nodes;
#[path = "../shared/notices.rs"]
mod notices;
#[path = "../shared/schedule.rs"]
mod schedule;
#[path = "../shared/signup.rs"]
mod signup;
#[path = "../shared/subscribers.rs"]
mod subscribers;
#[path = "../shared/tracking.rs"]
mod tracking;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Connection as _;

use super::StoreError;

/// The database type the shared queries are compiled for in this module.
type Database = sqlx::Sqlite;
/// One connection, as the shared queries' helpers take it.
type Connection = sqlx::SqliteConnection;
/// One result row.
type Row = sqlx::sqlite::SqliteRow;

/// How long a statement waits for another process's write lock before giving up. Long enough
/// to outlast any transaction herald itself holds (an import batch takes well under a second).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The embedded migrations from `migrations/sqlite/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// A handle on one SQLite file: a small connection pool. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    pool: SqlitePool,
    /// The database file, when [`Backend::connect`] created it.
    created: Option<PathBuf>,
    /// The node recorded as the sender of the rows this handle marks `sent`.
    pub(super) node: Option<std::sync::Arc<str>>,
}

impl Backend {
    /// Opens the database at `url` (e.g. `sqlite://herald.db`), creating the file if
    /// missing, and applies any pending migrations.
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::BadUrl {
                url: url.to_string(),
                reason: source.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Full);
        let file = options.get_filename().to_path_buf();
        let existed = file.exists();
        let pool = open_pool(options).await?;
        let created = (!existed && file.exists()).then_some(file);
        let backend = Self {
            pool,
            created,
            node: None,
        };
        backend.apply_migrations().await?;
        Ok(backend)
    }

    /// Applies pending migrations inside one `BEGIN IMMEDIATE` transaction, so concurrent
    /// processes apply them once, one after the other.
    async fn apply_migrations(&self) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::NotWritable)?;
        MIGRATOR.run(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The database file, when this handle created it.
    pub(crate) fn created_file(&self) -> Option<&Path> {
        self.created.as_deref()
    }

    /// A transaction that holds the write lock from its first statement.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Database>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub(crate) async fn count_applied_migrations(&self) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    pub(crate) async fn checkpoint_passive(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// Opens the pool. Switching a new file to WAL needs an exclusive lock that SQLite does not
/// wait for, so when two processes create the same file at once one of them is told "busy";
/// it retries here until [`BUSY_TIMEOUT`].
///
/// A connection goes back to the pool only when it is outside any transaction. After an
/// I/O error, a full disk or a refused write during a statement or a commit, SQLite may end
/// the transaction by itself; sqlx's `ROLLBACK` on drop then fails, and the connection
/// would stay marked as inside a transaction, refusing every later `BEGIN` until a restart.
/// Such a connection is closed instead, and the pool opens a fresh one when needed.
async fn open_pool(options: SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    let started = Instant::now();
    loop {
        let attempt = SqlitePoolOptions::new()
            .max_connections(4)
            .after_release(|conn, _| {
                Box::pin(async move {
                    // The rollback queued when a transaction was dropped runs before this
                    // ping answers, so the depth read next is the final one.
                    conn.ping().await?;
                    let clean = !conn.is_in_transaction();
                    if !clean {
                        tracing::warn!(
                            "a database connection was left inside a failed transaction; \
                             closing it"
                        );
                    }
                    Ok(clean)
                })
            })
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
