//! One sample recipient's copy of an issue: what `herald preview` prints, and what the
//! conformance check and the browser tests inspect. It takes the same path as a real send
//! (load, render once, personalise, compose), so what you preview is what subscribers get.
//!
//! [`live`] serves the same copy while the editor writes (`herald preview --serve`).

pub mod live;

use std::path::Path;

use crate::config::{ConfigError, Settings};
use crate::domain::{EmailAddress, Purpose, SubscriberName, TokenKey};
use crate::issue::{self, Issue, IssueError, IssueErrorKind};
use crate::links::Links;
use crate::mail::{Composer, MailError, MailRecipient, TEST_SUBSCRIBER_ID};
use crate::render::{self, Recipient, RenderError, RenderedIssue};

/// The address the sample copy is made out to.
pub const SAMPLE_ADDRESS: &str = "reader@example.org";
/// The name the sample copy is made out to.
pub const SAMPLE_NAME: &str = "Sample Reader";

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A rendered issue and one personalised copy of it.
#[derive(Debug)]
pub struct Preview {
    pub issue: Issue,
    pub rendered: RenderedIssue,
    /// The HTML part, personalised.
    pub html: String,
    /// The text part, personalised.
    pub text: String,
    /// The whole RFC 5322 message, as it would be sent.
    pub eml: Vec<u8>,
}

/// Loads, renders and composes the issue at `path` for the sample recipient.
pub fn sample(settings: &Settings, path: &Path) -> Result<Preview, PreviewError> {
    let issue = issue::load(path, &settings.newsletter.issue_limits())?;
    let templates = crate::startup::load_templates(settings)?;
    let links = Links::new(&settings.newsletter.base_url).map_err(|e| ConfigError::Key {
        file: "settings".into(),
        key: "newsletter.base_url".into(),
        message: e.to_string(),
    })?;
    let rendered =
        render::issue(&issue, &templates, &settings.newsletter, &links).map_err(|e| {
            if e.is_content() {
                PreviewError::Issue(IssueError {
                    path: path.to_path_buf(),
                    line: None,
                    kind: IssueErrorKind::Unrenderable(e.to_string()),
                })
            } else {
                e.into()
            }
        })?;
    let key = TokenKey::new(&settings.secret_key()?);
    let composer = Composer::new(settings, key.clone())?;
    let recipient = MailRecipient {
        subscriber_id: TEST_SUBSCRIBER_ID,
        email: EmailAddress::parse(SAMPLE_ADDRESS).expect("the sample address parses"),
        name: SubscriberName::parse(SAMPLE_NAME).expect("the sample name parses"),
    };
    let mail = composer.compose(&rendered, &recipient)?;
    // The same values compose() puts in the message: tokens are deterministic.
    let unsubscribe_url =
        links.unsubscribe(&key.sign(Purpose::Unsubscribe, recipient.subscriber_id, None));
    let values = Recipient {
        email: recipient.email.as_str(),
        name: recipient.name.as_ref().map(|n| n.as_str()),
        unsubscribe_url: &unsubscribe_url,
        tracking: None,
    };
    Ok(Preview {
        html: rendered.html.personalise(&values),
        text: rendered.text.personalise(&values),
        eml: mail.formatted(),
        issue,
        rendered,
    })
}
