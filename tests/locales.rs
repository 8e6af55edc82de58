//! Readers in their own language: every page and every mail herald emits, and every page of
//! the dashboard, rendered by the whole `herald serve` in `en` and in `zh-CN`, the Chinese
//! checked for English left outside the catalogs; snapshots of the Chinese confirmation mail and issue footer; an issue's
//! `lang:`; a user's catalog; `herald locales check`.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use herald::config::{NewsletterSettings, Settings};
use herald::domain::{IssueSlug, Purpose, TokenKey};
use herald::i18n::Catalogs;
use herald::links::Links;
use herald::render::{self, Recipient, Templates};
use support::app::{copies_in, eventually};
use support::server::{Relay, TestServer};
use support::smtp_server::{Faults, Received};

const MAIL_WAIT: Duration = Duration::from_secs(20);
const ZH_ISSUE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/issues-zh/2020-03-20-spring.md"
);
const ZH_SLUG: &str = "2020-03-20-spring";
const EN_SLUG: &str = support::app::SLUG;
/// Written in Chinese, so in the Chinese run no Latin word comes from the settings.
const NAME: &str = "沙发周刊";
const POSTAL: &str = "浙江省杭州市西湖区文三路 100 号";

/// Latin words a Chinese page may show: names of formats and zones, not English.
const ALLOWED: &[&str] = &["Atom", "UTC"];

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What a reader sees of a page or a mail: the text between the tags, the title, and the
/// alt, title, placeholder and aria-label attributes; no styles, scripts or comments, and no
/// `<code>` (configuration keys and commands, the same in every language).
fn visible_text(html: &str) -> String {
    let strip = |s: &str, pattern: &str| {
        regex::Regex::new(pattern)
            .unwrap()
            .replace_all(s, " ")
            .into_owned()
    };
    let mut text = strip(html, r"(?s)<!--.*?-->");
    text = strip(&text, r"(?is)<code>.*?</code>");
    text = strip(&text, r"(?is)<style.*?</style>");
    text = strip(&text, r"(?is)<script.*?</script>");
    let attributes =
        regex::Regex::new(r#"(?i)\b(?:alt|title|placeholder|aria-label)="([^"]*)""#).unwrap();
    let mut shown: Vec<String> = attributes
        .captures_iter(&text)
        .map(|c| c[1].to_string())
        .collect();
    shown.push(strip(&text, r"<[^>]*>"));
    html_escape::decode_html_entities(&shown.join(" ")).into_owned()
}

/// The Latin words of `text`, URLs and addresses aside.
fn latin_words(text: &str) -> BTreeSet<String> {
    let text = regex::Regex::new(r"(?:https?://|mailto:)\S+|\S+@\S+")
        .unwrap()
        .replace_all(text, " ");
    regex::Regex::new(r"[A-Za-z]{2,}")
        .unwrap()
        .find_iter(&text)
        .map(|m| m.as_str().to_string())
        .filter(|w| !ALLOWED.contains(&w.as_str()))
        .collect()
}

/// Every word of the English catalog, lower-cased, for naming what leaked.
fn english_words() -> BTreeSet<String> {
    let catalogs = Catalogs::built_in();
    let en = catalogs.get("en").unwrap();
    en.ids()
        .iter()
        .flat_map(|id| {
            latin_words(&en.t(id))
                .into_iter()
                .map(|w| w.to_lowercase())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// One thing a reader (or an editor) sees.
struct Shown {
    what: String,
    /// HTML (pages and HTML parts) or plain text.
    body: String,
    html: bool,
}

impl Shown {
    fn page(what: &str, body: String) -> Self {
        Self {
            what: what.into(),
            body,
            html: true,
        }
    }

    fn text(what: &str, body: String) -> Self {
        Self {
            what: what.into(),
            body,
            html: false,
        }
    }

    fn visible(&self) -> String {
        if self.html {
            visible_text(&self.body)
        } else {
            regex::Regex::new(r"(?:https?://)\S+")
                .unwrap()
                .replace_all(&self.body, " ")
                .into_owned()
        }
    }
}

async fn get(url: &str) -> (u16, String) {
    let r = client().get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post_form(url: &str, body: String) -> (u16, String) {
    let r = client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

fn mails_to(server: &TestServer, email: &str) -> Vec<Received> {
    copies_in(&server.smtp.as_ref().unwrap().received(), email)
}

async fn wait_for_mails(server: &TestServer, email: &str, n: usize) -> Vec<Received> {
    let arrived = eventually(MAIL_WAIT, || async { mails_to(server, email).len() >= n }).await;
    assert!(arrived, "{email} got fewer than {n} mails");
    mails_to(server, email)
}

/// Subject, plain text and HTML of a captured mail.
fn parts(mail: &Received) -> (String, String, String) {
    let message = mail_parser::MessageParser::default()
        .parse(&mail.data)
        .expect("a parseable message");
    (
        message.subject().unwrap_or_default().to_string(),
        message.body_text(0).expect("a text part").into_owned(),
        message.body_html(0).expect("an HTML part").into_owned(),
    )
}

fn link(text: &str, server: &TestServer, route: &str) -> String {
    let pattern = format!("{}/{route}/[A-Za-z0-9_-]+", regex::escape(&server.base));
    regex::Regex::new(&pattern)
        .unwrap()
        .find(text)
        .unwrap_or_else(|| panic!("no {route} link in:\n{text}"))
        .as_str()
        .to_string()
}

fn tweak(locale: &str) -> impl FnOnce(&mut Settings) {
    let locale = locale.to_string();
    move |s: &mut Settings| {
        s.newsletter.locale = locale;
        s.newsletter.name = NAME.into();
        s.newsletter.postal_address = POSTAL.into();
        s.web.signup_per_ip_per_minute = 6;
    }
}

/// Puts the Chinese fixture issue's picture in `assets` (a send refuses an issue whose
/// pictures are missing).
fn add_pictures(assets: &Path) {
    std::fs::create_dir_all(assets.join("img")).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/static/img/issues/pipeline.png"
        ),
        assets.join("img/spring.png"),
    )
    .unwrap();
}

/// Walks a reader through everything herald shows them, in `locale`, and returns it all:
/// the sign-up form (empty and refused), thank-you, the confirmation and welcome mails,
/// the confirmation page, confirmed, expired, unsubscribe, unsubscribed, resubscribe (a new
/// confirmation mail), test copy, the archive, an
/// issue's mail and web version, the feed, and the error pages 400, 404, 405, 410, 413,
/// 429 and 500.
async fn everything_shown(locale: &str, issue: (&str, &str)) -> Vec<Shown> {
    let server = TestServer::start(Relay::Smtp(Faults::new()), tweak(locale)).await;
    let (issue_file, slug) = issue;
    if issue_file != support::app::ISSUE {
        std::fs::copy(
            issue_file,
            server
                .issues_dir()
                .join(Path::new(issue_file).file_name().unwrap()),
        )
        .unwrap();
        add_pictures(&server.assets_dir());
    }
    let mut shown = Vec::new();
    let url = |p: &str| server.url(p);

    let (status, body) = get(&url("/")).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("sign-up form", body));
    let (status, body) = post_form(&url("/subscribe"), form(&[("email", "not an address")])).await;
    assert_eq!(status, 400);
    shown.push(Shown::page("sign-up form with an error", body));
    let reader = "reader@example.org";
    let (status, body) = post_form(
        &url("/subscribe"),
        form(&[("email", reader), ("name", "李雷")]),
    )
    .await;
    assert_eq!(status, 200);
    shown.push(Shown::page("thank-you page", body));
    let r = client()
        .post(url("/subscribe"))
        .json(&serde_json::json!({ "email": "json@example.org" }))
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = r.json().await.unwrap();
    shown.push(Shown::text(
        "JSON sign-up answer",
        json["message"].as_str().unwrap().to_string(),
    ));

    let confirm = &wait_for_mails(&server, reader, 1).await[0];
    let (subject, text, html) = parts(confirm);
    shown.push(Shown::text("confirmation mail subject", subject));
    shown.push(Shown::text("confirmation mail text", text.clone()));
    shown.push(Shown::page("confirmation mail HTML", html));
    let confirm_url = link(&text, &server, "confirm");
    let (status, body) = get(&confirm_url).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("confirmation page", body));
    let (status, body) = post_form(&confirm_url, String::new()).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("confirmed page", body));

    let welcome = &wait_for_mails(&server, reader, 2).await[1];
    let (subject, text, html) = parts(welcome);
    shown.push(Shown::text("welcome mail subject", subject));
    shown.push(Shown::text("welcome mail text", text.clone()));
    shown.push(Shown::page("welcome mail HTML", html));

    // An issue, sent to the reader.
    let slug = IssueSlug::parse(slug).unwrap();
    server.app.send_now(&slug, "test").await.unwrap();
    let issue_mail = &wait_for_mails(&server, reader, 3).await[2];
    let (_, text, html) = parts(issue_mail);
    shown.push(Shown::text("issue mail text", text.clone()));
    shown.push(Shown::page("issue mail HTML", html));
    let unsubscribe_url = link(&text, &server, "unsubscribe");

    let (status, body) = get(&url("/archive")).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("archive", body));
    let (status, body) = get(&url(&format!("/archive/{slug}"))).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("web version of the issue", body));
    let (status, body) = get(&url("/feed.xml")).await;
    assert_eq!(status, 200);
    let feed_text = regex::Regex::new(r"(?s)<subtitle>(.*?)</subtitle>")
        .unwrap()
        .captures(&body)
        .expect("the feed has a subtitle")[1]
        .to_string();
    assert!(body.contains(&format!("xml:lang=\"{locale}\"")), "{body}");
    shown.push(Shown::text("feed subtitle", feed_text));

    let (status, body) = get(&unsubscribe_url).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("unsubscribe page", body));
    let (status, body) = post_form(&unsubscribe_url, "List-Unsubscribe=One-Click".into()).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("unsubscribed page", body));
    let token = unsubscribe_url.rsplit('/').next().unwrap();
    let (status, body) = post_form(&url(&format!("/resubscribe/{token}")), String::new()).await;
    assert_eq!(status, 200);
    shown.push(Shown::page(
        "resubscribe page (a new confirmation mail)",
        body,
    ));
    let (status, body) = get(&url("/unsubscribe")).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("unsubscribe without a link", body));

    let key = TokenKey::new(&server.app.settings.secret_key().unwrap());
    let test_copy = key.sign(Purpose::Unsubscribe, 0, None);
    let (_, body) = get(&url(&format!("/unsubscribe/{test_copy}"))).await;
    shown.push(Shown::page("test copy's unsubscribe page", body));
    let expired = key.sign(
        Purpose::Confirm,
        1,
        Some(chrono::Utc::now().timestamp() - 60),
    );
    let (status, body) = get(&url(&format!("/confirm/{expired}"))).await;
    assert_eq!(status, 410);
    shown.push(Shown::page("expired confirmation link (410)", body));
    let (status, body) = get(&url("/confirm/not-a-token")).await;
    assert_eq!(status, 400);
    shown.push(Shown::page("bad link (400)", body));
    let (status, body) = get(&url("/no/such/page")).await;
    assert_eq!(status, 404);
    shown.push(Shown::page("not found (404)", body));
    let (status, body) = get(&url("/subscribe")).await;
    assert_eq!(status, 405);
    shown.push(Shown::page("method not allowed (405)", body));
    let big = form(&[("email", &"x".repeat(40 * 1024))]);
    let (status, body) = post_form(&url("/subscribe"), big).await;
    assert_eq!(status, 413);
    shown.push(Shown::page("too large (413)", body));
    let mut limited = None;
    for i in 0..10 {
        let (status, body) = post_form(
            &url("/subscribe"),
            form(&[("email", &format!("many{i}@example.org"))]),
        )
        .await;
        if status == 429 {
            limited = Some(body);
            break;
        }
    }
    shown.push(Shown::page(
        "too many sign-ups (429)",
        limited.expect("the per-IP limit answers 429"),
    ));

    // With the database closed, a confirmation fails on our side.
    server.app.store.clone().close().await;
    let (status, body) = get(&confirm_url).await;
    assert_eq!(status, 500);
    shown.push(Shown::page("internal error (500)", body));
    shown
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_and_mail_in_zh_cn_shows_no_word_of_the_english_catalog() {
    let zh = everything_shown("zh-CN", (ZH_ISSUE, ZH_SLUG)).await;
    let en = everything_shown("en", (support::app::ISSUE, EN_SLUG)).await;
    assert_chinese_without_english(&zh, &en, &[], true);
}

