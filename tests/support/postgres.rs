//! PostgreSQL for the tests: a fresh database per test on the server that
//! `HERALD_TEST_POSTGRES` names (a URL whose user may create databases, such as the throwaway
//! cluster `scripts/pg-test-cluster.sh start` runs on loopback, which `.ci/run` starts).
//!
//! Each test process migrates one template database, once, and each test's database is a
//! copy of it: copying is as quick as creating an empty database, and the migrations do not
//! run again for every test. A process also drops, on a thread of its own while its tests
//! run, the databases that earlier test processes (no longer running) left behind, so the
//! server does not fill up.
//!
//! Without the variable a PostgreSQL test skips with a printed reason, or fails when
//! `HERALD_REQUIRE_TOOLS` is set, as CI sets it.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection as _;
use tokio::sync::OnceCell;

/// The variable that names the test server.
pub const VAR: &str = "HERALD_TEST_POSTGRES";

/// The prefix of every database the tests create; the process id follows it.
const PREFIX: &str = "herald_test_";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The URL of a new database on the test server with herald's schema and no rows, or `None`
/// (after printing why) when there is no server to use.
pub async fn fresh_database() -> Option<String> {
    if !postgres_available() {
        return None;
    }
    let admin = std::env::var(VAR).unwrap_or_default();
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    let template = TEMPLATE.get_or_init(|| make_template(&admin)).await;
    let name = new_name();
    let mut conn = admin_connection(&admin).await;
    sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database on {VAR}: {e}"));
    Some(database_url(&admin, &name))
}

/// Creates and migrates this process's template database; returns its name. Starts the
/// dropping of what earlier test processes left.
async fn make_template(admin: &str) -> String {
    let leftovers = admin.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&leftovers).await {
                drop_leftovers(&mut conn).await;
            }
        });
    });
    let mut conn = admin_connection(admin).await;
    let name = new_name();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database on {VAR}: {e}"));
    let store = herald::store::connect(&database_url(admin, &name))
        .await
        .unwrap_or_else(|e| panic!("cannot migrate the template test database: {e}"));
    // A database is copied only while nobody is connected to it.
    store.close().await;
    name
}

/// Drops the test databases of processes that are no longer running (a database someone is
/// still connected to stays).
async fn drop_leftovers(conn: &mut sqlx::PgConnection) {
    // Which processes run is read from /proc; without it, nothing is dropped.
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(PREFIX)
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name[PREFIX.len()..].split('_').next().unwrap_or("");
        let running = pid.parse::<u32>().map_or(true, |pid| {
            pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        if !running {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut *conn)
                .await;
        }
    }
}

async fn admin_connection(admin: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {VAR}: {e}"))
}

/// `herald_test_{pid}_{n}_{random}`: unique on the server, and names its process.
fn new_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{PREFIX}{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    )
}

/// `admin` with its database changed to `name`.
fn database_url(admin: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin).expect("HERALD_TEST_POSTGRES is a URL");
    url.set_path(name);
    url.to_string()
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
