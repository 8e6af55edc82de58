//! Slow and idle clients over real sockets: a client that sends half a header, half a body,
//! or nothing after its answer is disconnected after the matching `web.*` limit, and no more
//! than `web.max_connections` are served at once while the server keeps answering.

mod support;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::server::{Relay, TestServer};

/// Far longer than any limit set here: a read that takes this long means the server never
/// hung up.
const NEVER: Duration = Duration::from_secs(30);

async fn start(tweak: impl FnOnce(&mut herald::config::WebSettings)) -> TestServer {
    TestServer::start(Relay::Outbox, |s| tweak(&mut s.web)).await
}

/// Connects and sends `bytes`, then sends nothing more.
async fn stall(server: &TestServer, bytes: &str) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(bytes.as_bytes()).await.unwrap();
    stream
}

/// Everything the server sends until it closes the connection, and how long that took;
/// `None` if it was still open after [`NEVER`].
async fn until_closed(stream: &mut TcpStream) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(NEVER, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
    Some((
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    ))
}

async fn health(server: &TestServer) -> reqwest::StatusCode {
    reqwest::get(server.url("/health")).await.unwrap().status()
}

const HALF_A_HEADER: &str = "GET /health HTTP/1.1\r\nHost: herald.test\r\nUser-Ag";

#[tokio::test]
async fn clients_stalling_in_their_header_are_disconnected_and_health_is_still_answered() {
    let server = start(|web| {
        web.header_timeout_seconds = 1;
        web.max_connections = 4;
    })
    .await;
    let mut stalled = Vec::new();
    for _ in 0..12 {
        stalled.push(stall(&server, HALF_A_HEADER).await);
    }
    // Twelve slow clients and four slots: the server gets to /health only because it hangs
    // up on them.
    let answered = tokio::time::timeout(NEVER, health(&server)).await;
    assert_eq!(
        answered.expect("/health answered while slow clients are connected"),
        200
    );
    for (i, stream) in stalled.iter_mut().enumerate() {
        let (received, _) = until_closed(stream)
            .await
            .unwrap_or_else(|| panic!("slow client {i} was never disconnected"));
        assert!(
            !received.contains("200 OK"),
            "half a header is not answered: {received}"
        );
    }
    // One that connects and sends nothing at all is hung up on too.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let (_, took) = until_closed(&mut silent)
        .await
        .expect("a silent client is disconnected");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_stalling_in_its_body_gets_408_and_is_disconnected() {
    let server = start(|web| {
        web.body_timeout_seconds = 1;
    })
    .await;
    let mut stream = stall(
        &server,
        "POST /subscribe HTTP/1.1\r\nHost: herald.test\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=a",
    )
    .await;
    let (received, took) = until_closed(&mut stream)
        .await
        .expect("a client stalling in its body is disconnected");
    assert!(
        received.starts_with("HTTP/1.1 408"),
        "the answer is 408: {received}"
    );
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert_eq!(health(&server).await, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_time() {
    let server = start(|web| {
        web.keep_alive_seconds = 1;
        web.header_timeout_seconds = 60;
    })
    .await;
    let mut stream = stall(&server, "GET /health HTTP/1.1\r\nHost: herald.test\r\n\r\n").await;
    let (received, took) = until_closed(&mut stream)
        .await
        .expect("an idle connection is closed");
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(
        !received.to_ascii_lowercase().contains("connection: close"),
        "the answer itself keeps the connection alive: {received}"
    );
    assert!(took >= Duration::from_millis(500), "{took:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let server = start(|web| {
        web.max_connections = 2;
        web.header_timeout_seconds = 600;
        web.keep_alive_seconds = 600;
    })
    .await;
    let first = stall(&server, HALF_A_HEADER).await;
    let _second = stall(&server, HALF_A_HEADER).await;
    let url = server.url("/health");
    let mut third = tokio::spawn(async move { reqwest::get(url).await.unwrap().status() });
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut third)
            .await
            .is_err(),
        "a third connection is served while two hold both slots"
    );
    // One slot frees: the waiting connection is served.
    drop(first);
    let status = tokio::time::timeout(NEVER, third)
        .await
        .expect("the waiting connection is served once a slot frees")
        .unwrap();
    assert_eq!(status, 200);
    server.stop().await.unwrap();
}

#[test]
fn the_limits_must_be_positive() {
    for key in [
        "header_timeout_seconds",
        "body_timeout_seconds",
        "keep_alive_seconds",
        "max_connections",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, format!("[web]\n{key} = 0\n")).unwrap();
        let error = herald::config::Settings::load_with_env(&path, true, Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("web.{key}")) && error.contains("at least 1"),
            "{error}"
        );
    }
}
