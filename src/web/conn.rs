//! The web server's connections: how many are served at once, and how long a client may
//! take. A few hundred clients that connect and then send nothing, or send half a request
//! and stall, must not hold file descriptors and tasks for ever.
//!
//! [`serve`] accepts at most [`ConnectionLimits::max_connections`] connections at a time;
//! further ones wait in the kernel's listen backlog until one closes (an accepted connection
//! is never dropped for being one too many). Each connection is served by hyper's HTTP/1
//! server under a watchdog that closes it when the client is too slow:
//!
//! | the client | limit | then |
//! | --- | --- | --- |
//! | connects and sends no complete header | `header` from connecting | closed |
//! | starts a header and does not finish it | `header` from its first byte | closed |
//! | sends a header and not the whole body | `body` from the header | 408, closed |
//! | keeps the connection open after a response and sends nothing | `keep_alive` | closed |
//!
//! The time a handler takes is not limited here: a request whose body has arrived is
//! answered however long it takes. On shutdown, idle connections close at once and requests
//! in flight finish (hyper's graceful shutdown); [`serve`] returns when every connection
//! has closed.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::WebSettings;

/// How many connections, and how slow a client may be (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header: Duration,
    pub body: Duration,
    pub keep_alive: Duration,
}

impl ConnectionLimits {
    /// `web.max_connections`, `web.header_timeout_seconds`, `web.body_timeout_seconds` and
    /// `web.keep_alive_seconds`.
    pub fn from_settings(web: &WebSettings) -> Self {
        Self {
            max_connections: (web.max_connections as usize).max(1),
            header: Duration::from_secs(web.header_timeout_seconds.max(1)),
            body: Duration::from_secs(web.body_timeout_seconds.max(1)),
            keep_alive: Duration::from_secs(web.keep_alive_seconds.max(1)),
        }
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then stops
/// accepting, lets requests in flight finish, and returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // A slot first, then accept: connections over the cap wait in the backlog.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::error!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let app = app.clone();
        let stop = stop_rx.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, app, limits, stop).await;
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Errors of one connection that was reset before it was accepted: not the listener's.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What one connection has been doing, shared by its socket, its service and its watchdog.
/// Times are milliseconds since the connection was accepted.
#[derive(Debug)]
struct Activity {
    started: Instant,
    /// Requests handed to the router and not answered yet.
    in_flight: AtomicUsize,
    /// When the last answer was sent (0: none yet).
    last_answer: AtomicU64,
    /// Whether any request was answered (so the connection is kept alive, not new).
    answered: AtomicBool,
    /// When the first byte of the next request arrived, plus one (0: none since the last
    /// answer).
    head_started: AtomicU64,
    /// Tells the watchdog that its deadline may have moved.
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_answer: AtomicU64::new(0),
            answered: AtomicBool::new(false),
            head_started: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn at(&self, millis: u64) -> Instant {
        self.started + Duration::from_millis(millis)
    }

    /// Bytes arrived.
    fn read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let now = self.now() + 1;
            if self
                .head_started
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.changed.notify_one();
            }
        }
    }

    /// A whole header arrived: the request goes to the router.
    fn request(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        self.changed.notify_one();
    }

    /// The answer has been sent.
    fn answer(&self) {
        self.last_answer.store(self.now(), Ordering::Release);
        self.answered.store(true, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    /// When the connection is too slow or idle to keep, as things stand; `None` while a
    /// request is being handled.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head = self.head_started.load(Ordering::Acquire);
        if head > 0 {
            return Some(self.at(head - 1) + limits.header);
        }
        if self.answered.load(Ordering::Acquire) {
            Some(self.at(self.last_answer.load(Ordering::Acquire)) + limits.keep_alive)
        } else {
            Some(self.at(0) + limits.header)
        }
    }
}

