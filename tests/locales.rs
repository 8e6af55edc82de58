//! Readers in their own language: every page and every mail herald emits, rendered by the
//! whole `herald serve` in `en` and in `zh-CN`, the Chinese checked for English left outside
//! the catalogs; snapshots of the Chinese confirmation mail and issue footer; an issue's
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

/// Latin words a Chinese page may show: names of formats, not English.
const ALLOWED: &[&str] = &["Atom"];

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What a reader sees of a page or a mail: the text between the tags, the title, and the
/// alt, title, placeholder and aria-label attributes; no styles, scripts or comments.
fn visible_text(html: &str) -> String {
    let strip = |s: &str, pattern: &str| {
        regex::Regex::new(pattern)
            .unwrap()
            .replace_all(s, " ")
            .into_owned()
    };
    let mut text = strip(html, r"(?s)<!--.*?-->");
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

/// Walks a reader through everything herald shows them, in `locale`, and returns it all:
/// the sign-up form (empty and refused), thank-you, the confirmation and welcome mails,
/// confirmed, expired, unsubscribe, unsubscribed, resubscribed, test copy, the archive, an
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
    shown.push(Shown::page("resubscribed page", body));
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
    assert_eq!(zh.len(), en.len());
    let english = english_words();
    let mut leaks = Vec::new();
    for (zh, en) in zh.iter().zip(&en) {
        assert_eq!(zh.what, en.what);
        let words = latin_words(&zh.visible());
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
            assert!(
                zh.body.contains("Noto Sans CJK SC"),
                "{}: no CJK font stack",
                zh.what
            );
        }
    }
    assert!(
        leaks.is_empty(),
        "English left outside the catalogs:\n{}",
        leaks.join("\n")
    );
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
