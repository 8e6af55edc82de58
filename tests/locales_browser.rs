//! The Chinese reader's pages in a real headless Chromium, on a phone (375×740) and a desktop
//! (1280×900): the sign-up form, the thank-you page, the confirmation and confirmed pages (through the link in
//! the captured confirmation mail), and the unsubscribe and unsubscribed pages. On each: no
//! horizontal scrolling, no button wider than the page's content or cut off inside, and the
//! Chinese drawn in a CJK font: the heading's characters come out as distinct glyphs, none
//! of them the empty box a font without them draws. The dashboard in Chinese gets the same
//! checks (login, home, an issue, the send confirmation, returned mail). Screenshots go to
//! `HERALD_SCREENSHOT_DIR` (default: `locale-screenshots/` in the test target's temporary
//! directory, under `target/`).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, Locator};
use herald::domain::{EmailAddress, Purpose, SubscriberStatus, TokenKey};
use support::app::{copies_in, eventually};
use support::browser::{click_and_wait, goto, wait_for, Browser};
use support::server::{Relay, TestServer};
use support::smtp_server::Faults;

/// Long, and without a space to break at: the pages must wrap it, not widen.
const NAME: &str = "沙发周刊：开源社区每周动态、技术分享与活动预告精选合集";

fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("HERALD_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("locale-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// The layout and the font of the loaded page, measured in it:
/// - `scroll`, `client`: the document's scroll width and visible width;
/// - `buttons`: every button (and button-styled link) that sticks out of its `<main>` or
///   `<header>` or the window, or whose label is wider than the button;
/// - `family`: the heading's computed font family;
/// - `han`, `distinct`, `tofu`, `inked`: of the heading's Chinese characters (up to 8), drawn
///   on a canvas in the heading's font: how many there are, how many distinct images they
///   make, how many look exactly like U+FFFF (a character no font has: the box), and how many
///   left any ink. In a font without them, every character is the same box.
const MEASURE: &str = r#"
const d = document.documentElement;
const buttons = [];
document.querySelectorAll('button, .button, input[type=submit]').forEach(b => {
  const r = b.getBoundingClientRect();
  if (r.width === 0) return;
  const box = (b.closest('main, header') || document.body).getBoundingClientRect();
  if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.right > d.clientWidth
      || b.scrollWidth > b.clientWidth + 1) {
    buttons.push({ text: b.textContent.trim(), left: r.left, right: r.right,
      boxLeft: box.left, boxRight: box.right, scrollWidth: b.scrollWidth, clientWidth: b.clientWidth });
  }
});
const h1 = document.querySelector('h1');
const style = getComputedStyle(h1);
const canvas = document.createElement('canvas');
canvas.width = 64; canvas.height = 64;
const ctx = canvas.getContext('2d', { willReadFrequently: true });
const draw = ch => {
  ctx.clearRect(0, 0, 64, 64);
  ctx.font = '48px ' + style.fontFamily;
  ctx.fillStyle = '#000';
  ctx.textBaseline = 'top';
  ctx.fillText(ch, 4, 4);
  const data = ctx.getImageData(0, 0, 64, 64).data;
  let hash = 0, ink = 0;
  for (let i = 3; i < data.length; i += 4) { hash = (Math.imul(hash, 31) + data[i]) >>> 0; ink += data[i] > 0 ? 1 : 0; }
  return { hash, ink };
};
const han = Array.from(new Set(Array.from(h1.textContent).filter(ch => /\p{Script=Han}/u.test(ch)))).slice(0, 8);
const tofu = draw('\uFFFF');
const glyphs = han.map(draw);
return { scroll: d.scrollWidth, client: d.clientWidth, buttons,
  family: style.fontFamily, heading: h1.textContent.trim(),
  han: han.length, distinct: new Set(glyphs.map(g => g.hash)).size,
  tofu: glyphs.filter(g => g.hash === tofu.hash).length,
  inked: glyphs.filter(g => g.ink > 20).length };
"#;

/// Checks the loaded page (`what`, at `width`) and saves its screenshot.
async fn check_page(client: &Client, what: &str, width: u32) {
    let m = client.execute(MEASURE, vec![]).await.unwrap();
    eprintln!("{what} at {width}px: {m}");
    let num = |k: &str| m[k].as_f64().unwrap_or_else(|| panic!("{k} in {m}"));
    assert!(
        num("scroll") <= num("client"),
        "{what} scrolls sideways at {width}px: {m}"
    );
    assert_eq!(
        m["buttons"].as_array().unwrap().len(),
        0,
        "{what}: a button overflows at {width}px: {m}"
    );
    assert!(
        m["family"].as_str().unwrap().contains("Noto Sans CJK SC"),
        "{what}: not the CJK font stack: {m}"
    );
    assert!(num("han") >= 2.0, "{what}: a Chinese heading: {m}");
    assert_eq!(num("tofu"), 0.0, "{what}: boxes instead of characters: {m}");
    assert_eq!(num("inked"), num("han"), "{what}: blank characters: {m}");
    assert_eq!(
        num("distinct"),
        num("han"),
        "{what}: different characters look the same (boxes): {m}"
    );
    shot(client, &format!("zh-CN-{what}-{width}")).await;
}

