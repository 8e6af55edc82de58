//! The PostgreSQL backend: a connection pool to a server that any number of herald
//! processes, on any machines, may share.
//!
//! [`Backend::connect`] opens the pool and applies the embedded migrations
//! (`migrations/postgres/`); sqlx holds an advisory lock while it does, so two processes
//! starting at once apply them once.
//!
//! Transactions run at PostgreSQL's default isolation (read committed). Where the SQLite
//! backend relies on its single writer, this one locks what it reads before writing it:
//! the `..._FOR_UPDATE` statements of `sql.rs` say `FOR UPDATE`, and claims of due work take
//! rows with `FOR UPDATE SKIP LOCKED` (`claims.rs`), so concurrent claimers never take the
//! same row and never wait for each other.
//!
//! The queries both backends share are compiled into this module from `../shared/`; what only
//! PostgreSQL says is in `sql.rs`, `claims.rs` and `bulk.rs`.

mod bulk;
mod claims;
pub(crate) mod copy;
mod sql;
mod wake;

/// The statements on the send path whose plans matter most, for tests that check them.
pub use bulk::MARK_SENT;
pub use claims::SELECT_DUE;

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

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub(crate) use wake::WakeListener;

use super::{redact_url, StoreError};

/// The database type the shared queries are compiled for in this module.
type Database = sqlx::Postgres;
/// One connection, as the shared queries' helpers take it.
type Connection = sqlx::PgConnection;
/// One result row.
type Row = sqlx::postgres::PgRow;

/// The embedded migrations from `migrations/postgres/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per process. The dispatcher, the sign-up writer, the notice worker and the
/// web handlers each hold one at a time.
const POOL_SIZE: u32 = 10;

/// How long a request waits for a free connection, or for the server to answer a connect.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// A handle on one PostgreSQL database: a connection pool. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    pool: PgPool,
    /// The node recorded as the sender of the rows this handle marks `sent`.
    pub(super) node: Option<std::sync::Arc<str>>,
}

impl Backend {
    /// Connects to the database at `url` (`postgres://user:password@host/db`) and applies any
    /// pending migrations. The database itself must exist.
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|source| StoreError::BadUrl {
            url: redact_url(url),
            reason: source.to_string(),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(StoreError::Open)?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool, node: None })
    }

    /// Never a file: `None`.
    pub(crate) fn created_file(&self) -> Option<&Path> {
        None
    }

    /// A transaction for reading and writing; the statements in it lock what they must.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Database>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    pub(crate) async fn count_applied_migrations(&self) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// PostgreSQL checkpoints by itself: nothing to do.
    pub(crate) async fn checkpoint_passive(&self) -> Result<(), StoreError> {
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}
