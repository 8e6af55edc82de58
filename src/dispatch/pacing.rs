//! Per-destination pacing: how fast each mailbox provider, and each relay, gets mail.
//!
//! Recipients are grouped by the provider that receives their mail, from the domain of
//! their address: the big providers' domain families are built in ([`BUILT_IN`]), the
//! `[[sending.providers]]` entries add more (or more domains to a built-in one), and any
//! other domain is a group of its own. Each group may have a rate (its entry's
//! `rate_per_second`, else `sending.provider_rate_per_second`), and each relay may have
//! one (`rate_per_second` in `[smtp]` or its `[[smtp.relays]]` entry).
//!
//! A group that throttles herald (a reply the transport marks `throttled`: 421, a 4.7.x
//! deferral, "rate limited") is slowed down on its own, the way TCP answers loss: its rate
//! is halved at once (at most once per second, however many replies of one burst say so)
//! and then grows back by a fixed step each second ([`RECOVERY_SECONDS`] from nothing to
//! where it was) until it is back where the throttling began, when the group counts as
//! recovered. Other groups keep their pace meanwhile.
//!
//! [`Pacer::reserve`] gives each row its turn: the later of its group's and its relay's
//! next free slot. A row whose turn is within [`HORIZON`] waits for it in memory; a row
//! whose turn is further away goes back to the ledger, due at that turn, without counting
//! an attempt, so a slow group never fills the dispatcher's memory or holds up the others.
//! The turns given to rows sent back are spaced at the group's rate as well, so they come
//! back a few at a time rather than all at once.
//!
//! The state is in memory: a restart forgets a throttle and finds it again on the first
//! throttling reply.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::SendingSettings;

/// The longest a claimed row waits in memory for its turn; further turns are deferred.
pub const HORIZON: Duration = Duration::from_secs(2);
/// The longest a row is deferred at once: it is then claimed and paced again.
pub const MAX_DEFER: Duration = Duration::from_secs(120);
/// Seconds a throttled group takes to grow from nothing back to its former rate (so half
/// of that after a halving).
pub const RECOVERY_SECONDS: f64 = 20.0;
/// A throttled group's rate never drops below this (messages per second).
pub const MIN_RATE: f64 = 0.2;
/// The rate assumed for a group herald did not measure when it first throttles.
const UNMEASURED_RATE: f64 = 20.0;
/// Replies within this long of a decrease are the same burst: one halving.
const DECREASE_GAP: Duration = Duration::from_secs(1);

/// The big providers' domain families. `name.*` matches the name under any top-level
/// domain (`hotmail.co.uk`, `yahoo.com.br`).
pub const BUILT_IN: &[(&str, &[&str])] = &[
    ("google", &["gmail.com", "googlemail.com"]),
    (
        "microsoft",
        &[
            "outlook.*",
            "hotmail.*",
            "live.*",
            "msn.com",
            "windowslive.com",
        ],
    ),
    (
        "yahoo",
        &["yahoo.*", "aol.com", "ymail.com", "rocketmail.com"],
    ),
    ("apple", &["icloud.com", "me.com", "mac.com"]),
    ("tencent", &["qq.com", "foxmail.com"]),
    ("netease", &["163.com", "126.com", "yeah.net"]),
];

/// A group as the progress line and the dashboard show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThrottledGroup {
    /// The provider (`google`) or the domain.
    pub name: String,
    /// Messages per second it gets now.
    pub rate_per_second: f64,
    /// Throttling replies since it was last at full pace.
    pub throttles: u32,
}

/// When a row may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Now or soon: wait until then, in memory.
    At(Instant),
    /// Too far off: back to the ledger, due in this long.
    Defer(Duration),
}

/// Which group each domain belongs to.
#[derive(Debug, Clone, Default)]
struct Providers {
    /// Lower-case domain → provider index.
    exact: HashMap<String, usize>,
    /// `name.` prefixes of `name.*` patterns → provider index.
    families: Vec<(String, usize)>,
    /// Provider names and rates.
    providers: Vec<(String, Option<f64>)>,
}

impl Providers {
    fn new(settings: &SendingSettings) -> Self {
        let mut table = Providers::default();
        for (name, domains) in BUILT_IN {
            let i = table.provider(name);
            for domain in *domains {
                table.add(domain, i);
            }
        }
        for entry in &settings.providers {
            let i = table.provider(entry.name.trim());
            if entry.rate_per_second.is_some() {
                table.providers[i].1 = entry.rate_per_second;
            }
            for domain in &entry.domains {
                table.add(domain.trim(), i);
            }
        }
        table
    }

