//! The retry policy: what a transport outcome means for one ledger row. Pure functions of
//! the outcome, the row's attempts and age, the settings and the clock, so every rule is
//! tested without a relay.
//!
//! A permanent refusal during the session is read by the same rules as a bounce that comes
//! back later ([`bounces::classify_reply`]): only a reply that says the address itself will
//! never accept mail marks the subscriber bounced; a spam or policy block does not.

use rand::Rng;

use crate::bounces;
use crate::config::SendingSettings;
use crate::mail::SendOutcome;
use crate::store::OutcomeKind;

/// How a finished attempt is written to the ledger, or that the whole send must pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Record(OutcomeKind),
    /// The destination asks herald to slow down: slow its group and hand the row back
    /// without counting an attempt (see [`pacing`](super::pacing)).
    Throttle {
        reply: String,
    },
    /// The relay is down: hand the row back untouched and pause.
    Pause {
        reason: String,
    },
}

/// Decides the ledger state after one attempt. `attempts` is the count before this one,
/// `queued_at` when the row was enqueued, `now` the current time (Unix seconds).
pub fn decide(
    outcome: SendOutcome,
    message_id: &str,
    attempts: u32,
    queued_at: i64,
    now: i64,
    settings: &SendingSettings,
) -> Decision {
    let attempts_after = attempts.saturating_add(1);
    match outcome {
        SendOutcome::Accepted { reply } => Decision::Record(OutcomeKind::Sent {
            message_id: message_id.to_string(),
            reply,
            at: now,
        }),
        SendOutcome::Permanent { reply } => {
            let bounce = bounces::classify_reply(&reply).hard;
            Decision::Record(OutcomeKind::Failed {
                reply,
                permanent: true,
                bounce,
            })
        }
        SendOutcome::Transient {
            reply,
            throttled: true,
        } => {
            // Throttling costs no attempt, but the retry lifetime still ends it.
            if now.saturating_sub(queued_at) > lifetime_seconds(settings) {
                Decision::Record(OutcomeKind::Failed {
                    reply,
                    permanent: false,
                    bounce: false,
                })
            } else {
                Decision::Throttle { reply }
            }
        }
        SendOutcome::Transient { reply, .. } => {
            let lifetime = lifetime_seconds(settings);
            let next = now.saturating_add(backoff_seconds(attempts_after, settings));
            if attempts_after >= settings.max_attempts || next.saturating_sub(queued_at) > lifetime
            {
                Decision::Record(OutcomeKind::Failed {
                    reply,
                    permanent: false,
                    bounce: false,
                })
            } else {
                Decision::Record(OutcomeKind::Retry {
                    reply,
                    next_attempt_at: next,
                })
            }
        }
        SendOutcome::RelayDown { reason } => Decision::Pause { reason },
    }
}

/// `sending.give_up_after_hours` in seconds.
fn lifetime_seconds(settings: &SendingSettings) -> i64 {
    i64::try_from(settings.give_up_after_hours.saturating_mul(3600)).unwrap_or(i64::MAX)
}

