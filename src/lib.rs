//! herald: a self-hosted newsletter dispatcher in one binary.
//!
//! # Data flow
//!
//! 1. [`issue::load`] reads a Markdown file with front matter into an [`issue::Issue`].
//! 2. [`render::issue`] renders it once: Markdown to a safe HTML fragment with absolute
//!    links, placed in `templates/newsletter.mjml` and rendered by mrml, plus a plain-text
//!    alternative. Both come pre-split at the per-recipient placeholders.
//! 3. [`mail::Composer`] personalises one copy (a concatenation) and builds the RFC 5322
//!    message: headers, `multipart/alternative`, List-Unsubscribe, optional DKIM.
//!
//! # Layout
//!
//! - [`config`]: typed settings from `config.toml` and `HERALD__SECTION__KEY` overrides.
//! - [`domain`]: newtypes that parse (addresses, names, slugs, tokens).
//! - [`links`]: every public URL herald emits.
//! - [`issue`]: issue files.
//! - [`render`]: Markdown, sanitising, MJML via mrml, plain text. Only it knows mrml.
//! - [`mail`]: building messages and DKIM. Only it knows lettre.
//! - [`store`]: all SQL: the SQLite schema, migrations and one function per query.
//! - [`subscribers`]: CSV import and export of the subscriber list.
//! - `cli` (in the binary's library half): the `herald` commands, thin over the above.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod domain;
pub mod issue;
pub mod links;
pub mod mail;
pub mod preview;
pub mod render;
pub mod store;
pub mod subscribers;