    fn provider(&mut self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        match self.providers.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                self.providers.push((name, None));
                self.providers.len() - 1
            }
        }
    }

    fn add(&mut self, domain: &str, provider: usize) {
        let domain = domain.to_ascii_lowercase();
        match domain.strip_suffix('*') {
            Some(prefix) => self.families.push((prefix.to_string(), provider)),
            None => {
                self.exact.insert(domain, provider);
            }
        }
    }

    /// The provider of `domain`, if it belongs to one.
    fn of(&self, domain: &str) -> Option<usize> {
        if let Some(&i) = self.exact.get(domain) {
            return Some(i);
        }
        self.families.iter().find_map(|(prefix, i)| {
            let rest = domain.strip_prefix(prefix.as_str())?;
            is_public_suffix_like(rest).then_some(*i)
        })
    }
}

/// `com`, `co.uk`, `com.br`: one or two short labels of letters.
fn is_public_suffix_like(rest: &str) -> bool {
    let labels: Vec<&str> = rest.split('.').collect();
    (1..=2).contains(&labels.len())
        && labels
            .iter()
            .all(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()))
}

/// A schedule of turns at one rate (a generic cell rate algorithm): `next` is the earliest
/// free turn for rows kept in memory, `deferred` for rows sent back to the ledger.
#[derive(Debug, Default, Clone, Copy)]
struct Lane {
    next: Option<Instant>,
    deferred: Option<Instant>,
}

/// A throttled group's current rate and how it recovers.
#[derive(Debug, Clone, Copy)]
struct Aimd {
    rate: f64,
    /// The rate when the throttling began: reaching it again ends the throttle.
    target: f64,
    /// Added to `rate` per second.
    step: f64,
    updated: Instant,
    decreased: Instant,
    throttles: u32,
}

/// Sends to a group over the last second or two, to know its rate when it first throttles.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
    previous: u32,
}

#[derive(Debug, Clone)]
struct Group {
    ceiling: Option<f64>,
    aimd: Option<Aimd>,
    lane: Lane,
    window: Window,
    /// Bumped at every slow-down: turns given before it are void (see [`Pacer::epoch`]).
    epoch: u64,
}

impl Group {
    fn new(ceiling: Option<f64>, now: Instant) -> Self {
        Self {
            ceiling,
            aimd: None,
            lane: Lane::default(),
            window: Window {
                start: now,
                count: 0,
                previous: 0,
            },
            epoch: 0,
        }
    }

    /// The rate the group may get now, after any recovery since the last look; `None` is
    /// no limit.
    fn rate(&mut self, now: Instant) -> Option<f64> {
        if let Some(aimd) = self.aimd.as_mut() {
            let elapsed = now.saturating_duration_since(aimd.updated).as_secs_f64();
            aimd.rate = (aimd.rate + aimd.step * elapsed).min(aimd.target);
            aimd.updated = now;
            if aimd.rate >= aimd.target {
                self.aimd = None;
            }
        }
        match (self.ceiling, self.aimd) {
            (Some(c), Some(a)) => Some(c.min(a.rate)),
            (None, Some(a)) => Some(a.rate),
            (c, None) => c,
        }
    }

    fn count_send(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window.start);
        if elapsed >= Duration::from_secs(2) {
            self.window = Window {
                start: now,
                count: 0,
                previous: 0,
            };
        } else if elapsed >= Duration::from_secs(1) {
            self.window = Window {
                start: self.window.start + Duration::from_secs(1),
                count: 0,
                previous: self.window.count,
            };
        }
        self.window.count += 1;
    }

    /// Sends per second lately, or `None` when too few to tell.
    fn measured(&self, now: Instant) -> Option<f64> {
        let in_window = now
            .saturating_duration_since(self.window.start)
            .as_secs_f64();
        let rate = if self.window.previous > 0 {
            f64::from(self.window.previous)
        } else if in_window > 0.1 {
            f64::from(self.window.count) / in_window
        } else {
            0.0
        };
        (rate >= 1.0).then_some(rate)
    }

    /// Whether the group holds nothing worth keeping: no limit in force, no turn ahead.
    fn is_idle(&self, now: Instant) -> bool {
        self.aimd.is_none()
            && self.lane.next.is_none_or(|t| t < now)
            && self.lane.deferred.is_none_or(|t| t < now)
            && now.saturating_duration_since(self.window.start) > Duration::from_secs(2)
    }
}

struct State {
    groups: HashMap<String, Group>,
    relays: Vec<Lane>,
    reservations: u64,
}

