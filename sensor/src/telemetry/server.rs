//! The HTTP server of /metrics and /healthz: hyper's HTTP/1 server on a
//! single-threaded tokio runtime of its own thread, so that scrapes never
//! take a core from the packet path. Connections are bounded in number and
//! in time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::TEXT_FORMAT;

use super::{Telemetry, TelemetryError};

/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest wait for a request's head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection (keep-alive included) stays open.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause after a failed accept (out of file descriptors), so the loop does
/// not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// A running /metrics server (it lives as long as the process).
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` now (so a busy port is an error here) and serves on a
    /// thread of its own.
    pub fn start(addr: SocketAddr, telemetry: Arc<Telemetry>) -> Result<Self, TelemetryError> {
        let bind = |source| TelemetryError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(TelemetryError::Thread)?;
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || runtime.block_on(serve(listener, telemetry)))
            .map_err(TelemetryError::Thread)?;
        Ok(MetricsServer { addr: local })
    }

    /// The address served (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

async fn serve(listener: std::net::TcpListener, telemetry: Arc<Telemetry>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let telemetry = Arc::clone(&telemetry);
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let answer = respond(&telemetry, req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(answer) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(REQUEST_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            // A connection that outlives its time is dropped (closed).
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(permit);
        });
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

const PLAIN: &str = "text/plain; charset=utf-8";

/// The answer to `method path`.
pub fn respond(telemetry: &Telemetry, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            format!("{method} is not served: use GET\n"),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/metrics" => match telemetry.render() {
            Ok(body) => text(StatusCode::OK, TEXT_FORMAT, body),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, PLAIN, format!("{e}\n")),
        },
        "/healthz" => {
            let health = telemetry.health();
            let status = if health.ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            text(status, PLAIN, health.reason + "\n")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            format!("{path}: not found; spanwatch serves /metrics and /healthz\n"),
        ),
    }
}
