//! Who fetched a tracked link or the open image, as far as herald cares: a coarse class of
//! the user agent (never the user agent itself), and whether the fetch was a machine's.
//!
//! Both are rule tables: a list of cases, each with the agents or networks that motivated
//! it, read by one small function. Adding a case is one line.

use std::net::IpAddr;

/// A user agent's coarse class, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentClass {
    MailClient,
    Browser,
    Scanner,
    Unknown,
}

impl AgentClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MailClient => "mail_client",
            Self::Browser => "browser",
            Self::Scanner => "scanner",
            Self::Unknown => "unknown",
        }
    }
}

/// Substrings (lower case) of user agents that are scanners, link checkers and libraries:
/// corporate mail gateways follow every link of an incoming mail before a person sees it.
const SCANNERS: &[&str] = &[
    "bot",                        // Googlebot, bingbot, Slackbot and friends
    "spider",                     // crawlers
    "crawl",                      // crawlers
    "scan",                       // "LinkScanner", security scanners
    "barracuda",                  // Barracuda Email Security Gateway
    "mimecast",                   // Mimecast URL protection
    "proofpoint",                 // Proofpoint URL defense
    "safelinks",                  // Microsoft Defender Safe Links
    "office existence discovery", // Microsoft Office checking a link exists
    "headless",                   // HeadlessChrome: automated browsers
    "curl/",                      // command-line fetchers and libraries
    "wget",
    "python-",
    "go-http-client",
    "java/",
    "okhttp",
    "libwww",
    "httpclient",
];

/// Substrings (lower case) of user agents that are mail clients or their image proxies
/// (Gmail and Yahoo fetch images through a proxy when a person opens the mail).
const MAIL_CLIENTS: &[&str] = &[
    "thunderbird",
    "outlook",
    "microsoft office",
    "ms-office",
    "googleimageproxy",
    "yahoomailproxy",
    "airmail",
    "spark",
    "k-9",
    "fairemail",
    "evolution",
    "mailspring",
    "postbox",
];

/// Substrings of browsers' user agents (checked after the two lists above).
const BROWSERS: &[&str] = &["firefox/", "chrome/", "safari/", "edg/", "opr/", "crios/"];

/// The class of `user_agent`.
pub fn classify(user_agent: Option<&str>) -> AgentClass {
    let Some(ua) = user_agent.map(str::to_ascii_lowercase) else {
        return AgentClass::Unknown;
    };
    if ua.trim().is_empty() {
        return AgentClass::Unknown;
    }
    if SCANNERS.iter().any(|s| ua.contains(s)) {
        return AgentClass::Scanner;
    }
    if MAIL_CLIENTS.iter().any(|s| ua.contains(s)) {
        return AgentClass::MailClient;
    }
    if BROWSERS.iter().any(|s| ua.contains(s)) {
        return AgentClass::Browser;
    }
    // WebKit without a browser's name: an app's web view, such as Apple Mail's.
    if ua.contains("applewebkit/") {
        return AgentClass::MailClient;
    }
    AgentClass::Unknown
}

/// Networks whose fetches of the open image are a machine's, not a reader's: Apple Mail
/// Privacy Protection fetches every image of every mail from Apple's own network, whether
/// or not anyone reads it.
const MACHINE_NETWORKS: &[(IpAddr, u8)] = &[
    // Apple's networks, where Mail Privacy Protection's prefetching proxies run:
    // 17.0.0.0/8, and its IPv6 allocations 2620:149::/32 (ARIN) and 2a01:b740::/32 (RIPE).
    (IpAddr::V4(std::net::Ipv4Addr::new(17, 0, 0, 0)), 8),
    (
        IpAddr::V6(std::net::Ipv6Addr::new(0x2620, 0x149, 0, 0, 0, 0, 0, 0)),
        32,
    ),
    (
        IpAddr::V6(std::net::Ipv6Addr::new(0x2a01, 0xb740, 0, 0, 0, 0, 0, 0)),
        32,
    ),
];

/// Fetches this soon after the copy was made are a gateway's or a proxy's, not a reader's.
pub const MACHINE_WITHIN_SECONDS: i64 = 15;

/// Whether an open is a machine's: from a known proxy network, by a scanner, or within
/// [`MACHINE_WITHIN_SECONDS`] of the copy being made (`sent_at`).
pub fn is_machine_open(ip: Option<IpAddr>, class: AgentClass, sent_at: i64, now: i64) -> bool {
    class == AgentClass::Scanner
        || now.saturating_sub(sent_at) < MACHINE_WITHIN_SECONDS
        || ip.is_some_and(|ip| {
            MACHINE_NETWORKS
                .iter()
                .any(|(net, bits)| within(ip, *net, *bits))
        })
}

fn within(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip.to_canonical(), net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_fall_into_coarse_classes() {
        let cases = [
            (Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"), AgentClass::Browser),
            (Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"), AgentClass::Browser),
            (Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"), AgentClass::MailClient),
            (Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.3.1"), AgentClass::MailClient),
            (Some("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"), AgentClass::MailClient),
            (Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"), AgentClass::Scanner),
            (Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36"), AgentClass::Scanner),
            (Some("curl/8.5.0"), AgentClass::Scanner),
            (Some(""), AgentClass::Unknown),
            (None, AgentClass::Unknown),
        ];
        for (ua, class) in cases {
            assert_eq!(classify(ua), class, "{ua:?}");
        }
    }

    #[test]
    fn machine_opens_are_told_apart() {
        let apple: IpAddr = "17.58.1.2".parse().unwrap();
        let home: IpAddr = "203.0.113.9".parse().unwrap();
        let mapped: IpAddr = "::ffff:17.1.1.1".parse().unwrap();
        let sent = 1_000_000;
        let later = sent + 3600;
        for v6 in ["2620:149:a:b::1", "2a01:b740:a41::7"] {
            let ip: IpAddr = v6.parse().unwrap();
            assert!(
                is_machine_open(Some(ip), AgentClass::Unknown, sent, later),
                "{v6}"
            );
        }
        let elsewhere: IpAddr = "2620:150::1".parse().unwrap();
        assert!(!is_machine_open(
            Some(elsewhere),
            AgentClass::MailClient,
            sent,
            later
        ));
        assert!(is_machine_open(
            Some(apple),
            AgentClass::Unknown,
            sent,
            later
        ));
        assert!(is_machine_open(
            Some(mapped),
            AgentClass::Unknown,
            sent,
            later
        ));
        assert!(is_machine_open(
            Some(home),
            AgentClass::Scanner,
            sent,
            later
        ));
        assert!(is_machine_open(
            Some(home),
            AgentClass::MailClient,
            sent,
            sent + 2
        ));
        assert!(!is_machine_open(
            Some(home),
            AgentClass::MailClient,
            sent,
            later
        ));
        assert!(!is_machine_open(None, AgentClass::Browser, sent, later));
    }
}