/// Serves one connection until the client closes it, it is too slow (see the module's
/// table), or the server stops.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service_activity = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let app = app.clone();
        let activity = service_activity.clone();
        activity.request();
        async move {
            let response = handle(app, peer, request, limits.body).await;
            let (parts, body) = response.into_parts();
            let body = Body::new(AnsweredBody {
                inner: body,
                activity: Some(activity),
            });
            Ok::<_, Infallible>(Response::from_parts(parts, body))
        }
    });
    let mut connection = pin!(hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service));
    let mut stopping = false;
    loop {
        // While a request is handled, look again after the shortest limit.
        let check = activity
            .deadline(&limits)
            .unwrap_or_else(|| Instant::now() + limits.header.min(limits.keep_alive));
        let changed = activity.changed.notified();
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                // No request in flight: nothing to finish.
                if activity.deadline(&limits).is_some() {
                    return;
                }
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
            () = changed => {}
            () = tokio::time::sleep_until(check) => {
                if activity.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!("closing a slow or idle connection");
                    return;
                }
            }
        }
    }
}

/// Runs one request through the router, with the client's address and a deadline on its
/// body; a body that does not arrive in time gets 408 and closes the connection.
async fn handle(
    app: Router,
    peer: SocketAddr,
    request: Request<hyper::body::Incoming>,
    body_timeout: Duration,
) -> Response<Body> {
    let (mut parts, incoming) = request.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    let timed_out = Arc::new(AtomicBool::new(false));
    let body = if incoming.is_end_stream() {
        Body::new(incoming)
    } else {
        Body::new(DeadlineBody {
            inner: Body::new(incoming),
            deadline: Box::pin(tokio::time::sleep(body_timeout)),
            timed_out: timed_out.clone(),
        })
    };
    let response = match app.oneshot(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if timed_out.load(Ordering::Acquire) {
        tracing::info!("request body not received in time");
        let mut late = Response::new(Body::from("The request body did not arrive in time.\n"));
        *late.status_mut() = StatusCode::REQUEST_TIMEOUT;
        let headers = late.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return late;
    }
    response
}

/// A request body that fails once its deadline passes before its end (and sets
/// `timed_out`), so a handler reading it gives up instead of waiting for ever.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.timed_out.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        ready!(self.deadline.as_mut().poll(cx));
        self.timed_out.store(true, Ordering::Release);
        Poll::Ready(Some(Err(axum::Error::new(io::Error::new(
            io::ErrorKind::TimedOut,
            "the request body did not arrive in time",
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that tells the connection's [`Activity`] when it has been sent (or
/// dropped): only then is the connection idle.
struct AnsweredBody {
    inner: Body,
    activity: Option<Arc<Activity>>,
}

impl AnsweredBody {
    fn done(&mut self) {
        if let Some(activity) = self.activity.take() {
            activity.answer();
        }
    }
}

impl Drop for AnsweredBody {
    fn drop(&mut self) {
        self.done();
    }
}

impl HttpBody for AnsweredBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if frame.is_none() {
            self.done();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling the connection's [`Activity`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 4,
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_follows_what_the_connection_is_doing() {
        let a = Activity::new();
        let start = a.at(0);
        // New: a header is due within `header` of connecting.
        assert_eq!(a.deadline(&limits()), Some(start + limits().header));
        tokio::time::advance(Duration::from_secs(2)).await;
        a.read();
        // A header begun at 2 s is due at 2 s + `header`; more bytes do not move it.
        assert_eq!(
            a.deadline(&limits()),
            Some(start + Duration::from_secs(2) + limits().header)
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        a.read();
        assert_eq!(
            a.deadline(&limits()),
            Some(start + Duration::from_secs(2) + limits().header)
        );
        // While the request is handled, nothing is due, however long it takes.
        a.request();
        tokio::time::advance(Duration::from_secs(100)).await;
        a.read();
        assert_eq!(a.deadline(&limits()), None);
        // Answered: idle, kept alive for `keep_alive`.
        a.answer();
        assert_eq!(
            a.deadline(&limits()),
            Some(start + Duration::from_secs(103) + limits().keep_alive)
        );
    }
}
