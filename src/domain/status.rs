//! [`SubscriberStatus`]: where a subscriber stands, as stored in `subscribers.status`.

use std::fmt;
use std::str::FromStr;

/// A string that names no subscriber status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown subscriber status {0:?} (expected pending, active, unsubscribed, bounced or complained)")]
pub struct StatusError(pub String);

/// The lifecycle of a subscriber. Only `Active` subscribers receive issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubscriberStatus {
    /// Signed up, not yet confirmed (double opt-in).
    Pending,
    /// Confirmed; receives issues.
    Active,
    /// Asked to stop.
    Unsubscribed,
    /// The address does not exist (a permanent 5.1.x reply).
    Bounced,
    /// Marked a message as spam.
    Complained,
}

impl SubscriberStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [SubscriberStatus; 5] = [
        Self::Pending,
        Self::Active,
        Self::Unsubscribed,
        Self::Bounced,
        Self::Complained,
    ];

    /// The stored and displayed form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Unsubscribed => "unsubscribed",
            Self::Bounced => "bounced",
            Self::Complained => "complained",
        }
    }

    /// True for the statuses that end a subscription on the subscriber's side (or their
    /// server's). Nothing but the subscriber's own new opt-in may leave them.
    pub fn is_opted_out(self) -> bool {
        matches!(self, Self::Unsubscribed | Self::Bounced | Self::Complained)
    }
}

impl FromStr for SubscriberStatus {
    type Err = StatusError;

    /// Case-insensitive, surrounding white space ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| StatusError(t.chars().take(40).collect()))
    }
}

impl fmt::Display for SubscriberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_status() {
        for status in SubscriberStatus::ALL {
            assert_eq!(status.as_str().parse::<SubscriberStatus>(), Ok(status));
        }
        assert_eq!(" Active ".parse(), Ok(SubscriberStatus::Active));
        assert!("deleted".parse::<SubscriberStatus>().is_err());
    }
}