/// `min(base · 2^(attempts − 1), max)` plus up to 10 % jitter, so retries of one batch do
/// not all return in the same second.
pub fn backoff_seconds(attempts: u32, settings: &SendingSettings) -> i64 {
    let base = settings.retry_base_seconds.max(1);
    let exponent = attempts.saturating_sub(1).min(32);
    let delay = base
        .saturating_mul(1u64 << exponent)
        .min(settings.retry_max_seconds.max(base));
    let jitter = if delay >= 10 {
        rand::thread_rng().gen_range(0..=delay / 10)
    } else {
        0
    };
    i64::try_from(delay + jitter).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SendingSettings {
        SendingSettings {
            max_attempts: 4,
            retry_base_seconds: 60,
            retry_max_seconds: 600,
            give_up_after_hours: 1,
            ..SendingSettings::default()
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let s = settings();
        for (attempts, base) in [(1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (30, 600)] {
            let d = backoff_seconds(attempts, &s);
            assert!(
                (base..=base + base / 10).contains(&d),
                "attempt {attempts}: {d}"
            );
        }
    }

    #[test]
    fn accepted_is_sent_with_its_message_id() {
        let d = decide(
            SendOutcome::Accepted {
                reply: "250 ok".into(),
            },
            "<id@x>",
            0,
            0,
            100,
            &settings(),
        );
        assert_eq!(
            d,
            Decision::Record(OutcomeKind::Sent {
                message_id: "<id@x>".into(),
                reply: "250 ok".into(),
                at: 100
            })
        );
    }

    #[test]
    fn transient_retries_until_attempts_run_out() {
        let s = settings();
        let t = || SendOutcome::Transient {
            reply: "451 later".into(),
            throttled: false,
        };
        match decide(t(), "", 0, 0, 1000, &s) {
            Decision::Record(OutcomeKind::Retry {
                next_attempt_at, ..
            }) => {
                assert!((1060..=1066).contains(&next_attempt_at))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(t(), "", 3, 0, 1000, &s),
            Decision::Record(OutcomeKind::Failed {
                permanent: false,
                bounce: false,
                ..
            })
        ));
    }

    #[test]
    fn transient_gives_up_when_the_lifetime_is_over() {
        // Queued 59 minutes ago; the next try would land past the one-hour lifetime.
        let d = decide(
            SendOutcome::Transient {
                reply: "421 busy".into(),
                throttled: false,
            },
            "",
            1,
            0,
            59 * 60,
            &settings(),
        );
        assert!(matches!(
            d,
            Decision::Record(OutcomeKind::Failed {
                permanent: false,
                ..
            })
        ));
    }

    #[test]
    fn a_throttle_costs_no_attempt_until_the_lifetime_is_over() {
        let throttled = || SendOutcome::Transient {
            reply: "421 4.7.0 slow down".into(),
            throttled: true,
        };
        // Attempts do not matter: even the last one is handed back.
        assert_eq!(
            decide(throttled(), "", 3, 0, 1000, &settings()),
            Decision::Throttle {
                reply: "421 4.7.0 slow down".into()
            }
        );
        assert!(matches!(
            decide(throttled(), "", 0, 0, 3601, &settings()),
            Decision::Record(OutcomeKind::Failed {
                permanent: false,
                ..
            })
        ));
    }

    fn permanent(reply: &str) -> Decision {
        decide(
            SendOutcome::Permanent {
                reply: reply.into(),
            },
            "",
            0,
            0,
            0,
            &settings(),
        )
    }

    #[test]
    fn permanent_fails_at_once_and_bounces_only_a_bad_address() {
        for (reply, bounce) in [
            ("permanent error (550): 5.1.1 <a@b.org>: user unknown", true),
            ("permanent error (550): 5.1.10 Recipient address has null MX", true),
            ("permanent error (550): 5.2.2 mailbox full", false),
            ("permanent error (554): 5.7.1 rejected as spam", false),
            ("permanent error (550): 5.7.26 unauthenticated mail, DMARC policy", false),
            // The same 5.1.1 code, but the text says a rate limit: not the address's fault.
            ("permanent error (550): 5.1.1 <a@b.org> - 192.0.2.1 has sent to too many recipients this hour", false),
        ] {
            assert_eq!(
                permanent(reply),
                Decision::Record(OutcomeKind::Failed {
                    reply: reply.into(),
                    permanent: true,
                    bounce
                }),
                "{reply}"
            );
        }
    }

    #[test]
    fn relay_down_pauses_without_recording() {
        let d = decide(
            SendOutcome::RelayDown {
                reason: "refused".into(),
            },
            "",
            2,
            0,
            0,
            &settings(),
        );
        assert_eq!(
            d,
            Decision::Pause {
                reason: "refused".into()
            }
        );
    }
}
