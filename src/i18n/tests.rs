use super::*;
use chrono::{DateTime, TimeZone, Utc};

fn zh() -> Arc<Catalog> {
    Catalogs::built_in().get("zh-CN").unwrap().clone()
}

fn en() -> Arc<Catalog> {
    Catalogs::built_in().get("en").unwrap().clone()
}

fn march_20_2020() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 3, 20, 9, 0, 0).unwrap()
}

#[test]
fn english_plurals_follow_one_and_other() {
    let en = en();
    assert!(en
        .count("confirm-expiry", "days", 1)
        .starts_with("The link works for one day."));
    assert!(en
        .count("confirm-expiry", "days", 7)
        .starts_with("The link works for 7 days."));
    assert_eq!(
        en.t_with("rate-limit-body", &args(&[("seconds", 1.into())])),
        "Too many sign-ups from your network. Please try again in one second."
    );
    assert_eq!(
        en.t_with("rate-limit-body", &args(&[("seconds", 30.into())])),
        "Too many sign-ups from your network. Please try again in 30 seconds."
    );
}

#[test]
fn chinese_has_one_form_for_every_count() {
    let zh = zh();
    assert_eq!(
        zh.t_with("rate-limit-body", &args(&[("seconds", 1.into())])),
        "您所在的网络提交订阅过于频繁，请在 1 秒后再试。"
    );
    assert!(zh
        .count("confirm-expiry", "days", 7)
        .starts_with("此链接 7 天内有效。"));
}

#[test]
fn counts_in_messages_are_grouped_by_the_locale() {
    assert!(en()
        .count("confirm-expiry", "days", 12345)
        .starts_with("The link works for 12,345 days."));
    assert!(zh()
        .count("confirm-expiry", "days", 12345)
        .contains("12,345 天"));
    assert_eq!(en().number(1234567), "1,234,567");
    assert_eq!(zh().number(1234567), "1,234,567");
    assert_eq!(en().number(999), "999");
}

#[test]
fn dates_read_as_each_locale_writes_them() {
    let t = march_20_2020();
    assert_eq!(en().date_long(&t), "Friday, 20 March 2020");
    assert_eq!(zh().date_long(&t), "2020年3月20日 星期五");
    assert_eq!(en().date_short(&t), "20 March 2020");
    assert_eq!(zh().date_short(&t), "2020年3月20日");
    assert_eq!(en().datetime(&t), "Fri 20 Mar 2020, 09:00 UTC");
    let shanghai = t.with_timezone(&chrono_tz::Asia::Shanghai);
    assert_eq!(zh().datetime(&shanghai), "2020年3月20日 周五 17:00 CST");
}

#[test]
fn a_date_in_another_offset_keeps_its_own_day() {
    let late = chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2020, 3, 20, 23, 30, 0)
        .unwrap();
    assert_eq!(zh().date_long(&late), "2020年3月20日 星期五");
}

#[test]
fn a_user_catalog_overrides_one_message_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zh-CN")).unwrap();
    std::fs::write(
        dir.path().join("zh-CN").join("mine.ftl"),
        "mail-unsubscribe = 取消订阅\n",
    )
    .unwrap();
    let catalogs = Catalogs::load(dir.path(), "zh-CN").unwrap();
    let zh = catalogs.default_catalog();
    assert_eq!(zh.t("mail-unsubscribe"), "取消订阅");
    assert_eq!(zh.t("mail-view-in-browser"), "在浏览器中查看");
    assert!(catalogs.warnings().is_empty(), "{:?}", catalogs.warnings());
}

#[test]
fn a_missing_message_falls_back_to_english_with_one_warning_at_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("de")).unwrap();
    std::fs::write(
        dir.path().join("de").join("herald.ftl"),
        "mail-unsubscribe = Abbestellen\n",
    )
    .unwrap();
    let catalogs = Catalogs::load(dir.path(), "de").unwrap();
    let de = catalogs.default_catalog();
    assert_eq!(de.t("mail-unsubscribe"), "Abbestellen");
    assert_eq!(de.t("mail-view-in-browser"), "View in your browser");
    assert_eq!(de.t("mail-view-in-browser"), "View in your browser");
    let warnings = catalogs.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("locale de: "), "{}", warnings[0]);
    assert!(warnings[0].contains("mail-view-in-browser"));
    assert!(!warnings[0].contains("mail-unsubscribe,"));
}

#[test]
fn a_right_to_left_catalog_says_so_and_isolates_its_values() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ar")).unwrap();
    std::fs::write(
        dir.path().join("ar").join("herald.ftl"),
        "signup-heading = اشترك في { $newsletter }\n",
    )
    .unwrap();
    let catalogs = Catalogs::load(dir.path(), "ar").unwrap();
    let ar = catalogs.default_catalog();
    assert_eq!(ar.direction(), Direction::Rtl);
    assert_eq!(ar.direction().start(), "right");
    let heading = ar.t_with("signup-heading", &args(&[("newsletter", "Weekly".into())]));
    assert_eq!(heading, "اشترك في \u{2068}Weekly\u{2069}");
    assert_eq!(en().direction(), Direction::Ltr);
}

