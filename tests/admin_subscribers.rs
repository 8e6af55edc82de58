//! The dashboard's subscriber page over a real socket: counts, search by address or name,
//! the status filter, paging, adding one, erasing one through its confirmation step, a CSV
//! import with its per-row report, and the export, each checked against the database; on
//! SQLite and on PostgreSQL.

mod support;

use herald::domain::SubscriberStatus;
use reqwest::StatusCode;
use support::app::{add_subscribers, addresses};
use support::dashboard::{csrf_in, Dashboard};
use support::postgres::Backend;
use support::server::{Relay, TestServer};

/// The addresses listed in a subscriber page's table, in order.
fn listed(html: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"<tr data-email="([^"]+)""#).unwrap();
    re.captures_iter(html).map(|c| c[1].to_string()).collect()
}

async fn status_of(server: &TestServer, email: &str) -> Option<SubscriberStatus> {
    let found = server
        .app
        .store
        .search_subscribers(email, None, 10, 0)
        .await
        .unwrap();
    found
        .subscribers
        .into_iter()
        .find(|s| s.email.eq_ignore_ascii_case(email))
        .map(|s| s.status)
}

on_both_backends! {
    async fn the_list_searches_filters_pages_and_counts(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        // 60 active readers, and a few others with names.
        add_subscribers(&server.app.store, &addresses("reader", 60)).await;
        let dashboard = Dashboard::log_in(&server).await;
        for (email, name, status) in [
            ("ada@example.net", "Ada Lovelace", "pending"),
            ("grace@example.net", "Grace Hopper", "unsubscribed"),
            ("linus@example.com", "Ada's friend", "active"),
        ] {
            let added = dashboard
                .post(
                    "/admin/subscribers",
                    &[("email", email), ("name", name), ("status", status)],
                )
                .await;
            assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
        }

        let all = dashboard.get("/admin/subscribers").await;
        assert_eq!(all.status, StatusCode::OK);
        // Counts: everyone, and each status (a filter link each).
        assert!(
            all.body.contains("<strong>63</strong> in all"),
            "{}",
            all.body
        );
        assert!(
            all.body.contains("<strong>61</strong> active"),
            "{}",
            all.body
        );
        assert!(
            all.body.contains("<strong>1</strong> pending"),
            "{}",
            all.body
        );
        assert!(all
            .body
            .contains(r#"href="/admin/subscribers?status=unsubscribed""#));
        // Paging: 50 on the first page, 13 on the second.
        assert_eq!(listed(&all.body).len(), 50);
        assert!(all.body.contains("1–50 of 63"), "{}", all.body);
        assert!(all
            .body
            .contains(r#"href="/admin/subscribers?page=2" rel="next""#));
        let second = dashboard.get("/admin/subscribers?page=2").await;
        assert_eq!(listed(&second.body).len(), 13);
        assert!(second.body.contains("51–63 of 63"), "{}", second.body);
        assert!(second.body.contains("Page 2 of 2"));
        let first_page = listed(&all.body);
        assert!(listed(&second.body).iter().all(|e| !first_page.contains(e)));
        // A page past the end shows the last one; a page that is not a number, the first.
        let past = dashboard.get("/admin/subscribers?page=99").await;
        assert_eq!(listed(&past.body), listed(&second.body));
        let junk = dashboard.get("/admin/subscribers?page=abc").await;
        assert_eq!(junk.status, StatusCode::OK);
        assert_eq!(listed(&junk.body), first_page);

        // Search by a part of the name or of the address, any case.
        let ada = dashboard.get("/admin/subscribers?q=ada").await;
        assert_eq!(
            listed(&ada.body),
            vec!["ada@example.net", "linus@example.com"]
        );
        let domain = dashboard.get("/admin/subscribers?q=EXAMPLE.NET").await;
        assert_eq!(
            listed(&domain.body),
            vec!["ada@example.net", "grace@example.net"]
        );
        // With a status filter.
        let active_ada = dashboard
            .get("/admin/subscribers?q=ada&status=active")
            .await;
        assert_eq!(listed(&active_ada.body), vec!["linus@example.com"]);
        let unsubscribed = dashboard
            .get("/admin/subscribers?status=unsubscribed")
            .await;
        assert_eq!(listed(&unsubscribed.body), vec!["grace@example.net"]);
        assert!(unsubscribed
            .body
            .contains(r#"<option value="unsubscribed" selected>"#));
        let none = dashboard.get("/admin/subscribers?q=nobody-here").await;
        assert!(listed(&none.body).is_empty());
        assert!(none.body.contains("No subscriber matches."));
        // Markup in a search is shown as text.
        let hostile = dashboard
            .get("/admin/subscribers?q=%3Cscript%3Ealert(1)%3C/script%3E")
            .await;
        assert!(!hostile.body.contains("<script>alert(1)"));
        assert!(hostile.body.contains("&lt;script&gt;alert(1)"));
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn adding_a_subscriber_records_it_and_a_refusal_keeps_the_form(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        let dashboard = Dashboard::log_in(&server).await;

        let added = dashboard
            .post(
                "/admin/subscribers",
                &[
                    ("email", " Ada@Example.NET "),
                    ("name", "Ada"),
                    ("status", "active"),
                ],
            )
            .await;
        assert_eq!(added.status, StatusCode::SEE_OTHER);
        assert!(
            added.location().contains("notice=added"),
            "{}",
            added.location()
        );
        assert_eq!(
            status_of(&server, "Ada@example.net").await,
            Some(SubscriberStatus::Active)
        );
        let shown = dashboard.get(added.location()).await;
        assert!(shown.body.contains("The subscriber was added."));
        assert_eq!(listed(&shown.body), vec!["Ada@example.net"]);
        assert!(
            shown.body.contains(">dashboard</td>"),
            "the source is recorded"
        );

        // The same address again: refused with the reason, the form keeps what was typed.
        let again = dashboard
            .post(
                "/admin/subscribers",
                &[
                    ("email", "ada@example.net"),
                    ("name", "Ada Two"),
                    ("status", "pending"),
                ],
            )
            .await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
        assert!(again.body.contains("already on the list"), "{}", again.body);
        assert!(again.body.contains(r#"value="Ada Two""#));
        assert!(again.body.contains(r#"<option value="pending" selected>"#));
        // A bad address and a bad name are refused the same way, and nothing is added.
        let bad = dashboard
            .post("/admin/subscribers", &[("email", "not an address")])
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(
            bad.body.contains("the address is not valid"),
            "{}",
            bad.body
        );
        let bad_name = dashboard
            .post(
                "/admin/subscribers",
                &[("email", "eve@example.net"), ("name", "Eve\u{202E}evE")],
            )
            .await;
        assert_eq!(bad_name.status, StatusCode::BAD_REQUEST);
        assert_eq!(status_of(&server, "eve@example.net").await, None);

        // Without the session's CSRF token nothing is added.
        let forged = dashboard
            .post_raw("/admin/subscribers", &[("email", "mallory@example.net")])
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert_eq!(status_of(&server, "mallory@example.net").await, None);
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn erasing_takes_a_confirmation_step(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        add_subscribers(&server.app.store, &["gone@example.net".to_string()]).await;
        let dashboard = Dashboard::log_in(&server).await;

        // The list links each row to its confirmation page, which erases nothing by itself.
        let list = dashboard.get("/admin/subscribers").await;
        assert!(list
            .body
            .contains(r#"href="/admin/subscribers/erase?email=gone%40example.net""#));
        let confirm = dashboard
            .get("/admin/subscribers/erase?email=gone%40example.net")
            .await;
        assert_eq!(confirm.status, StatusCode::OK);
        assert!(
            confirm.body.contains("Erase gone@example.net?"),
            "{}",
            confirm.body
        );
        assert!(confirm.body.contains("cannot be undone"));
        assert!(confirm
            .body
            .contains(r#"name="confirm" value="yes" required"#));
        assert_eq!(
            status_of(&server, "gone@example.net").await,
            Some(SubscriberStatus::Active)
        );

        // Posting without ticking the box erases nothing.
        let csrf = csrf_in(&confirm.body);
        let unticked = dashboard
            .post_raw(
                "/admin/subscribers/erase",
                &[("csrf", &csrf), ("email", "gone@example.net")],
            )
            .await;
        assert_eq!(unticked.status, StatusCode::BAD_REQUEST);
        assert!(unticked.body.contains("Tick the confirmation box"));
        assert!(status_of(&server, "gone@example.net").await.is_some());
        // Nor does a form without the token.
        let forged = dashboard
            .post_raw(
                "/admin/subscribers/erase",
                &[("email", "gone@example.net"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert!(status_of(&server, "gone@example.net").await.is_some());

        // Ticked: erased, and blocked from a later add.
        let erased = dashboard
            .post_raw(
                "/admin/subscribers/erase",
                &[
                    ("csrf", &csrf),
                    ("email", "gone@example.net"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(erased.status, StatusCode::SEE_OTHER);
        assert_eq!(erased.location(), "/admin/subscribers?notice=erased");
        assert_eq!(status_of(&server, "gone@example.net").await, None);
        let after = dashboard.get(erased.location()).await;
        assert!(after.body.contains("The subscriber was erased."));
        let back = dashboard
            .post("/admin/subscribers", &[("email", "gone@example.net")])
            .await;
        assert_eq!(back.status, StatusCode::BAD_REQUEST);
        assert!(back.body.contains("erased"), "{}", back.body);

        // An address nobody holds: the page says so, and erasing it still blocks it.
        let unknown = dashboard
            .get("/admin/subscribers/erase?email=never%40example.net")
            .await;
        assert!(unknown.body.contains("No subscriber holds this address"));
        let blocked = dashboard
            .post(
                "/admin/subscribers/erase",
                &[("email", "never@example.net"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(
            blocked.location(),
            "/admin/subscribers?notice=erased-not-held"
        );
        server.stop().await.unwrap();
    }
}

on_both_backends! {
    async fn an_import_reports_every_row_and_the_export_holds_everyone(backend: Backend) {
        let server = TestServer::start_on(backend, Relay::Outbox, |_| {}).await;
        add_subscribers(&server.app.store, &["old@example.net".to_string()]).await;
        let dashboard = Dashboard::log_in(&server).await;
        let csrf = dashboard.csrf().await;

        let csv = "email,name,city\n\
                   new1@example.net,New One,Oslo\n\
                   not-an-address,Bad,Rome\n\
                   OLD@example.net,Old,Paris\n\
                   new2@example.net,=HYPERLINK(\"x\"),Lima\n";
        let report = dashboard
            .upload(
                "/admin/subscribers/import",
                Some(&csrf),
                "list.csv",
                csv.as_bytes(),
            )
            .await;
        assert_eq!(report.status, StatusCode::OK, "{}", report.body);
        assert!(report.body.contains("list.csv"));
        assert!(
            report
                .body
                .contains(r#"<strong data-count="imported">2</strong>"#),
            "{}",
            report.body
        );
        assert!(report
            .body
            .contains(r#"<strong data-count="duplicates">1</strong>"#));
        assert!(report
            .body
            .contains(r#"<strong data-count="rejected">1</strong>"#));
        // The rejected row with its line number (the header is line 1).
        let row = regex::Regex::new(
            r#"<tr><td data-label="Line">3</td><td data-label="Reason">[^<]+</td></tr>"#,
        )
        .unwrap();
        assert!(row.is_match(&report.body), "{}", report.body);
        assert_eq!(
            status_of(&server, "new1@example.net").await,
            Some(SubscriberStatus::Active)
        );
        assert_eq!(
            status_of(&server, "new2@example.net").await,
            Some(SubscriberStatus::Active)
        );

        // A file without an email column is refused as a whole, saying why.
        let refused = dashboard
            .upload(
                "/admin/subscribers/import",
                Some(&csrf),
                "bad.csv",
                b"name\nnobody\n",
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(
            refused.body.contains("The file was not imported"),
            "{}",
            refused.body
        );
        // No file, and no token: nothing happens.
        let empty = dashboard
            .upload("/admin/subscribers/import", Some(&csrf), "empty.csv", b"")
            .await;
        assert_eq!(empty.status, StatusCode::BAD_REQUEST);
        assert!(empty.body.contains("Choose a CSV file"));
        let forged = dashboard
            .upload(
                "/admin/subscribers/import",
                None,
                "list.csv",
                b"email\nforged@example.net\n",
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert_eq!(status_of(&server, "forged@example.net").await, None);

        // The export: a CSV download with everyone, formulas defused.
        let export = dashboard.get("/admin/subscribers/export").await;
        assert_eq!(export.status, StatusCode::OK);
        assert_eq!(export.headers["content-type"], "text/csv; charset=utf-8");
        let disposition = export.headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"subscribers-"),
            "{disposition}"
        );
        let mut reader = csv::Reader::from_reader(export.body.as_bytes());
        let headers = reader.headers().unwrap().clone();
        assert_eq!(&headers[1], "email");
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let emails: Vec<&str> = rows.iter().map(|r| &r[1]).collect();
        assert_eq!(
            emails,
            vec!["old@example.net", "new1@example.net", "new2@example.net"]
        );
        assert_eq!(&rows[2][2], "'=HYPERLINK(\"x\")");
        assert!(rows[1][10].contains("Oslo"), "attributes: {}", &rows[1][10]);

        // Without a session, nothing is exported.
        let anonymous = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(server.url("/admin/subscribers/export"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
        server.stop().await.unwrap();
    }
}