/// Each Chinese rendering differs from the English one, shows no Latin word (but `data`,
/// the editor's own words such as slugs), and says its language; `font_in_page` when the
/// page carries its font stack itself (the dashboard's is in its stylesheet).
fn assert_chinese_without_english(zh: &[Shown], en: &[Shown], data: &[&str], font_in_page: bool) {
    assert_eq!(zh.len(), en.len());
    let english = english_words();
    let mut leaks = Vec::new();
    for (zh, en) in zh.iter().zip(en) {
        assert_eq!(zh.what, en.what);
        let mut visible = zh.visible();
        for d in data {
            visible = visible.replace(d, " ");
        }
        let words = latin_words(&visible);
        if !words.is_empty() {
            let from_catalog: Vec<&String> = words
                .iter()
                .filter(|w| english.contains(&w.to_lowercase()))
                .collect();
            leaks.push(format!(
                "{}: Latin words {words:?} (of the English catalog: {from_catalog:?})",
                zh.what
            ));
        }
        // The two renderings differ, and the English one is English.
        assert_ne!(
            zh.visible(),
            en.visible(),
            "{} is the same in both",
            zh.what
        );
        assert!(
            !latin_words(&en.visible()).is_empty(),
            "{} in English has no English",
            en.what
        );
        if zh.html {
            for tag in [
                r"<html[^>]*\blang=.zh-CN.",
                r#"<(?:main|div)[^>]*\blang="zh-CN"[^>]*\bdir="ltr""#,
            ] {
                assert!(
                    regex::Regex::new(tag).unwrap().is_match(&zh.body),
                    "{}: no {tag} in\n{}",
                    zh.what,
                    zh.body
                );
            }
            if font_in_page {
                assert!(
                    zh.body.contains("Noto Sans CJK SC"),
                    "{}: no CJK font stack",
                    zh.what
                );
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "English left outside the catalogs:\n{}",
        leaks.join("\n")
    );
}

// ---- The dashboard ----

const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

async fn admin_get(url: &str, cookie: &str) -> (u16, String) {
    let r = client()
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn admin_post(url: &str, cookie: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let r = client()
        .post(url)
        .header("cookie", cookie)
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    match location {
        Some(location) if status == 303 => {
            admin_get(&format!("{}{location}", url_base(url)), cookie).await
        }
        _ => (status, r.text().await.unwrap()),
    }
}

fn url_base(url: &str) -> &str {
    let after_scheme = url.find("//").unwrap() + 2;
    let path = url[after_scheme..].find('/').unwrap() + after_scheme;
    &url[..path]
}

/// Logs in with the admin token; the session cookie.
async fn login(server: &TestServer) -> String {
    let r = client()
        .post(server.url("/admin/login"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn csrf_in(html: &str) -> String {
    regex::Regex::new(r#"name="csrf" value="([^"]+)""#)
        .unwrap()
        .captures(html)
        .expect("a form with a CSRF token")[1]
        .to_string()
}

/// Walks an editor through the dashboard in `locale`: the login form (empty and refused),
/// the home page with the schedule's next run, an issue, a test copy's notice, the send
/// confirmation, a refused send, the issue sending and sent (its progress as the poller
/// reads it), returned mail (empty, a lookup, an unknown address), and the 403 and 404
/// pages. Returns what it saw and the stylesheet.
async fn dashboard_shown(locale: &str, issue: (&str, &str)) -> (Vec<Shown>, String) {
    let (issue_file, slug) = issue;
    let issue_file = issue_file.to_string();
    let server = TestServer::start(Relay::Smtp(Faults::new()), move |s| {
        tweak(locale)(s);
        // A folder of its own, for the scheduler on the real clock: it shows its next run
        // (next Friday, past any test's end) and the issue it would send.
        s.newsletter.issues_dir = s.newsletter.issues_dir.with_file_name("dashboard-issues");
        std::fs::create_dir_all(&s.newsletter.issues_dir).unwrap();
        std::fs::copy(
            &issue_file,
            s.newsletter
                .issues_dir
                .join(Path::new(&issue_file).file_name().unwrap()),
        )
        .unwrap();
        add_pictures(&s.newsletter.assets_dir);
        s.schedule.cron = "0 0 9 * * Fri".into();
        s.schedule.max_lateness_minutes = 0;
        // The home page lists the live nodes: an id of digits is no word of any language.
        s.node.id = Some("7".into());
    })
    .await;
    support::app::add_subscribers(&server.app.store, &support::app::addresses("reader", 3)).await;
    let url = |p: &str| server.url(p);
    let mut shown = Vec::new();

    let (status, body) = get(&url("/admin/login")).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("login form", body));
    let (status, body) = post_form(&url("/admin/login"), form(&[("token", "wrong")])).await;
    assert_eq!(status, 401);
    shown.push(Shown::page("login form with a wrong token", body));
    let cookie = login(&server).await;

    let (status, home) = admin_get(&url("/admin"), &cookie).await;
    assert_eq!(status, 200);
    assert!(
        home.contains(&format!("href=\"/admin/issues/{slug}\"")),
        "the next run names the issue: {home}"
    );
    let csrf = csrf_in(&home);
    shown.push(Shown::page("home", home));
    let issue_url = url(&format!("/admin/issues/{slug}"));
    let (status, body) = admin_get(&issue_url, &cookie).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("issue, never sent", body));
    let (status, body) = admin_post(
        &format!("{issue_url}/test"),
        &cookie,
        &[("csrf", &csrf), ("to", "editor@example.org")],
    )
    .await;
    assert_eq!(status, 200);
    shown.push(Shown::page("issue after a test copy", body));
    let (status, body) = admin_post(
        &format!("{issue_url}/test"),
        &cookie,
        &[("csrf", &csrf), ("to", "not an address")],
    )
    .await;
    assert_eq!(status, 400);
    shown.push(Shown::page("test copy to a bad address (400)", body));
    let (status, body) = admin_get(&format!("{issue_url}/send"), &cookie).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("send confirmation", body));
    let (status, body) =
        admin_post(&format!("{issue_url}/send"), &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(status, 400);
    shown.push(Shown::page("send without the box ticked (400)", body));
    let (status, body) = admin_post(
        &format!("{issue_url}/send"),
        &cookie,
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, 200);
    shown.push(Shown::page("issue, sending", body));
    let progress_url = format!("{issue_url}/progress");
    let sent = eventually(MAIL_WAIT, || async {
        let (_, body) = admin_get(&progress_url, &cookie).await;
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"] == "sent"
    })
    .await;
    assert!(sent, "the issue was sent");
    let (_, body) = admin_get(&progress_url, &cookie).await;
    let progress: serde_json::Value = serde_json::from_str(&body).unwrap();
    shown.push(Shown::text(
        "progress poller's status",
        progress["status_label"].as_str().unwrap().to_string(),
    ));
    let expected = if locale == "zh-CN" {
        "3 / 3（100%）"
    } else {
        "3 / 3 (100%)"
    };
    assert_eq!(progress["progress_label"], expected, "{progress}");
    let (status, body) = admin_get(&issue_url, &cookie).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("issue, sent", body));
    let (status, body) = admin_get(&url("/admin/bounces"), &cookie).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("returned mail", body));
    let (status, body) =
        admin_get(&url("/admin/bounces?email=reader0%40example.com"), &cookie).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("one subscriber's returned mail", body));
    let (status, body) =
        admin_get(&url("/admin/bounces?email=nobody%40example.com"), &cookie).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("returned mail of an unknown address", body));
    let (status, body) = admin_get(&url("/admin/subscribers"), &cookie).await;
    assert_eq!(status, 200);
    shown.push(Shown::page("subscribers", body));
    let (status, body) = admin_get(
        &url("/admin/subscribers/erase?email=reader0%40example.com"),
        &cookie,
    )
    .await;
    assert_eq!(status, 200);
    shown.push(Shown::page("erasing a subscriber", body));
    let (status, body) = admin_post(&format!("{issue_url}/retry-failed"), &cookie, &[]).await;
    assert_eq!(status, 403);
    shown.push(Shown::page("a form without its token (403)", body));
    let (status, body) = admin_get(&url("/admin/no/such/page"), &cookie).await;
    assert_eq!(status, 404);
    shown.push(Shown::page("not found (404)", body));
    let (_, css) = get(&url("/admin/static/admin.css")).await;
    server.stop().await.unwrap();
    (shown, css)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_page_in_zh_cn_shows_no_word_of_the_english_catalog() {
    let (zh, zh_css) = dashboard_shown("zh-CN", (ZH_ISSUE, ZH_SLUG)).await;
    let (en, en_css) = dashboard_shown("en", (support::app::ISSUE, EN_SLUG)).await;
    // The slug is the editor's word, shown as it is in every language.
    // Also shown as they are: the name of the CSV format, and the source the test's
    // subscribers were added with.
    assert_chinese_without_english(&zh, &en, &[ZH_SLUG, "CSV", "test"], false);
    assert!(zh_css.contains("'Noto Sans CJK SC'"), "{zh_css}");
    assert!(!en_css.contains("CJK"), "{en_css}");
    let home = |shown: &[Shown]| {
        shown
            .iter()
            .find(|s| s.what == "home")
            .unwrap()
            .body
            .clone()
    };
    // Grouped numbers, plurals, dates and the statuses, as each language writes them.
    let (zh_home, en_home) = (home(&zh), home(&en));
    assert!(zh_home.contains("<strong>3</strong> 已订阅"), "{zh_home}");
    assert!(en_home.contains("<strong>3</strong> active"), "{en_home}");
    assert!(zh_home.contains("2020年3月20日"), "{zh_home}");
    // Issue dates as times an editor reads, in the schedule's zone (UTC here).
    assert!(en_home.contains("Fri 27 Nov 2026, 08:00 UTC"), "{en_home}");
    assert!(
        regex::Regex::new(r"\d{4}年\d{1,2}月\d{1,2}日 周五 09:00 UTC")
            .unwrap()
            .is_match(&zh_home),
        "{zh_home}"
    );
    let confirm = |shown: &[Shown]| {
        visible_text(
            &shown
                .iter()
                .find(|s| s.what == "send confirmation")
                .unwrap()
                .body,
        )
    };
    assert!(
        confirm(&zh).contains("确定发送给 3 位订阅者"),
        "{}",
        confirm(&zh)
    );
    assert!(
        confirm(&en).contains("Yes, send it to 3 subscribers"),
        "{}",
        confirm(&en)
    );
}

/// The dashboard gives `herald check`'s findings in its own language: on an issue's page and
/// in the reason a send is refused. The rule ids and what the issue itself says (paths,
/// quoted link text) stay as they are.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_gives_the_findings_in_its_language() {
    let issue = "---\ntitle: 坏的一期\ndate: 2026-01-02\n---\n\n正文先写几句话。\n\n\
                 ![](img/missing-chart.png)\n\n[点击这里](https://example.org/a)\n";
    for locale in ["zh-CN", "en"] {
        let server = TestServer::start(Relay::Outbox, move |s| {
            tweak(locale)(s);
            s.newsletter.issues_dir = s.newsletter.issues_dir.with_file_name("check-issues");
            std::fs::create_dir_all(&s.newsletter.issues_dir).unwrap();
            std::fs::write(s.newsletter.issues_dir.join("broken.md"), issue).unwrap();
        })
        .await;
        let cookie = login(&server).await;
        let issue_url = server.url("/admin/issues/broken");
        let (status, page) = admin_get(&issue_url, &cookie).await;
        assert_eq!(status, 200);
        let (status, refused) = admin_post(
            &format!("{issue_url}/send"),
            &cookie,
            &[("csrf", &csrf_in(&page)), ("confirm", "yes")],
        )
        .await;
        assert_eq!(status, 400, "{refused}");
        for rule in ["asset-missing", "image-alt", "description-missing"] {
            let shown = format!(r#"data-rule="{rule}""#);
            assert!(page.contains(&shown), "{locale}: no {rule} in {page}");
        }
        let (page, refused) = (visible_text(&page), visible_text(&refused));
        let (said, not_said) = (
            [
                "图片 \"img/missing-chart.png\" 不在 assets_dir 里",
                "没有替代文字",
                "没有摘要",
                "在前置元数据里加上 `description:`",
            ],
            [
                "is not in assets_dir",
                "has no alt text",
                "no description",
                "to the front matter",
            ],
        );
        let (said, not_said) = if locale == "en" {
            (not_said, said)
        } else {
            (said, not_said)
        };
        for words in said {
            assert!(page.contains(words), "{locale}: {words:?} not in {page}");
        }
        for words in not_said {
            assert!(!page.contains(words), "{locale}: {words:?} in {page}");
        }
        assert!(
            refused.contains("broken.md:8:1: asset-missing: ") && refused.contains(said[0]),
            "{locale}: {refused}"
        );
        server.stop().await.unwrap();
    }
}

// ---- Snapshots of the Chinese confirmation mail and issue footer ----

fn settings_zh() -> NewsletterSettings {
    NewsletterSettings {
        name: NAME.into(),
        postal_address: POSTAL.into(),
        base_url: "https://news.example.org/".into(),
        locale: "zh-CN".into(),
        ..NewsletterSettings::default()
    }
}

fn templates(locale: &str) -> Templates {
    let catalogs = Catalogs::load(Path::new("/nonexistent/herald-locales"), locale).unwrap();
    Templates::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
        catalogs,
    )
    .unwrap()
}

/// Compares `actual` with `tests/snapshots/{name}`; `HERALD_UPDATE_SNAPSHOTS=1` rewrites it,
/// and a missing file is written.
fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("HERALD_UPDATE_SNAPSHOTS").is_some() || !path.exists() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(actual, expected, "snapshot {name} differs");
}