#[test]
fn an_unknown_locale_is_a_clear_error_naming_the_known_ones() {
    let err = Catalogs::load(Path::new("/nonexistent/herald-locales"), "fr")
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"fr\" has no catalog"), "{err}");
    assert!(err.contains("en, zh-CN"), "{err}");
    let err = Catalogs::load(Path::new("/nonexistent"), "not a tag!")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a BCP 47 language tag"), "{err}");
}

#[test]
fn a_language_finds_its_regional_catalog() {
    let catalogs = Catalogs::built_in();
    assert_eq!(catalogs.get("zh").unwrap().tag(), "zh-CN");
    assert_eq!(catalogs.get("en-GB").unwrap().tag(), "en");
}

#[test]
fn a_syntax_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("en")).unwrap();
    std::fs::write(dir.path().join("en").join("bad.ftl"), "oops = { \n").unwrap();
    let err = Catalogs::load(dir.path(), "en").unwrap_err().to_string();
    assert!(err.contains("bad.ftl"), "{err}");
}

#[test]
fn the_built_in_catalogs_are_complete_and_agree() {
    let catalogs = Catalogs::built_in();
    assert!(catalogs.warnings().is_empty(), "{:?}", catalogs.warnings());
    let (reports, _) = check(&catalogs, &[]);
    for report in reports {
        assert!(
            report.missing.is_empty(),
            "{}: {:?}",
            report.tag,
            report.missing
        );
        assert!(
            report.unused.is_empty(),
            "{}: {:?}",
            report.tag,
            report.unused
        );
    }
}

#[test]
fn templates_name_the_messages_they_use() {
    assert_eq!(
        templates::ids_used(r#"{{ t("a-b") }} {{ t('c', x=1) }} {{ format("no") }} {{ at("z") }}"#),
        vec!["a-b".to_string(), "c".to_string()]
    );
}

#[test]
fn font_stacks_follow_the_script() {
    let zh: LanguageIdentifier = "zh-CN".parse().unwrap();
    assert!(font_family(&zh)
        .starts_with("'PingFang SC', 'Hiragino Sans GB', 'Microsoft YaHei', 'Noto Sans CJK SC'"));
    let en: LanguageIdentifier = "en".parse().unwrap();
    assert!(!font_family(&en).contains("CJK"));
}

fn render(locale: &str, source: &str, ctx: minijinja::Value) -> String {
    let catalogs = Arc::new(Catalogs::build(BTreeMap::new(), locale).unwrap());
    let mut env = minijinja::Environment::new();
    templates::register(&mut env, catalogs);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.render_str(source, ctx).unwrap()
}

#[test]
fn markup_in_a_variable_keeps_its_tags_and_the_sentence_is_escaped() {
    let source = r#"{% set link %}<a href="/admin/issues/x">{{ title }}</a>{% endset %}{{ t("home-next-issue", issue=link) }} {{ t("send-heading", title=title) }}"#;
    let ctx = minijinja::context! { title => "<b>Spring</b>" };
    let out = render("en", source, ctx.clone());
    assert_eq!(
        out,
        "It would send <a href=\"/admin/issues/x\">&lt;b&gt;Spring&lt;&#x2f;b&gt;</a>. \
         Send “&lt;b&gt;Spring&lt;&#x2f;b&gt;”?"
    );
    let out = render("zh-CN", source, ctx);
    assert!(
        out.starts_with("届时将发送<a href=\"/admin/issues/x\">&lt;b&gt;Spring"),
        "{out}"
    );
}

#[test]
fn date_and_datetime_filters_write_the_locales_way() {
    let source = r#"{{ d | date }}|{{ d | datetime }}|{{ z | datetime(tz="Asia/Shanghai") }}|{{ day | date }}|{{ bad | date }}|{{ none | date }}"#;
    let ctx = minijinja::context! {
        d => "2020-03-20T09:00:00+08:00",
        z => "2020-03-20T09:00:00Z",
        day => "2020-03-20",
        bad => "last Friday",
        none => (),
    };
    assert_eq!(
        render("en", source, ctx.clone()),
        "20 March 2020|Fri 20 Mar 2020, 09:00 +08:00|Fri 20 Mar 2020, 17:00 CST|20 March 2020|last Friday|"
    );
    assert_eq!(
        render("zh-CN", source, ctx),
        "2020年3月20日|2020年3月20日 周五 09:00 +08:00|2020年3月20日 周五 17:00 CST|2020年3月20日|last Friday|"
    );
}

#[test]
fn numbers_in_templates_are_grouped_and_plurals_chosen() {
    let source =
        r#"{{ n | number }} {{ t("send-confirm", count=n) }} / {{ t("send-confirm", count=1) }}"#;
    assert_eq!(
        render("en", source, minijinja::context! { n => 12345 }),
        "12,345 Yes, send it to 12,345 subscribers / Yes, send it to one subscriber"
    );
    assert_eq!(
        render("zh-CN", source, minijinja::context! { n => 12345 }),
        "12,345 确定发送给 12,345 位订阅者 / 确定发送给 1 位订阅者"
    );
}
