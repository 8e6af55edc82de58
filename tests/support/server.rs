//! The whole of `herald serve` (web server, dispatcher and background tasks) on
//! `127.0.0.1:0`, over a throwaway database (a SQLite file, or a PostgreSQL database with
//! [`TestServer::start_on`]), an issues folder holding the fixture issue, and either the
//! fault-injecting SMTP server or an outbox folder.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use herald::config::Settings;
use herald::startup::App;
use tokio::sync::oneshot;

use super::app::{settings, ISSUE};
use super::postgres::{Backend, RawDb};
use super::smtp_server::{Faults, SmtpServer};

/// A running `herald serve`.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub app: Arc<App>,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
    /// The relay, when started with one.
    pub smtp: Option<SmtpServer>,
    /// The inbound SMTP listener for returned mail, when `bounces.smtp_bind` was set.
    pub bounce_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), herald::server::ServerError>>>,
}

/// Where mail goes.
pub enum Relay {
    /// The fault-injecting SMTP server, with these faults.
    Smtp(Faults),
    /// `.eml` files in `{dir}/outbox`.
    Outbox,
}

impl TestServer {
    /// Binds port 0 first, so `newsletter.base_url` is the server's real address, then
    /// applies `tweak` to the settings and starts everything. The scheduler is off unless
    /// `tweak` sets `schedule.cron`.
    pub async fn start(relay: Relay, tweak: impl FnOnce(&mut Settings)) -> TestServer {
        Self::start_with(relay, tweak, |_| {}).await
    }

    /// As [`TestServer::start`], on a new database of `backend`.
    pub async fn start_on(
        backend: Backend,
        relay: Relay,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestServer {
        Self::start_with_on(backend, relay, tweak, |_| {}).await
    }

    /// As [`TestServer::start`], with `adjust` applied to the built [`App`] before it
    /// serves (to give it parts a test controls, such as the SNS certificate fetch).
    pub async fn start_with(
        relay: Relay,
        tweak: impl FnOnce(&mut Settings),
        adjust: impl FnOnce(&mut App),
    ) -> TestServer {
        Self::start_with_on(Backend::Sqlite, relay, tweak, adjust).await
    }

    /// As [`TestServer::start_with`], on a new database of `backend`.
    pub async fn start_with_on(
        backend: Backend,
        relay: Relay,
        tweak: impl FnOnce(&mut Settings),
        adjust: impl FnOnce(&mut App),
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let issues = dir.path().join("issues");
        std::fs::create_dir_all(&issues).unwrap();
        std::fs::copy(
            ISSUE,
            issues.join(std::path::Path::new(ISSUE).file_name().unwrap()),
        )
        .unwrap();
        // The fixture issue's images, where `newsletter.assets_dir` points.
        let images = dir.path().join("static/img/issues");
        std::fs::create_dir_all(&images).unwrap();
        for name in ["pipeline.png", "welcome-cover.png"] {
            let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/img/issues");
            std::fs::copy(from.join(name), images.join(name)).unwrap();
        }
        let (smtp, smtp_url) = match relay {
            Relay::Smtp(faults) => {
                let server = SmtpServer::start(faults);
                let url = server.url();
                (Some(server), url)
            }
            Relay::Outbox => {
                let outbox = dir.path().join("outbox");
                std::fs::create_dir_all(&outbox).unwrap();
                (None, format!("file://{}", outbox.display()))
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let mut s = settings(&backend.database_url(dir.path()).await, &smtp_url);
        s.newsletter.issues_dir = issues.clone();
        s.newsletter.assets_dir = dir.path().join("static");
        s.newsletter.base_url = format!("{base}/");
        s.web.bind = addr.to_string();
        s.web.admin_token = Some("test-admin-token-0123456789abcdef".to_string().into());
        // The scheduler reads the real clock here; a test that wants it turns it on.
        s.schedule.cron = "off".into();
        tweak(&mut s);
        // The fixture issue is dated in the past, so a scheduler on the real clock would send
        // it at its first tick: such a test must give the scheduler a folder of its own.
        assert!(
            s.schedule.cron == "off" || s.newsletter.issues_dir != issues,
            "a test that runs the scheduler on the real clock sets its own `issues_dir`"
        );
        // The test binds the returned-mail listener itself, to know its port.
        let bounce_listener = match s.bounces.smtp_bind.take() {
            Some(bind) => Some(tokio::net::TcpListener::bind(bind).await.unwrap()),
            None => None,
        };
        let bounce_addr = bounce_listener.as_ref().map(|l| l.local_addr().unwrap());
        let mut app = App::build(s).await.unwrap();
        adjust(&mut app);
        let app = Arc::new(app);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(herald::server::run_with(
            app.clone(),
            listener,
            bounce_listener,
            async {
                let _ = stopped.await;
            },
        ));
        TestServer {
            dir,
            app,
            addr,
            base,
            smtp,
            bounce_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `{base}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The admin token the server was started with.
    pub fn admin_token(&self) -> &'static str {
        "test-admin-token-0123456789abcdef"
    }

    /// A raw connection to the server's database.
    pub async fn raw(&self) -> RawDb {
        RawDb::connect(&self.app.settings.database.url).await
    }

    /// The issues folder.
    pub fn issues_dir(&self) -> PathBuf {
        self.dir.path().join("issues")
    }

    /// The folder `herald serve` publishes (`newsletter.assets_dir`); not created.
    pub fn assets_dir(&self) -> PathBuf {
        self.dir.path().join("static")
    }

    /// Stops the server gracefully and returns how it ended.
    pub async fn stop(mut self) -> Result<(), herald::server::ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().unwrap().await.unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
