//! Engagement tracking and the per-issue report: what `/l/` and `/o/` do, the batched hit
//! writer, and the report an editor reads (JSON, CSV, and an SVG chart).
//!
//! # Privacy
//!
//! Both kinds are off unless `[tracking]` turns them on. In "aggregate" mode herald stores
//! counts per issue, link, hour and coarse agent class, and unique readers as a keyed hash
//! of the issue and subscriber ids ([`crate::domain::TokenKey::reader_hash`]), which the
//! database alone cannot join back to a subscriber. "individual" mode also records which
//! subscriber clicked or opened. No IP address is stored, and user agents only as a class
//! ([`agents`]).
//!
//! # The fast path
//!
//! [`Tracker::click`] and [`Tracker::open`] answer from memory: the issue's links are read
//! from the store once per process (and kept), tokens are checked with one HMAC, and the
//! hit is handed to [`HitQueue`], whose one writer task records what is waiting in one
//! transaction (the sign-up writer's pattern), never one transaction per hit.
//!
//! # Where a link leads
//!
//! Only to the original URL of a link of the issue the token was signed for, and only when
//! the token checks out; then the click is counted. A tampered, cut or unknown token leads to
//! the issue's own page in the archive (or the archive, when not even the issue can be told)
//! and is not counted: readers never hit a dead link, and `/l/` never redirects anywhere the
//! issue did not link to.

pub mod agents;
pub mod chart;
pub mod report;
mod writer;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

pub use agents::{classify, is_machine_open, AgentClass};
pub use report::{issue_report, IssueReport};
pub use writer::HitQueue;

use crate::config::{TrackingMode, TrackingSettings};
use crate::domain::{claimed_issue, IssueSlug, TokenKey};
use crate::links::Links;
use crate::mail::TEST_SUBSCRIBER_ID;
use crate::render::RenderedIssue;
use crate::store::{Hit, HitKind, NewTrackedLink, Store, StoreError};

/// The open image: a transparent 1x1 GIF.
pub const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Issues whose links are kept in memory before the cache starts over (unknown ids are
/// cached too, so a flood of made-up tokens cannot make every request read the store).
const CACHE_MAX: usize = 10_000;

/// Records the links of a rendered issue for `/l/` (nothing when clicks are not tracked).
pub async fn record_links(
    store: &Store,
    issue_id: i64,
    rendered: &RenderedIssue,
) -> Result<(), StoreError> {
    let links: Vec<NewTrackedLink> = rendered
        .tracked_links()
        .iter()
        .enumerate()
        .map(|(i, l)| NewTrackedLink {
            link: l.id.clone(),
            url: l.url.clone(),
            position: i as i64,
        })
        .collect();
    store.record_tracked_links(issue_id, &links).await
}

/// One issue's links as `/l/` needs them.
#[derive(Debug)]
struct IssueLinks {
    /// `None` when no such issue exists.
    slug: Option<IssueSlug>,
    urls: HashMap<String, String>,
}

/// What a click on `/l/` comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Where to send the reader.
    pub to: String,
    /// Whether the click was counted.
    pub counted: bool,
}

/// Answers `/l/` and `/o/`: checks tokens, finds links, hands hits to the writer.
pub struct Tracker {
    key: TokenKey,
    settings: TrackingSettings,
    links: Links,
    store: Store,
    cache: RwLock<HashMap<i64, Arc<IssueLinks>>>,
    hits: HitQueue,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Tracker {
    /// Starts the hit writer over `store` (so this must run inside a tokio runtime).
    pub fn start(key: TokenKey, settings: TrackingSettings, links: Links, store: Store) -> Self {
        let (hits, _writer) = HitQueue::start(store.clone());
        Self {
            key,
            settings,
            links,
            store,
            cache: RwLock::new(HashMap::new()),
            hits,
        }
    }

    /// The tracking settings in force.
    pub fn settings(&self) -> &TrackingSettings {
        &self.settings
    }

    /// Returns once every hit handed to the writer before this call is recorded.
    pub async fn flush(&self) {
        self.hits.flush().await;
    }

    async fn issue_links(&self, issue_id: i64) -> Result<Arc<IssueLinks>, StoreError> {
        if let Some(found) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&issue_id)
        {
            return Ok(found.clone());
        }
        let slug = self
            .store
            .issue_slug(issue_id)
            .await?
            .and_then(|s| IssueSlug::parse(&s).ok());
        let urls = match slug {
            Some(_) => self
                .store
                .tracked_links(issue_id)
                .await?
                .into_iter()
                .collect(),
            None => HashMap::new(),
        };
        let found = Arc::new(IssueLinks { slug, urls });
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(issue_id, found.clone());
        Ok(found)
    }

