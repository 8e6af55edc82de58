//! Building herald's long-lived parts from settings, once: the store, the templates, the
//! composer, the transport and the notice mails. The CLI commands (and the server) start from an [`App`], so
//! each of them is a few lines over the same library calls.

use std::path::Path;
use std::sync::Arc;

use crate::bounces::webhooks::sns::{HttpsFetch, SnsHttp};
use crate::bounces::Processor;
use crate::check::{self, Finding, Surroundings};
use crate::config::{ConfigError, NewsletterSettings, Settings};
use crate::dispatch::pacing::Pacer;
use crate::dispatch::{self, DispatchError, Dispatcher, Job};
use crate::domain::{EmailAddress, IssueSlug, TokenKey};
use crate::i18n::{self, Catalogs, I18nError};

use crate::issue::{self, Issue, IssueError};
use crate::links::Links;
use crate::mail::{Composer, MailError, SendOutcome, Transport};
use crate::nodes::{NodeId, Topic, Wake};
use crate::notices::Notices;
use crate::render::pool::{PoolError, RenderPool};
use crate::render::{self, RenderError, RenderedIssue, Templates, TrackingPlan};
use crate::store::{self, Enqueued, Store, StoreError};

/// Everything that can stop herald from starting or from preparing a send.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    #[error(transparent)]
    Locale(#[from] I18nError),
    #[error("no issue with slug {slug} in {dir}")]
    UnknownIssue { slug: String, dir: String },
    /// The issue is marked `draft: true` and the send was not forced.
    #[error("{slug} is a draft (draft: true in its front matter): remove that line to send it")]
    Draft { slug: String },
    /// `herald check` finds an error in the issue, and the send was not forced: the first
    /// error is the reason.
    #[error("{}", refusal_reason(.errors))]
    Refused {
        slug: String,
        /// Every error finding, in file order (never empty).
        errors: Vec<Finding>,
    },
    #[error(transparent)]
    Pool(#[from] PoolError),
}

/// Whether a send goes ahead for an issue marked `draft: true`. Test copies and previews
/// always do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Drafts {
    /// Refuse with [`StartupError::Draft`]: the default everywhere.
    #[default]
    Refuse,
    /// Send it anyway (`herald send --force`, the API's `force=true`).
    Send,
}

/// Whether a send goes ahead for an issue in which `herald check` finds an error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Findings {
    /// Refuse with [`StartupError::Refused`]: the default everywhere.
    #[default]
    Refuse,
    /// Send it anyway (`herald send --force`).
    Send,
}

/// What a send goes ahead despite. The default refuses drafts and issues with errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    pub drafts: Drafts,
    pub findings: Findings,
}

impl Overrides {
    /// Sends drafts and issues with errors alike (`herald send --force`).
    pub const ALL: Overrides = Overrides {
        drafts: Drafts::Send,
        findings: Findings::Send,
    };
}

impl From<Drafts> for Overrides {
    /// Refuses issues with errors, sending a draft when `drafts` says so.
    fn from(drafts: Drafts) -> Self {
        Self {
            drafts,
            findings: Findings::Refuse,
        }
    }
}

/// An issue put in the ledger, with the job that sends it.
pub struct Queued {
    pub enqueued: Enqueued,
    pub job: Job,
    /// The error findings the send went ahead despite (forced); empty otherwise.
    pub overridden: Vec<Finding>,
}

