//! All of herald's SQL lives here, one intention-named function per query, so that one grep
//! finds every statement that touches a table. The rest of herald calls one [`Store`] and
//! never knows which database it runs on.
//!
//! # Two backends, one API
//!
//! [`connect`] picks the backend from the URL's scheme: `sqlite://` (the default, one file,
//! no server; see [`sqlite`]) or `postgres://` (for many nodes; see `postgres`). Each
//! backend has its own migrations (`migrations/sqlite/`, `migrations/postgres/`), embedded
//! and applied on every start and by `herald migrate`.
//!
//! The code is laid out so that SQL is written once where the dialects agree:
//!
//! - `store/<area>.rs` (`subscribers`, `deliveries`, ...) holds the public types and the
//!   [`Store`] methods of that area, with their documentation. Each method hands the call to
//!   the backend in use.
//! - `store/shared/<area>.rs` holds the queries both backends run. Each file is compiled
//!   twice, once inside `store/sqlite/` and once inside `store/postgres/` (`#[path]`
//!   modules), where the names `Backend`, `Connection`, `Row` and `sql` mean that backend's.
//!   Bound values are numbered (`$1`, `$2`, ...), which both SQLite and PostgreSQL read.
//! - `store/<backend>/sql.rs` holds the statements whose text differs (case-insensitive
//!   address matching, row locks, JSON aggregation), under the same names in both, and
//!   `store/<backend>/claims.rs` and `bulk.rs` what only that backend does: claiming due
//!   work, multi-row writes.
//!
//! A new query goes in `shared/` unless the dialects disagree; then its statement goes in
//! both `sql.rs` files under one name. Either way it gets one method in `store/<area>.rs`.
//!
//! Both backends store the same values the same way: times are integer Unix seconds (UTC),
//! statuses are text with a CHECK, JSON is an object as text on SQLite and `jsonb` on
//! PostgreSQL (herald writes and reads it through serde_json, so both give back the same
//! text), and addresses are unique in any letter case.
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
//!   whenever two branches touch queries; two backends double that data.
//! - What they would catch is caught anyway: every function in this module is exercised by
//!   the tests against a real database of each backend migrated with the real migrations,
//!   so a typo in a column name fails `cargo test`, not production. Rows are decoded by
//!   column name with typed `try_get`, and statuses go through [`SubscriberStatus`] parsing,
//!   so a drift between the schema and the code is an error, never a silent misread.
//!
//! Values are always bound parameters; only placeholders are ever formatted into SQL text.
//!
//! [`SubscriberStatus`]: crate::domain::SubscriberStatus

mod bounces;
pub mod copy;
mod deliveries;
mod editor;
pub mod nodes;
mod notices;
pub mod postgres;
mod schedule;
mod signup;
pub mod sqlite;
mod subscribers;
mod tracking;
pub mod wake;

use futures::{Stream, StreamExt};

pub use bounces::{
    AppliedReport, BounceCounts, BounceRow, Effect, NewBounce, NewReport, Reactivation,
};
pub(crate) use deliveries::SentRow;
pub use deliveries::{
    Claim, ClaimCheck, DeliveryCounts, DeliveryRow, Enqueued, IssueRow, NewIssue, Outcome,
    OutcomeKind,
};
pub use editor::{StoredAnswer, SubscriberPage};
pub use nodes::{NodeRow, SentByNode};
pub use notices::{NoticeClaim, NoticeOutcome, NoticeRow};
pub use schedule::{EnqueuedIssueDate, ScheduleRun, ScheduledEnqueue};
pub use signup::{ConfirmOutcome, NewSignup, SignupOutcome, CONFIRM_RESEND_SECONDS};
pub use sqlite::BUSY_TIMEOUT;
pub use subscribers::{
    AddOutcome, BatchOutcome, NewSubscriber, StatusChange, Subscriber, SubscriberRecord,
};
pub use tracking::{
    AgentFigures, Hit, HitKind, HourFigures, IssueActivity, LinkFigures, NewTrackedLink,
};

use crate::domain::SubscriberStatus;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {url} is not valid: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot open the database: {0}")]
    Open(#[source] sqlx::Error),
    #[error("the database cannot be written (is the file or its folder read-only?): {0}")]
    NotWritable(#[source] sqlx::Error),
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("the database holds a value herald cannot read: {0}")]
    BadValue(String),
}

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    /// The backend a database URL names, by its scheme.
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(StoreError::BadUrl {
                url: redact_url(url),
                reason: "it must start with sqlite:// or postgres://".into(),
            }),
        }
    }
}

/// `url` with any password replaced by `***`, fit for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        // Unparsable: keep only what comes before any `@`, which is where a password sits.
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        },
    }
}

/// A handle on the database: a connection pool of the backend the URL named. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    engine: Engine,
}

#[derive(Debug, Clone)]
enum Engine {
    Sqlite(sqlite::Backend),
    Postgres(postgres::Backend),
}