    /// Forgets what is cached of an issue (its links were recorded again).
    pub fn forget(&self, issue_id: i64) {
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&issue_id);
    }

    /// The issue's archive page, or the archive when there is no such issue.
    fn fallback(&self, found: Option<&IssueLinks>) -> String {
        match found.and_then(|f| f.slug.as_ref()) {
            Some(slug) => self.links.archive(slug),
            None => format!("{}archive", self.links.base()),
        }
    }

    /// `GET /l/{link}/{token}`: where to send the reader, counting the click when the token
    /// is good for that link and clicks are tracked.
    pub async fn click(
        &self,
        link: &str,
        token: &str,
        user_agent: Option<&str>,
        now: i64,
    ) -> Result<Redirect, StoreError> {
        let verified = self.key.verify_click(link, token);
        let issue_id = match &verified {
            Ok(c) => Some(c.issue_id),
            Err(_) => claimed_issue(token),
        };
        let Some(issue_id) = issue_id else {
            return Ok(Redirect {
                to: self.fallback(None),
                counted: false,
            });
        };
        let mut found = self.issue_links(issue_id).await?;
        if verified.is_ok() && !found.urls.contains_key(link) {
            // A good token for a link this process has not seen: the issue's links were
            // recorded again since they were cached (an edited issue). Read them once more.
            self.forget(issue_id);
            found = self.issue_links(issue_id).await?;
        }
        let (Ok(copy), Some(url)) = (verified, found.urls.get(link)) else {
            return Ok(Redirect {
                to: self.fallback(Some(&found)),
                counted: false,
            });
        };
        let counted = self.settings.clicks.is_on() && copy.subscriber_id != TEST_SUBSCRIBER_ID;
        if counted {
            let hit = Hit {
                issue_id,
                kind: HitKind::Click {
                    link: link.to_string(),
                },
                reader: self.key.reader_hash(issue_id, copy.subscriber_id),
                subscriber_id: (self.settings.clicks == TrackingMode::Individual)
                    .then_some(copy.subscriber_id),
                agent: classify(user_agent).as_str(),
                at: now,
            };
            self.hits.submit(hit).await;
        }
        Ok(Redirect {
            to: url.clone(),
            counted,
        })
    }

    /// `GET /o/{token}.gif`: counts the open (apart when a machine's) when the token checks
    /// out and opens are tracked. The image is the same either way. Returns whether it was
    /// counted.
    pub async fn open(
        &self,
        token: &str,
        ip: Option<IpAddr>,
        user_agent: Option<&str>,
        now: i64,
    ) -> bool {
        if !self.settings.opens.is_on() {
            return false;
        }
        let Ok(copy) = self.key.verify_open(token) else {
            return false;
        };
        if copy.subscriber_id == TEST_SUBSCRIBER_ID {
            return false;
        }
        let class = classify(user_agent);
        let machine = is_machine_open(ip, class, copy.sent_at, now);
        let hit = Hit {
            issue_id: copy.issue_id,
            kind: HitKind::Open { machine },
            reader: self.key.reader_hash(copy.issue_id, copy.subscriber_id),
            subscriber_id: (self.settings.opens == TrackingMode::Individual && !machine)
                .then_some(copy.subscriber_id),
            agent: class.as_str(),
            at: now,
        };
        self.hits.submit(hit).await;
        true
    }
}