/// `FILE:LINE:COLUMN: rule: message`, and how many more errors there are.
pub(crate) fn refusal_reason(errors: &[Finding]) -> String {
    match errors {
        [] => "the issue has errors".into(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!(
            "{first} (and {} more {}: herald check lists them)",
            rest.len(),
            if rest.len() == 1 { "error" } else { "errors" }
        ),
    }
}

/// herald's parts, built from settings.
pub struct App {
    pub settings: Settings,
    /// This process's node id; the store records it in every delivery row it sends.
    pub node: NodeId,
    pub store: Store,
    pub templates: Arc<Templates>,
    /// Where issue files are read and rendered, off the async workers.
    pub renders: RenderPool,
    pub links: Links,
    pub composer: Arc<Composer>,
    pub transport: Arc<Transport>,
    /// The pace of each destination and relay, shared by every send of this process (the
    /// progress line and the dashboard show the throttled ones).
    pub pacer: Arc<Pacer>,
    /// Wakes the long-running dispatcher of `herald serve` (of every node, on PostgreSQL)
    /// when work was enqueued.
    pub dispatch_wake: Wake,
    /// The confirmation and welcome mails, rendered once.
    pub notices: Notices,
    /// Wakes the notice worker of `herald serve` (of every node, on PostgreSQL) when a
    /// notice was queued.
    pub notice_wake: Wake,
    /// Reads returned mail, finds its delivery and applies the bounce policy.
    pub bounces: Arc<Processor>,
    /// How SNS signing certificates are fetched (HTTPS; tests give their own).
    pub sns_http: Arc<dyn SnsHttp>,
}

/// An issue loaded and rendered once, ready to be sent.
pub struct PreparedIssue {
    pub issue: Issue,
    pub rendered: Arc<RenderedIssue>,
}

impl App {
    /// Opens the database (applying migrations), loads the templates, and sets up the
    /// composer and the transport. Any bad setting fails here, before anything is sent.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let links = Links::new(&settings.newsletter.base_url).map_err(|e| ConfigError::Key {
            file: "settings".into(),
            key: "newsletter.base_url".into(),
            message: e.to_string(),
        })?;
        let key = TokenKey::new(&settings.secret_key()?);
        let composer = Arc::new(Composer::new(&settings, key.clone())?);
        let transport = Arc::new(Transport::from_settings(&settings.smtp)?);
        let relay_rates = transport
            .relays()
            .into_iter()
            .map(|r| r.rate_per_second)
            .collect();
        let pacer = Arc::new(Pacer::new(&settings.sending, relay_rates));
        let templates = load_templates(&settings)?;
        let notices = Notices::render(&templates, &settings.newsletter, &links)?;
        let node = settings.node_id();
        let store = store::connect(&settings.database.url)
            .await?
            .for_node(node.as_str());
        let bounces = Arc::new(Processor::new(
            store.clone(),
            key,
            composer.return_path().cloned(),
            settings.bounces.soft_limit,
        ));
        let sns_http: Arc<dyn SnsHttp> = Arc::new(HttpsFetch::new().map_err(|e| {
            ConfigError::Secret(format!("cannot set up HTTPS for SNS certificates: {e}"))
        })?);
        let dispatch_wake = Wake::new(Topic::Dispatch, &store);
        let notice_wake = Wake::new(Topic::Notice, &store);
        Ok(Self {
            settings,
            node,
            store,
            templates: Arc::new(templates),
            renders: RenderPool::default(),
            links,
            composer,
            transport,
            pacer,
            dispatch_wake,
            notices,
            notice_wake,
            bounces,
            sns_http,
        })
    }

    /// Loads and renders the issue at `path`, on the render pool.
    pub async fn prepare(&self, path: &Path) -> Result<PreparedIssue, StartupError> {
        let renderer = self.renderer();
        let path = path.to_path_buf();
        self.renders
            .run(move || renderer.render(issue::load(&path, &renderer.limits())?))
            .await?
    }

    /// What rendering needs, to hand to a render thread.
    pub fn renderer(&self) -> Renderer {
        Renderer {
            templates: self.templates.clone(),
            newsletter: self.settings.newsletter.clone(),
            links: self.links.clone(),
            tracking: TrackingPlan {
                clicks: self.settings.tracking.clicks.is_on(),
                opens: self.settings.tracking.opens.is_on(),
            },
        }
    }

    /// Runs `job` on the render pool: reading issue files is work for it too, never for
    /// the async workers.
    pub async fn off_the_workers<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        self.renders.run(job).await
    }

    /// Sends one copy to `to`, outside the list: nothing is recorded in the ledger.
    pub async fn send_test(
        &self,
        prepared: &PreparedIssue,
        to: &EmailAddress,
    ) -> Result<SendOutcome, StartupError> {
        let mail = self.composer.compose_test(&prepared.rendered, to)?;
        Ok(self.transport.send(&mail).await)
    }

    /// Puts the issue in the ledger for every active subscriber (idempotent); refuses a
    /// draft and an issue in which `herald check` finds an error.
    pub async fn enqueue(
        &self,
        prepared: &PreparedIssue,
        source: &str,
    ) -> Result<(Enqueued, Job), StartupError> {
        let queued = self
            .enqueue_as(prepared, source, Overrides::default())
            .await?;
        Ok((queued.enqueued, queued.job))
    }

    /// As [`App::enqueue`], going ahead despite what `overrides` says.
    pub async fn enqueue_as(
        &self,
        prepared: &PreparedIssue,
        source: &str,
        overrides: Overrides,
    ) -> Result<Queued, StartupError> {
        let overridden = self.admit(prepared, overrides).await?;
        let enqueued = dispatch::enqueue(&self.store, &prepared.issue, source).await?;
        crate::tracking::record_links(&self.store, enqueued.issue_id, &prepared.rendered).await?;
        let job = Job {
            issue_id: enqueued.issue_id,
            mail: Arc::new(
                self.composer
                    .prepare(&prepared.rendered, Some(enqueued.issue_id)),
            ),
        };
        Ok(Queued {
            enqueued,
            job,
            overridden,
        })
    }

    /// Whether a send may take the issue: not a draft and no error finding, unless
    /// `overrides` says to go ahead. Returns the error findings overridden.
    pub async fn admit(
        &self,
        prepared: &PreparedIssue,
        overrides: Overrides,
    ) -> Result<Vec<Finding>, StartupError> {
        check_draft(&prepared.issue, overrides.drafts)?;
        let errors: Vec<Finding> = self
            .check(prepared)
            .await?
            .into_iter()
            .filter(Finding::is_error)
            .collect();
        if errors.is_empty() || overrides.findings == Findings::Send {
            return Ok(errors);
        }
        Err(StartupError::Refused {
            slug: prepared.issue.slug.as_str().to_string(),
            errors,
        })
    }

    /// `herald check`'s findings for a prepared issue, as a send sees it: among the other
    /// issue files of `newsletter.issues_dir`, and after what the ledger says was sent.
    pub async fn check(&self, prepared: &PreparedIssue) -> Result<Vec<Finding>, StartupError> {
        let enqueued = self.store.enqueued_issue_dates().await?;
        let settings = self.settings.clone();
        let links = self.links.clone();
        let issue = prepared.issue.clone();
        let rendered = prepared.rendered.clone();
        Ok(self
            .renders
            .run(move || {
                let mut around = Surroundings::gather(&settings.newsletter, &enqueued);
                around.add(&issue.path, issue.slug.clone());
                check::check_rendered(&issue, &rendered, &settings, &links, &around)
            })
            .await?)
    }

    /// `herald check`'s findings for the issue file at `path` (a file that does not load
    /// or render is one error finding), as [`App::check`] sees it.
    pub async fn check_path(&self, path: &Path) -> Result<Vec<Finding>, StartupError> {
        let enqueued = self.store.enqueued_issue_dates().await?;
        let settings = self.settings.clone();
        let links = self.links.clone();
        let templates = self.templates.clone();
        let path = path.to_path_buf();
        Ok(self
            .renders
            .run(move || {
                let mut around = Surroundings::gather(&settings.newsletter, &enqueued);
                if let Ok(issue) = issue::load(&path, &settings.newsletter.issue_limits()) {
                    around.add(&path, issue.slug);
                }
                check::check_file(&path, &settings, &templates, &links, &around)
            })
            .await?)
    }

    /// Finds the issue file for `slug` in `newsletter.issues_dir`, loads and renders it, on
    /// the render pool.
    pub async fn prepare_slug(&self, slug: &IssueSlug) -> Result<PreparedIssue, StartupError> {
        let renderer = self.renderer();
        let slug = slug.clone();
        self.renders
            .run(move || {
                let dir = &renderer.newsletter.issues_dir;
                match issue::find(dir, &slug, &renderer.limits())? {
                    Some(found) => renderer.render(found),
                    None => Err(StartupError::UnknownIssue {
                        slug: slug.as_str().to_string(),
                        dir: dir.display().to_string(),
                    }),
                }
            })
            .await?
    }

    /// Enqueues the issue `slug` from `newsletter.issues_dir` for every active subscriber
    /// and wakes the long-running dispatcher (the one `herald serve` runs). Idempotent: a
    /// second call adds only subscribers who became active since, and never sends a row
    /// twice.
    pub async fn send_now(&self, slug: &IssueSlug, source: &str) -> Result<Enqueued, StartupError> {
        self.send_now_as(slug, source, Overrides::default()).await
    }

    /// As [`App::send_now`], going ahead despite what `overrides` says.
    pub async fn send_now_as(
        &self,
        slug: &IssueSlug,
        source: &str,
        overrides: Overrides,
    ) -> Result<Enqueued, StartupError> {
        let prepared = self.prepare_slug(slug).await?;
        self.admit(&prepared, overrides).await?;
        let enqueued = dispatch::enqueue(&self.store, &prepared.issue, source).await?;
        self.dispatch_wake.notify_one();
        Ok(enqueued)
    }

    /// A dispatcher over this app's store, composer and transport.
    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(
            self.store.clone(),
            self.transport.clone(),
            self.composer.clone(),
            self.pacer.clone(),
            self.settings.sending.clone(),
        )
    }
}

