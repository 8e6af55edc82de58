//! PostgreSQL for the tests: a fresh, empty database per test on the server that
//! `HERALD_TEST_POSTGRES` names (a URL whose user may create databases, such as the throwaway
//! cluster `scripts/pg-test-cluster.sh start` runs on loopback, which `.ci/run` starts).
//!
//! Without the variable a PostgreSQL test skips with a printed reason, or fails when
//! `HERALD_REQUIRE_TOOLS` is set, as CI sets it.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection as _;

/// The variable that names the test server.
pub const VAR: &str = "HERALD_TEST_POSTGRES";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The URL of a new, empty database on the test server, or `None` (after printing why)
/// when there is no server to use.
pub async fn fresh_database() -> Option<String> {
    if !postgres_available() {
        return None;
    }
    let admin = std::env::var(VAR).unwrap_or_default();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "herald_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    );
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {VAR}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database on {VAR}: {e}"));
    let mut url = url::Url::parse(&admin).expect("HERALD_TEST_POSTGRES is a URL");
    url.set_path(&name);
    Some(url.to_string())
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() as u32
}

/// Writes each test once per backend: `async fn name(db: Db) { ... }` becomes the module
/// `name` with the tests `sqlite` and `postgres`, each opening its `Db` with
/// `Db::open(Backend::...)`, which returns `None` to skip. The tests run on tokio's
/// two-thread runtime, unless the block starts with another runtime for all its tests, such
/// as `#![tokio::test(start_paused = true)]`.
#[macro_export]
macro_rules! on_both_backends {
    (
        #![$runtime:meta]
        $(
            $(#[$attr:meta])*
            async fn $name:ident($db:ident: $ty:ty) $body:block
        )*
    ) => {
        $(
            $(#[$attr])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[$runtime]
                async fn sqlite() {
                    let Some($db) = <$ty>::open($crate::support::postgres::Backend::Sqlite).await
                    else {
                        return;
                    };
                    $body
                }

                #[$runtime]
                async fn postgres() {
                    let Some($db) = <$ty>::open($crate::support::postgres::Backend::Postgres).await
                    else {
                        return;
                    };
                    $body
                }
            }
        )*
    };
    ($($tests:tt)*) => {
        $crate::on_both_backends! {
            #![tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $($tests)*
        }
    };
}

impl Backend {
    /// `backend`, when its database can be had here (see [`fresh_database`] for when
    /// PostgreSQL cannot); for tests that open their databases themselves.
    pub async fn open(backend: Backend) -> Option<Backend> {
        match backend {
            Backend::Sqlite => Some(backend),
            Backend::Postgres => postgres_available().then_some(backend),
        }
    }

    /// A new, empty database of this backend: a file in `dir`, or a database on the test
    /// server.
    pub async fn database_url(self, dir: &std::path::Path) -> String {
        match self {
            Backend::Sqlite => format!("sqlite://{}", dir.join("herald.db").display()),
            Backend::Postgres => fresh_database()
                .await
                .expect("PostgreSQL was available when the test started"),
        }
    }
}

fn postgres_available() -> bool {
    if std::env::var(VAR).is_ok_and(|v| !v.is_empty()) {
        return true;
    }
    let reason = format!(
        "{VAR} is not set (run `scripts/pg-test-cluster.sh start` and export what it prints)"
    );
    if std::env::var_os("HERALD_REQUIRE_TOOLS").is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("{reason}; HERALD_REQUIRE_TOOLS is set, so this test may not skip");
    }
    eprintln!("SKIPPED: {reason}");
    false
}

/// A value bound to a raw query.
pub enum Arg<'a> {
    Int(i64),
    Text(&'a str),
}

/// A raw connection to a test database of either backend, for what a test checks or
/// arranges beneath the store. Statements number their parameters (`$1`), which both read.
pub enum RawDb {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                Arg::Int(n) => q.bind(*n),
                Arg::Text(t) => q.bind(*t),
            };
        }
        q
    }};
}

impl RawDb {
    pub async fn connect(url: &str) -> RawDb {
        if url.starts_with("sqlite:") {
            RawDb::Sqlite(sqlx::SqliteConnection::connect(url).await.unwrap())
        } else {
            RawDb::Postgres(sqlx::PgConnection::connect(url).await.unwrap())
        }
    }

    /// The one integer `sql` answers.
    pub async fn scalar(&mut self, sql: &str, args: &[Arg<'_>]) -> i64 {
        match self {
            RawDb::Sqlite(c) => bind_all!(sqlx::query_scalar::<_, i64>(sql), args)
                .fetch_one(c)
                .await
                .unwrap(),
            RawDb::Postgres(c) => bind_all!(sqlx::query_scalar::<_, i64>(sql), args)
                .fetch_one(c)
                .await
                .unwrap(),
        }
    }

    /// The integers of `sql`'s one column, a row each.
    pub async fn integers(&mut self, sql: &str, args: &[Arg<'_>]) -> Vec<i64> {
        match self {
            RawDb::Sqlite(c) => bind_all!(sqlx::query_scalar::<_, i64>(sql), args)
                .fetch_all(c)
                .await
                .unwrap(),
            RawDb::Postgres(c) => bind_all!(sqlx::query_scalar::<_, i64>(sql), args)
                .fetch_all(c)
                .await
                .unwrap(),
        }
    }

    /// The texts (or NULLs) of `sql`'s one column, a row each.
    pub async fn texts(&mut self, sql: &str, args: &[Arg<'_>]) -> Vec<Option<String>> {
        match self {
            RawDb::Sqlite(c) => bind_all!(sqlx::query_scalar::<_, Option<String>>(sql), args)
                .fetch_all(c)
                .await
                .unwrap(),
            RawDb::Postgres(c) => bind_all!(sqlx::query_scalar::<_, Option<String>>(sql), args)
                .fetch_all(c)
                .await
                .unwrap(),
        }
    }

    /// Runs `sql`; returns the rows it changed.
    pub async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> u64 {
        match self {
            RawDb::Sqlite(c) => bind_all!(sqlx::query(sql), args)
                .execute(c)
                .await
                .unwrap()
                .rows_affected(),
            RawDb::Postgres(c) => bind_all!(sqlx::query(sql), args)
                .execute(c)
                .await
                .unwrap()
                .rows_affected(),
        }
    }
}
