//! herald: a self-hosted newsletter dispatcher in one binary.
//!
//! # Data flow of one send
//!
//! 1. [`issue::load`] reads a Markdown file with front matter into an [`issue::Issue`].
//! 2. [`render::issue`] renders it once: Markdown to a safe HTML fragment with absolute
//!    links, placed in `templates/newsletter.mjml` and rendered by mrml, plus a plain-text
//!    alternative. Both come pre-split at the per-recipient placeholders.
//! 3. [`dispatch::enqueue`] writes one `queued` ledger row per active subscriber, in one
//!    idempotent transaction.
//! 4. [`dispatch::Dispatcher::run`] claims due rows under a lease, has [`mail::Composer`]
//!    build each copy (a concatenation, then headers and DKIM), hands it to the
//!    [`mail::Transport`], and group-commits each outcome: sent, retry later, failed.
//!
//! Step 3 happens on `herald send`, on an editor's API request, or at a tick of the cron
//! schedule: [`schedule::Scheduler`] enqueues the newest due issue not sent yet.
//!
//! # Layout
//!
//! - [`config`]: typed settings from `config.toml` and `HERALD__SECTION__KEY` overrides.
//! - [`startup`]: the long-lived parts (store, templates, composer, transport) built once.
//! - [`domain`]: newtypes that parse (addresses, names, statuses, slugs, tokens).
//! - [`links`]: every public URL herald emits.
//! - [`i18n`]: the message catalogs (Fluent) per locale, plurals, dates, numbers; every
//!   reader-facing and dashboard word comes from here.
//! - [`issue`]: issue files.
//! - [`check`]: the lint rules over an issue and its rendering (`herald check`, and the
//!   check every send makes).
//! - [`render`]: Markdown, sanitising, MJML via mrml, plain text. Only it knows mrml.
//! - [`mail`]: messages, DKIM and transports. Only it knows lettre.
//! - [`store`]: every SQL statement. Only it knows sqlx.
//! - [`subscribers`]: CSV import and export over the store.
//! - [`dispatch`]: the ledger-driven send loop and its retry policy.
//! - [`rate`]: a rate limit many tasks wait on at once, one wake-up per slot.
//! - [`signup`]: the public sign-up: parsing, the per-IP limit, the group-commit writer.
//! - [`nodes`]: this process as one node of several on one database: its id, its role
//!   (`herald serve --role`), its heartbeat, and the wake-ups between nodes.
//! - [`notices`]: the worker sending confirmation and welcome mails from their durable queue.
//! - [`preview`]: one sample recipient's copy, as `herald preview` shows it.
//! - [`editor`]: what the editor API and the dashboard do (status, send now under an
//!   idempotency key, retry failed, test copies, subscriber list), shared by both.
//! - [`schedule`]: the cron schedule, which issue a tick sends, and the scheduler task.
//! - [`server`]: `herald serve`: the web server and the background tasks, stopped together.
//! - [`web`]: the HTTP server (sign-up, confirmation, unsubscribe links, archive, feed).
//!   Only it knows axum.
//! - [`words`]: counts with their plural and readable times for the CLI's own lines.
//! - [`bounces`]: returned mail (bounces, delays, complaints, auto-replies) read into
//!   reports, and the rules that say hard or soft.
//! - [`tracking`]: click and open tracking (off by default), the batched hit writer, and
//!   the per-issue report with its chart.
//! - [`cli`]: the `herald` commands, thin over the above.

#![forbid(unsafe_code)]
// The queries both database backends share are compiled once per backend, from one file
// under `store/shared/` (see `store/mod.rs`).
#![allow(clippy::duplicate_mod)]

pub mod bounces;
pub mod check;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod editor;
pub mod i18n;
pub mod issue;
pub mod links;
pub mod mail;
pub mod nodes;
pub mod notices;
pub mod preview;
pub mod rate;
pub mod render;
pub mod schedule;
pub mod server;
pub mod signup;
pub mod startup;
pub mod store;
pub mod subscribers;
pub mod tracking;
pub mod web;
pub mod words;