/// Loads the message catalogs (`newsletter.locales_dir` over the built-in ones, in
/// `newsletter.locale`) and the templates over them, and logs, once, what falls back to
/// English and which messages the templates ask for that no catalog has.
pub fn load_templates(settings: &Settings) -> Result<Templates, RenderError> {
    let templates = load_templates_quietly(settings)?;
    let catalogs = templates.catalogs();
    catalogs.log_warnings();
    let (_, unknown) = i18n::check(catalogs, &templates.sources());
    for (template, id) in unknown {
        tracing::warn!("template {template} asks for message {id}, which no catalog has");
    }
    Ok(templates)
}

/// As [`load_templates`], logging nothing (for `herald locales check`, which prints).
pub fn load_templates_quietly(settings: &Settings) -> Result<Templates, RenderError> {
    let newsletter = &settings.newsletter;
    let catalogs = Catalogs::load(&newsletter.locales_dir, &newsletter.locale)?;
    Templates::load(&newsletter.templates_dir, catalogs)
}

fn check_draft(issue: &Issue, drafts: Drafts) -> Result<(), StartupError> {
    if issue.draft && drafts == Drafts::Refuse {
        return Err(StartupError::Draft {
            slug: issue.slug.as_str().to_string(),
        });
    }
    Ok(())
}

