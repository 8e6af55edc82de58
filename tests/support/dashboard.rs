//! A logged-in dashboard session over a real socket (reqwest, no redirects followed): pages,
//! forms with the session's CSRF token, and multipart uploads.

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

use super::server::TestServer;

/// One answer: status, headers and body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// The `Location` of a redirect.
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A session of the dashboard of `server`.
pub struct Dashboard<'a> {
    pub server: &'a TestServer,
    /// `herald_admin=…`, as sent back.
    pub cookie: String,
    client: reqwest::Client,
}

impl<'a> Dashboard<'a> {
    /// Logs in with the server's admin token.
    pub async fn log_in(server: &'a TestServer) -> Dashboard<'a> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = client
            .post(server.url("/admin/login"))
            .form(&[("token", server.admin_token())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap();
        let cookie = set_cookie.split(';').next().unwrap().trim().to_string();
        Dashboard {
            server,
            cookie,
            client,
        }
    }

    async fn answer(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .client
            .get(self.server.url(path))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        Self::answer(response).await
    }

    /// The session's CSRF token, from the forms of the home page.
    pub async fn csrf(&self) -> String {
        csrf_in(&self.get("/admin").await.body)
    }

    /// `POST path` with `form` and the session's CSRF token.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let csrf = self.csrf().await;
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post_raw(path, &fields).await
    }

    /// `POST path` with exactly `form` (no token added).
    pub async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let response = self
            .client
            .post(self.server.url(path))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        Self::answer(response).await
    }

    /// `POST path` as `multipart/form-data`: `csrf` (when given) and a file field `file`.
    pub async fn upload(
        &self,
        path: &str,
        csrf: Option<&str>,
        file_name: &str,
        content: &[u8],
    ) -> Answer {
        // Written out by hand, as a browser sends it.
        let boundary = "----herald-test-boundary-7d1f3c";
        let mut body = Vec::new();
        if let Some(csrf) = csrf {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = self
            .client
            .post(self.server.url(path))
            .header("cookie", &self.cookie)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        Self::answer(response).await
    }
}

/// The CSRF token in a page's forms.
pub fn csrf_in(html: &str) -> String {
    let re = regex::Regex::new(r#"name="csrf" value="([^"]+)""#).unwrap();
    re.captures(html).expect("a form with a CSRF token")[1].to_string()
}