/// The pace of every destination group and relay, shared by every send of the process.
pub struct Pacer {
    providers: Providers,
    default_ceiling: Option<f64>,
    relay_rates: Vec<Option<f64>>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("relay_rates", &self.relay_rates)
            .finish_non_exhaustive()
    }
}

impl Pacer {
    /// A pacer for `settings`' providers and the relays' rates (indexed as the transport
    /// numbers its relays).
    pub fn new(settings: &SendingSettings, relay_rates: Vec<Option<f64>>) -> Self {
        let positive = |r: f64| (r > 0.0).then_some(r);
        Self {
            providers: Providers::new(settings),
            default_ceiling: positive(settings.provider_rate_per_second),
            state: Mutex::new(State {
                groups: HashMap::new(),
                relays: vec![Lane::default(); relay_rates.len()],
                reservations: 0,
            }),
            relay_rates: relay_rates
                .into_iter()
                .map(|r| r.and_then(positive))
                .collect(),
        }
    }

    /// The group of a recipient domain: its provider's name, or the domain itself.
    pub fn group_of(&self, domain: &str) -> String {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        match self.providers.of(&domain) {
            Some(i) => self.providers.providers[i].0.clone(),
            None => domain,
        }
    }

    /// The configured ceiling of a group (its provider's rate, else the default).
    fn ceiling(&self, group: &str) -> Option<f64> {
        let own = self
            .providers
            .providers
            .iter()
            .find(|(name, _)| name == group)
            .and_then(|(_, rate)| *rate);
        match own {
            Some(rate) if rate > 0.0 => Some(rate),
            Some(_) => None,
            None => self.default_ceiling,
        }
    }

    fn is_provider(&self, group: &str) -> bool {
        self.providers
            .providers
            .iter()
            .any(|(name, _)| name == group)
    }

    /// Takes the next turn for a row of `group` sent through relay `relay`.
    pub fn reserve(&self, group: &str, relay: usize, now: Instant) -> Turn {
        let relay_rate = self.relay_rates.get(relay).copied().flatten();
        let mut state = self.state.lock().expect("pacer lock");
        state.reservations += 1;
        if state.reservations % 4096 == 0 {
            state.groups.retain(|_, g| !g.is_idle(now));
        }
        let group_rate = match state.groups.get_mut(group) {
            Some(g) => g.rate(now),
            None => self.ceiling(group),
        };
        let State { groups, relays, .. } = &mut *state;
        // Groups with a rate have turns to keep; the big providers are measured anyway, to
        // know their pace should they throttle. Other domains leave no trace.
        let tracked = group_rate.is_some() || self.is_provider(group) || groups.contains_key(group);
        let mut g = tracked.then(|| {
            let ceiling = self.ceiling(group);
            groups
                .entry(group.to_string())
                .or_insert_with(|| Group::new(ceiling, now))
        });
        let turn = {
            let mut lanes: Vec<(&mut Lane, f64)> = Vec::with_capacity(2);
            if let (Some(rate), Some(g)) = (group_rate, g.as_mut()) {
                lanes.push((&mut g.lane, rate));
            }
            if let (Some(rate), Some(lane)) = (relay_rate, relays.get_mut(relay)) {
                lanes.push((lane, rate));
            }
            if lanes.is_empty() {
                Turn::At(now)
            } else {
                take_turn(lanes, now)
            }
        };
        if let (Turn::At(_), Some(g)) = (turn, g) {
            g.count_send(now);
        }
        turn
    }

    /// A throttling reply from `group`: slows it down (once per burst) and says how long
    /// the row that got the reply waits before it is tried again.
    pub fn throttled(&self, group: &str, now: Instant) -> Duration {
        let ceiling = self.ceiling(group);
        let mut state = self.state.lock().expect("pacer lock");
        let g = state
            .groups
            .entry(group.to_string())
            .or_insert_with(|| Group::new(ceiling, now));
        let current = g.rate(now);
        let recent = g
            .aimd
            .is_some_and(|a| now.saturating_duration_since(a.decreased) < DECREASE_GAP);
        if !recent {
            let base = current
                .or_else(|| g.measured(now))
                .unwrap_or(UNMEASURED_RATE);
            let rate = (base / 2.0).max(MIN_RATE);
            let (target, throttles) = match g.aimd {
                Some(a) => (a.target, a.throttles + 1),
                None => (base.max(MIN_RATE * 2.0), 1),
            };
            g.aimd = Some(Aimd {
                rate,
                target,
                step: target / RECOVERY_SECONDS,
                updated: now,
                decreased: now,
                throttles,
            });
            // Turns handed out at the old pace are void: their rows take new ones.
            g.epoch += 1;
            g.lane.next = None;
            tracing::info!(
                group = group,
                rate = format!("{rate:.1}"),
                "destination throttled; slowing it down"
            );
        } else if let Some(a) = g.aimd.as_mut() {
            a.throttles += 1;
        }
        let rate = g.rate(now).unwrap_or(MIN_RATE);
        let spacing = Duration::from_secs_f64(1.0 / rate);
        // Later turns of the group move back by one spacing, and this row goes after the
        // rows already sent back.
        g.lane.next = Some(g.lane.next.map_or(now, |t| t.max(now)) + spacing);
        let at = g
            .lane
            .deferred
            .map_or(now, |t| t.max(now))
            .max(now + spacing);
        g.lane.deferred = Some(at + spacing);
        (at - now).clamp(Duration::from_secs(1), MAX_DEFER)
    }