/// The parts rendering an issue needs, cheap to clone and to move to a render thread.
#[derive(Clone)]
pub struct Renderer {
    pub templates: Arc<Templates>,
    pub newsletter: NewsletterSettings,
    pub links: Links,
    /// Which links and images are rewritten for tracking (`[tracking]`).
    pub tracking: TrackingPlan,
}

impl Renderer {
    /// The bounds issue files are read under (`newsletter.max_issue_bytes`).
    pub fn limits(&self) -> issue::IssueLimits {
        self.newsletter.issue_limits()
    }

    /// Renders a loaded issue, with the tracking `[tracking]` asks for. A failure the
    /// issue's content causes names the file.
    pub fn render(&self, issue: Issue) -> Result<PreparedIssue, StartupError> {
        let mut rendered = render::issue(&issue, &self.templates, &self.newsletter, &self.links)
            .map_err(|e| match e {
                e if e.is_content() => StartupError::Issue(issue::IssueError {
                    path: issue.path.clone(),
                    line: None,
                    kind: issue::IssueErrorKind::Unrenderable(e.to_string()),
                }),
                e => e.into(),
            })?;
        render::track(&mut rendered, self.tracking, &self.links);
        Ok(PreparedIssue {
            issue,
            rendered: Arc::new(rendered),
        })
    }
}