/// The loaded page's heading, which must contain `expected`.
async fn heading(client: &Client, expected: &str) {
    let text = wait_for(client, Locator::Css("h1"))
        .await
        .text()
        .await
        .expect("the heading's text");
    assert!(
        text.contains(expected),
        "the heading is {text:?}, not {expected:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chinese_pages_fit_a_phone_and_a_desktop_in_a_cjk_font() {
    let server = TestServer::start(Relay::Smtp(Faults::new()), |s| {
        s.newsletter.locale = "zh-CN".into();
        s.newsletter.name = NAME.into();
        s.web.signup_per_ip_per_minute = 1000;
    })
    .await;
    let key = TokenKey::new(&server.app.settings.secret_key().unwrap());
    for (width, height) in [(375u32, 740u32), (1280, 900)] {
        let Some(browser) = Browser::start(width, height).await else {
            return;
        };
        let c = &browser.client;
        let email = format!("reader{width}@example.org");

        goto(c, &server.url("/")).await;
        heading(c, "订阅《").await;
        check_page(c, "signup", width).await;

        c.find(Locator::Id("email"))
            .await
            .unwrap()
            .send_keys(&email)
            .await
            .unwrap();
        c.find(Locator::Id("name"))
            .await
            .unwrap()
            .send_keys("李雷")
            .await
            .unwrap();
        click_and_wait(c, Locator::Css("button[type=submit]")).await;
        heading(c, "请查收确认邮件").await;
        check_page(c, "thanks", width).await;

        let smtp = server.smtp.as_ref().unwrap();
        let arrived = eventually(Duration::from_secs(20), || async {
            !copies_in(&smtp.received(), &email).is_empty()
        })
        .await;
        assert!(arrived, "the confirmation mail arrived");
        let mail = &copies_in(&smtp.received(), &email)[0];
        let message = mail_parser::MessageParser::default()
            .parse(&mail.data)
            .unwrap();
        let text = message.body_text(0).unwrap();
        let pattern = format!("{}/confirm/[A-Za-z0-9_-]+", regex::escape(&server.base));
        let confirm_url = regex::Regex::new(&pattern)
            .unwrap()
            .find(&text)
            .expect("a confirmation link")
            .as_str()
            .to_string();
        // The link shows one button; pressing it confirms.
        goto(c, &confirm_url).await;
        heading(c, "确认订阅").await;
        check_page(c, "confirm", width).await;
        click_and_wait(c, Locator::Css("button[type=submit]")).await;
        heading(c, "订阅成功").await;
        check_page(c, "confirmed", width).await;

        let subscriber = server
            .app
            .store
            .find_subscriber_by_email(&EmailAddress::parse(&email).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(subscriber.status, SubscriberStatus::Active);
        let token = key.sign(Purpose::Unsubscribe, subscriber.id, None);
        goto(c, &server.url(&format!("/unsubscribe/{token}"))).await;
        heading(c, "退订《").await;
        check_page(c, "unsubscribe", width).await;
        click_and_wait(c, Locator::Css("button[type=submit]")).await;
        heading(c, "您已退订").await;
        check_page(c, "unsubscribed", width).await;
        browser.close().await;
    }
    server.stop().await.unwrap();
}

const ZH_ISSUE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/issues-zh/2020-03-20-spring.md"
);

#[tokio::test(flavor = "multi_thread")]
async fn the_chinese_dashboard_fits_a_phone_and_a_desktop_in_a_cjk_font() {
    let server = TestServer::start(Relay::Smtp(Faults::new()), |s| {
        s.newsletter.locale = "zh-CN".into();
        s.newsletter.name = NAME.into();
    })
    .await;
    std::fs::copy(ZH_ISSUE, server.issues_dir().join("2020-03-20-spring.md")).unwrap();
    support::app::add_subscribers(&server.app.store, &support::app::addresses("reader", 1234))
        .await;
    let issue = "/admin/issues/2020-03-20-spring";
    for (width, height) in [(375u32, 740u32), (1280, 900)] {
        let Some(browser) = Browser::start(width, height).await else {
            return;
        };
        let c = &browser.client;
        goto(c, &server.url("/admin/login")).await;
        heading(c, "登录").await;
        check_page(c, "dashboard-login", width).await;
        wait_for(c, Locator::Css("#token"))
            .await
            .send_keys(server.admin_token())
            .await
            .unwrap();
        click_and_wait(c, Locator::Css("form button[type=submit]")).await;
        heading(c, "订阅者").await;
        let home = c.source().await.unwrap();
        assert!(home.contains("<strong>1,234</strong> 已订阅"), "{home}");
        check_page(c, "dashboard-home", width).await;
        goto(c, &server.url(issue)).await;
        heading(c, "沙发周刊第 12 期").await;
        check_page(c, "dashboard-issue", width).await;
        goto(c, &server.url(&format!("{issue}/send"))).await;
        heading(c, "确定发送").await;
        let page = c.source().await.unwrap();
        assert!(page.contains("确定发送给 1,234 位订阅者"), "{page}");
        assert!(!page.contains("之前已发送过"), "never sent: {page}");
        check_page(c, "dashboard-send", width).await;
        goto(c, &server.url("/admin/bounces")).await;
        heading(c, "退信").await;
        check_page(c, "dashboard-bounces", width).await;
        browser.close().await;
    }
    server.stop().await.unwrap();
}