    /// How many times `group` has been slowed down. A row that waited for a turn compares
    /// it with the value from before its reservation: if the group was slowed down since,
    /// its turn (given at the old pace) is void and it reserves again.
    pub fn epoch(&self, group: &str) -> u64 {
        let state = self.state.lock().expect("pacer lock");
        state.groups.get(group).map_or(0, |g| g.epoch)
    }

    /// The groups slowed down now, slowest first.
    pub fn throttled_groups(&self) -> Vec<ThrottledGroup> {
        let now = Instant::now();
        let mut state = self.state.lock().expect("pacer lock");
        let mut out: Vec<ThrottledGroup> = state
            .groups
            .iter_mut()
            .filter_map(|(name, g)| {
                let rate = g.rate(now)?;
                let aimd = g.aimd?;
                Some(ThrottledGroup {
                    name: name.clone(),
                    rate_per_second: rate,
                    throttles: aimd.throttles,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            a.rate_per_second
                .total_cmp(&b.rate_per_second)
                .then_with(|| a.name.cmp(&b.name))
        });
        out
    }
}

/// The later of the lanes' next turns. Within [`HORIZON`], every lane's next turn moves one
/// spacing past it; beyond, the row is deferred to the later of the lanes' deferred turns.
fn take_turn(mut lanes: Vec<(&mut Lane, f64)>, now: Instant) -> Turn {
    let at = lanes
        .iter()
        .filter_map(|(lane, _)| lane.next)
        .fold(now, Instant::max);
    if at <= now + HORIZON {
        for (lane, rate) in lanes.iter_mut() {
            lane.next = Some(at + Duration::from_secs_f64(1.0 / *rate));
        }
        return Turn::At(at);
    }
    let back = lanes
        .iter()
        .filter_map(|(lane, _)| lane.deferred)
        .fold(at, Instant::max);
    for (lane, rate) in lanes.iter_mut() {
        lane.deferred = Some(back + Duration::from_secs_f64(1.0 / *rate));
    }
    Turn::Defer((back - now).clamp(Duration::from_secs(1), MAX_DEFER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderSettings;

    fn pacer(settings: SendingSettings, relays: Vec<Option<f64>>) -> Pacer {
        Pacer::new(&settings, relays)
    }

    #[test]
    fn domains_fall_into_their_provider_families() {
        let mut s = SendingSettings::default();
        s.providers.push(ProviderSettings {
            name: "google".into(),
            domains: vec!["corp.example".into()],
            rate_per_second: None,
        });
        s.providers.push(ProviderSettings {
            name: "fastmail".into(),
            domains: vec!["fastmail.com".into(), "fastmail.*".into()],
            rate_per_second: Some(5.0),
        });
        let p = pacer(s, vec![None]);
        for (domain, group) in [
            ("gmail.com", "google"),
            ("GoogleMail.com", "google"),
            ("corp.example", "google"),
            ("hotmail.co.uk", "microsoft"),
            ("outlook.com", "microsoft"),
            ("live.nl", "microsoft"),
            ("msn.com", "microsoft"),
            ("yahoo.com.br", "yahoo"),
            ("aol.com", "yahoo"),
            ("me.com", "apple"),
            ("qq.com", "tencent"),
            ("163.com", "netease"),
            ("fastmail.fm", "fastmail"),
            ("example.org", "example.org"),
            ("live.example.com", "live.example.com"),
            ("mail.gmail.com", "mail.gmail.com"),
        ] {
            assert_eq!(p.group_of(domain), group, "{domain}");
        }
        assert_eq!(p.ceiling("fastmail"), Some(5.0));
        assert_eq!(p.ceiling("google"), None);
    }

    #[test]
    fn an_unlimited_group_goes_at_once_and_a_paced_one_is_spaced() {
        let mut s = SendingSettings {
            provider_rate_per_second: 10.0,
            ..SendingSettings::default()
        };
        s.providers.push(ProviderSettings {
            name: "google".into(),
            domains: vec![],
            rate_per_second: Some(0.0),
        });
        let p = pacer(s, vec![None]);
        let now = Instant::now();
        assert_eq!(p.reserve("google", 0, now), Turn::At(now));
        assert_eq!(p.reserve("google", 0, now), Turn::At(now));
        let turns: Vec<Turn> = (0..5).map(|_| p.reserve("example.org", 0, now)).collect();
        let expected: Vec<Turn> = (0..5)
            .map(|i| Turn::At(now + Duration::from_millis(100) * i))
            .collect();
        assert_eq!(turns, expected);
    }

    #[test]
    fn turns_past_the_horizon_are_deferred_and_spaced_at_the_rate() {
        let p = pacer(SendingSettings::default(), vec![Some(2.0)]);
        let now = Instant::now();
        // 2 per second for 2 seconds: five turns fit in memory (0, 0.5, …, 2.0 s).
        let kept = (0..5)
            .filter(|_| matches!(p.reserve("example.org", 0, now), Turn::At(_)))
            .count();
        assert_eq!(kept, 5);
        let deferred: Vec<Duration> = (0..4)
            .map(|_| match p.reserve("example.org", 0, now) {
                Turn::Defer(d) => d,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            deferred,
            [2500, 3000, 3500, 4000].map(Duration::from_millis),
            "the rows sent back come back one spacing apart"
        );
    }

    #[test]
    fn a_throttle_halves_the_rate_once_per_burst_and_recovery_ends_it() {
        let s = SendingSettings {
            provider_rate_per_second: 40.0,
            ..SendingSettings::default()
        };
        let p = pacer(s, vec![None]);
        let t0 = Instant::now();
        p.reserve("google", 0, t0);
        let wait = p.throttled("google", t0);
        assert!(wait >= Duration::from_secs(1), "{wait:?}");
        p.throttled("google", t0 + Duration::from_millis(100));
        let groups = p.throttled_groups();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].name, "google");
        assert_eq!(groups[0].throttles, 2);
        assert!((groups[0].rate_per_second - 20.0).abs() < 0.5, "{groups:?}");

        // A second burst a while later halves it again.
        p.throttled("google", t0 + Duration::from_secs(2));
        let rate = p
            .state
            .lock()
            .unwrap()
            .groups
            .get_mut("google")
            .unwrap()
            .rate(t0 + Duration::from_secs(2));
        assert!(rate.unwrap() < 20.0, "{rate:?}");

        // It grows back by target/RECOVERY_SECONDS a second and is then no longer throttled.
        let later = t0 + Duration::from_secs_f64(2.0 + RECOVERY_SECONDS);
        let rate = p
            .state
            .lock()
            .unwrap()
            .groups
            .get_mut("google")
            .unwrap()
            .rate(later);
        assert_eq!(rate, Some(40.0));
        assert!(p.state.lock().unwrap().groups["google"].aimd.is_none());
    }

    #[test]
    fn a_slow_down_voids_the_turns_given_at_the_old_pace() {
        let s = SendingSettings {
            provider_rate_per_second: 20.0,
            ..SendingSettings::default()
        };
        let p = pacer(s, vec![None]);
        let now = Instant::now();
        let before = p.epoch("example.org");
        let last = (0..30)
            .map(|_| p.reserve("example.org", 0, now))
            .last()
            .unwrap();
        assert_eq!(last, Turn::At(now + Duration::from_millis(50) * 29));
        p.throttled("example.org", now);
        assert_ne!(p.epoch("example.org"), before);
        // A new turn is spaced at the halved pace from now, not after the void ones.
        match p.reserve("example.org", 0, now) {
            Turn::At(at) => assert!(at <= now + Duration::from_millis(200), "{:?}", at - now),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unmeasured_group_starts_from_an_assumed_rate_and_never_drops_below_the_floor() {
        let p = pacer(SendingSettings::default(), vec![None]);
        let now = Instant::now();
        p.throttled("example.org", now);
        let rate = p.throttled_groups()[0].rate_per_second;
        assert!((rate - UNMEASURED_RATE / 2.0).abs() < 0.5, "{rate}");
        for i in 1..40 {
            p.throttled("example.org", now + DECREASE_GAP * i);
        }
        assert!(p.throttled_groups()[0].rate_per_second >= MIN_RATE);
    }
}