/// Opens the database at `url` (`sqlite://herald.db`, created if missing) and applies any
/// pending migrations.
#[tracing::instrument(skip_all)]
pub async fn connect(url: &str) -> Result<Store, StoreError> {
    let engine = match BackendKind::of_url(url)? {
        BackendKind::Sqlite => Engine::Sqlite(sqlite::Backend::connect(url).await?),
        BackendKind::Postgres => Engine::Postgres(postgres::Backend::connect(url).await?),
    };
    Ok(Store { engine })
}

/// Generates [`Store`] methods that hand the call to the backend in use, which has a method
/// of the same name and arguments (written once in `shared/`, or in the backend's own
/// module). The list of every operation herald needs from a database is the list of these.
macro_rules! delegate {
    ($(
        $(#[$attr:meta])*
        pub async fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
    )*) => {
        impl Store {
            $(
                $(#[$attr])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match &self.engine {
                        $crate::store::Engine::Sqlite(db) => db.$name($($arg),*).await,
                        $crate::store::Engine::Postgres(db) => db.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}
use delegate;

impl Store {
    /// The database file, when [`connect`] created it (so a command can say where). Always
    /// `None` for a database server.
    pub fn created_file(&self) -> Option<&std::path::Path> {
        match &self.engine {
            Engine::Sqlite(db) => db.created_file(),
            Engine::Postgres(db) => db.created_file(),
        }
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> BackendKind {
        match &self.engine {
            Engine::Sqlite(_) => BackendKind::Sqlite,
            Engine::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Every subscriber, or those with one status, oldest first, as a stream.
    pub fn list_subscribers(
        &self,
        status: Option<SubscriberStatus>,
    ) -> impl Stream<Item = Result<Subscriber, StoreError>> + Send + '_ {
        match &self.engine {
            Engine::Sqlite(db) => db.list_subscribers(status).boxed(),
            Engine::Postgres(db) => db.list_subscribers(status).boxed(),
        }
    }

    /// Everything held about every subscriber (row and event trail), oldest first, as a
    /// stream: what `export` writes.
    pub fn export_subscriber_records(
        &self,
    ) -> impl Stream<Item = Result<SubscriberRecord, StoreError>> + Send + '_ {
        match &self.engine {
            Engine::Sqlite(db) => db.export_subscriber_records().boxed(),
            Engine::Postgres(db) => db.export_subscriber_records().boxed(),
        }
    }

    /// Closes every connection (on SQLite, checkpointing the WAL).
    pub async fn close(self) {
        match &self.engine {
            Engine::Sqlite(db) => db.close().await,
            Engine::Postgres(db) => db.close().await,
        }
    }
}

delegate! {
    /// The number of migrations applied to this database (for `herald migrate`).
    pub async fn count_applied_migrations(&self) -> Result<i64, StoreError>;

    /// Copies what SQLite's WAL holds into the database file without waiting for anyone
    /// (`PRAGMA wal_checkpoint(PASSIVE)`). Run often from a task of its own while writes
    /// stream in, it keeps the WAL short, so the automatic checkpoint that SQLite runs
    /// inside a committing transaction once the WAL passes 1,000 pages rarely falls on a
    /// writer that clients are waiting for. Does nothing on PostgreSQL.
    pub async fn checkpoint_passive(&self) -> Result<(), StoreError>;

    /// Proves the database takes writes: rewrites the one row of `health_probe` in a write
    /// transaction of its own, committed like any other (for `GET /health`).
    pub async fn probe_write(&self, now: i64) -> Result<(), StoreError>;
}

/// The current time in Unix seconds, as stored.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `(confirmed_at, unsubscribed_at)` for a subscriber entering `status` at `at`.
fn status_times(status: SubscriberStatus, at: i64) -> (Option<i64>, Option<i64>) {
    match status {
        SubscriberStatus::Active => (Some(at), None),
        SubscriberStatus::Pending => (None, None),
        _ => (None, Some(at)),
    }
}

fn parse_status(s: &str) -> Result<SubscriberStatus, StoreError> {
    s.parse()
        .map_err(|e: crate::domain::StatusError| StoreError::BadValue(e.to_string()))
}

fn to_u32(n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::BadValue(format!("attempts {n} out of range")))
}

/// `text` with LIKE's wildcards (`%`, `_`) and the escape character taken literally.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("a%b_c\\d"), "a\\%b\\_c\\\\d");
    }

    #[test]
    fn a_password_in_a_database_url_is_never_shown() {
        let shown = redact_url("postgres://herald:s3cret@db.example.org:5432/herald");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.example.org"), "{shown}");
        assert_eq!(redact_url("sqlite://herald.db"), "sqlite://herald.db");
    }

    #[test]
    fn the_backend_is_chosen_by_the_url_scheme() {
        assert_eq!(
            BackendKind::of_url("sqlite://herald.db").unwrap(),
            BackendKind::Sqlite
        );
        let e = BackendKind::of_url("mysql://u:pw@host/db").unwrap_err();
        assert!(!e.to_string().contains("pw"), "{e}");
    }
}