#[test]
fn the_chinese_confirmation_mail_matches_its_snapshot() {
    let newsletter = settings_zh();
    let links = Links::new(&newsletter.base_url).unwrap();
    let notice = render::notice::notice(
        render::NoticeKind::Confirm,
        &templates("zh-CN"),
        &newsletter,
        &links,
    )
    .unwrap()
    .unwrap();
    let copy = notice.personalise(Some("李雷"), "https://news.example.org/confirm/TOKEN");
    assert_eq!(copy.subject, "请确认订阅《沙发周刊》");
    assert!(copy.text.contains("李雷，您好："), "{}", copy.text);
    assert!(copy.html.contains(r#"<html lang="zh-CN" dir="ltr""#));
    snapshot(
        "zh-CN-confirm.txt",
        &format!("Subject: {}\n\n{}", copy.subject, copy.text),
    );
    snapshot("zh-CN-confirm.html", &copy.html);
}

fn rendered_zh_issue(locale: &str) -> render::RenderedIssue {
    let newsletter = NewsletterSettings {
        locale: locale.into(),
        ..settings_zh()
    };
    let links = Links::new(&newsletter.base_url).unwrap();
    let issue = herald::issue::load(Path::new(ZH_ISSUE), &Default::default()).unwrap();
    render::issue(&issue, &templates(locale), &newsletter, &links).unwrap()
}

fn personalise(issue: &render::RenderedIssue) -> (String, String) {
    let r = Recipient {
        email: "reader@example.org",
        name: Some("李雷"),
        unsubscribe_url: "https://news.example.org/unsubscribe/TOKEN",
        tracking: None,
    };
    (issue.html.personalise(&r), issue.text.personalise(&r))
}

#[test]
fn the_chinese_issue_footer_and_date_line_match_their_snapshot() {
    let (html, text) = personalise(&rendered_zh_issue("zh-CN"));
    assert!(text.contains("2020年3月20日 星期五 · 编辑部"), "{text}");
    assert!(html.contains("2020年3月20日 星期五"), "{html}");
    let footer_start = text.find("文中链接").expect("the links heading");
    snapshot("zh-CN-issue-footer.txt", &text[footer_start..]);
    let html_footer =
        regex::Regex::new(r#"<p style="margin:0 0 8px">.*?</p><p style="margin:0">.*?</p>"#)
            .unwrap()
            .find(&html)
            .expect("the HTML footer")
            .as_str()
            .to_string();
    snapshot("zh-CN-issue-footer.html", &html_footer);
    assert!(html_footer.contains(">在浏览器中查看</a>"));
    assert!(html_footer.contains(">退订</a>"));
}

#[test]
fn an_issue_lang_overrides_the_newsletter_locale() {
    // The newsletter speaks English; this issue says `lang: zh-CN`.
    let (html, text) = personalise(&rendered_zh_issue("en"));
    assert!(html.contains(r#"<html lang="zh-CN" dir="ltr""#), "{html}");
    assert!(
        text.contains("退订：https://news.example.org/unsubscribe/TOKEN"),
        "{text}"
    );
    assert!(text.contains("[图片：一张架构图]"), "{text}");
    assert!(!text.contains("Unsubscribe"), "{text}");
}

#[test]
fn a_user_catalog_in_locales_dir_overrides_one_message_in_the_mail() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zh-CN")).unwrap();
    std::fs::write(
        dir.path().join("zh-CN").join("ours.ftl"),
        "mail-unsubscribe = 取消订阅\n",
    )
    .unwrap();
    let catalogs = Catalogs::load(dir.path(), "zh-CN").unwrap();
    let templates = Templates::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
        catalogs,
    )
    .unwrap();
    let newsletter = settings_zh();
    let links = Links::new(&newsletter.base_url).unwrap();
    let issue = herald::issue::load(Path::new(ZH_ISSUE), &Default::default()).unwrap();
    let rendered = render::issue(&issue, &templates, &newsletter, &links).unwrap();
    let (html, _) = personalise(&rendered);
    assert!(html.contains(">取消订阅</a>"), "{html}");
    assert!(html.contains(">在浏览器中查看</a>"), "{html}");
}

#[test]
fn a_right_to_left_user_catalog_renders_the_mail_right_to_left() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ar")).unwrap();
    std::fs::write(
        dir.path().join("ar").join("herald.ftl"),
        "mail-unsubscribe = إلغاء الاشتراك\n",
    )
    .unwrap();
    let catalogs = Catalogs::load(dir.path(), "ar").unwrap();
    let templates = Templates::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
        catalogs,
    )
    .unwrap();
    let newsletter = NewsletterSettings {
        locale: "ar".into(),
        ..settings_zh()
    };
    let links = Links::new(&newsletter.base_url).unwrap();
    let issue = herald::issue::load(Path::new(support::app::ISSUE), &Default::default()).unwrap();
    let rendered = render::issue(&issue, &templates, &newsletter, &links).unwrap();
    let (html, _) = personalise(&rendered);
    assert!(html.contains(r#"<html lang="ar" dir="rtl""#), "{html}");
    assert!(html.contains(r#"dir="rtl""#));
    assert!(html.contains("text-align:right"), "no mirrored alignment");
    assert!(html.contains("إلغاء الاشتراك"));
}

// ---- herald locales check ----

#[test]
fn locales_check_is_clean_for_the_built_in_catalogs_and_names_gaps_in_a_users() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[newsletter]\ntemplates_dir = {:?}\n",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
        ),
    )
    .unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["--config", config.to_str().unwrap(), "locales", "check"])
            .output()
            .unwrap()
    };
    let clean = run();
    let out = String::from_utf8_lossy(&clean.stdout).into_owned();
    assert!(
        clean.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(out.contains("en: complete"), "{out}");
    assert!(out.contains("zh-CN: complete"), "{out}");

    std::fs::create_dir_all(dir.path().join("locales/de")).unwrap();
    std::fs::write(
        dir.path().join("locales/de/herald.ftl"),
        "mail-unsubscribe = Abbestellen\nnot-a-herald-message = x\n",
    )
    .unwrap();
    let gaps = run();
    let out = String::from_utf8_lossy(&gaps.stdout).into_owned();
    assert_eq!(gaps.status.code(), Some(1), "{out}");
    assert!(
        out.contains("missing mail-view-in-browser (shown in English)"),
        "{out}"
    );
    assert!(out.contains("unused  not-a-herald-message"), "{out}");
    assert!(!out.contains("missing mail-unsubscribe"), "{out}");
}

#[test]
fn every_message_of_the_english_catalog_is_asked_for_by_a_template_or_the_code() {
    fn sources(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|x| {
                ["rs", "html", "mjml", "txt", "xml"].contains(&x.to_str().unwrap())
            }) {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut code = String::new();
    sources(&root.join("src"), &mut code);
    sources(&root.join("templates"), &mut code);
    let catalogs = Catalogs::built_in();
    let unused: Vec<&String> = catalogs
        .get("en")
        .unwrap()
        .ids()
        .iter()
        .filter(|id| !code.contains(&format!("\"{id}\"")) && !code.contains(&format!("'{id}'")))
        .collect();
    assert!(unused.is_empty(), "messages nothing asks for: {unused:?}");
}
