//! The HTTP server loop: accepts connections up to a limit, speaks TLS when the web config
//! says so, closes connections that stay idle or send their headers too slowly, applies the
//! web config's rate limit and response headers, and shuts down gracefully.
//!
//! axum's own `serve` has none of these limits: 1,100 idle connections under a 1,024
//! file-descriptor limit made `/-/ready` time out, and idle or half-sent connections stayed
//! open for good.

mod body;
pub mod client_rate;
pub mod tls;
pub mod web_config;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;
use tracing::{debug, warn};

pub use web_config::{WebConfig, WebConfigWatch};

/// Connection limits (`server:` in medic.yml).
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// A connection that sends no complete request headers for this long is closed: idle
    /// keep-alive connections and half-sent requests alike.
    pub idle_timeout: Duration,
    /// Time allowed for a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time allowed from a request's headers to the end of its body; a body still arriving
    /// then fails the request (408).
    pub read_timeout: Duration,
}

/// Connection counters (`medic_http_connections*`).
#[derive(Clone, Default)]
pub struct ConnMetrics {
    /// Connections open now.
    pub open: Gauge,
    /// Connections refused or closed by a limit, by reason.
    pub refused: Family<Vec<(&'static str, &'static str)>, Counter>,
}

impl ConnMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "medic_http_connections",
            "HTTP connections open now",
            self.open.clone(),
        );
        r.register(
            "medic_http_connections_refused",
            "HTTP connections and requests refused by a limit, by reason (max_connections, tls_handshake, client_san, rate_limit, read_timeout)",
            self.refused.clone(),
        );
    }

    fn refuse(&self, reason: &'static str) {
        self.refused.get_or_create(&vec![("reason", reason)]).inc();
    }
}

/// A token bucket: `burst` requests at once, then one per `interval`.
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Everything a connection needs besides its socket.
#[derive(Clone)]
pub struct Server {
    pub router: Router,
    pub web: Option<Arc<WebConfigWatch>>,
    pub limits: ServeLimits,
    pub metrics: ConnMetrics,
    bucket: Arc<Mutex<Bucket>>,
    /// What serves when there is no web config (made once, not per request).
    plain: Arc<WebConfig>,
}

impl Server {
    pub fn new(
        router: Router,
        web: Option<Arc<WebConfigWatch>>,
        limits: ServeLimits,
        metrics: ConnMetrics,
    ) -> Self {
        Server {
            router,
            web,
            limits,
            metrics,
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: f64::MAX,
                last: Instant::now(),
            })),
            plain: Arc::new(WebConfig::plain()),
        }
    }

    fn web(&self) -> Arc<WebConfig> {
        match &self.web {
            Some(w) => w.current(),
            None => self.plain.clone(),
        }
    }

    /// Serves `listener` until `shutdown` completes, then lets open requests finish (up to
    /// 10 s).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        // Connections watch `stop` and finish gracefully when it turns true; each holds a slot
        // of `slots` until it ends, so the shutdown waits for all slots to come back.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let slots = Arc::new(tokio::sync::Semaphore::new(self.limits.max_connections));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        warn!(error = %e, "accepting a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                self.metrics.refuse("max_connections");
                tokio::spawn(refuse_connection(stream));
                continue;
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            let stop = stop_rx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                server.metrics.open.inc();
                server.connection(stream, peer, stop).await;
                server.metrics.open.dec();
            });
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let all = self.limits.max_connections.min(u32::MAX as usize) as u32;
        if tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(all))
            .await
            .is_err()
        {
            debug!("connections still open after 10 s; closing them");
        }
        Ok(())
    }

    async fn connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let web = self.web();
        match web.tls.clone() {
            None => self.http(stream, peer, stop).await,
            Some(tls) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                let accepted = tokio::time::timeout(
                    self.limits.tls_handshake_timeout,
                    acceptor.accept(stream),
                )
                .await;
                let stream = match accepted {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        debug!(%peer, error = %e, "TLS handshake failed");
                        self.metrics.refuse("tls_handshake");
                        return;
                    }
                    Err(_) => {
                        self.metrics.refuse("tls_handshake");
                        return;
                    }
                };
                if !web.allowed_sans.is_empty() {
                    let ok = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .is_some_and(|c| tls::san_allowed(c, &web.allowed_sans));
                    if !ok {
                        debug!(%peer, "client certificate carries none of client_allowed_sans");
                        self.metrics.refuse("client_san");
                        return;
                    }
                }
                self.http(stream, peer, stop).await
            }
        }
    }

    async fn http<IO>(&self, io: IO, peer: SocketAddr, mut stop: tokio::sync::watch::Receiver<bool>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let server = self.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let server = server.clone();
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            let expired = Arc::new(AtomicBool::new(false));
            let body = body::Deadline::new(body, server.limits.read_timeout, expired.clone());
            let req = Request::from_parts(parts, axum::body::Body::new(body));
            async move {
                let mut resp = server.request(req).await;
                if expired.load(Ordering::Relaxed) {
                    // The handler saw a failed body; say why, with the status that means it.
                    server.metrics.refuse("read_timeout");
                    resp = plain(
                        StatusCode::REQUEST_TIMEOUT,
                        "request body not received in time (server.read_timeout)\n",
                    );
                }
                if matches!(
                    resp.status(),
                    StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
                ) {
                    // The rest of the body is not read: the connection cannot carry another
                    // request, and a client must not pool it.
                    resp.headers_mut().insert(
                        header::CONNECTION,
                        header::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, Infallible>(resp)
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.idle_timeout)
            .max_buf_size(1 << 20);
        // Upgrades: websockets (`/loki/api/v1/tail`).
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut conn = std::pin::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = async { drop(stop.wait_for(|s| *s).await) } => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            debug!(%peer, error = %e, "connection closed");
        }
    }

    async fn request(&self, req: Request<axum::body::Body>) -> Response<axum::body::Body> {
        let web = self.web();
        if let Some((interval, burst)) = web.rate_limit {
            if !self.take_token(interval, burst) {
                self.metrics.refuse("rate_limit");
                let mut r = plain(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many requests (rate_limit in the web config)\n",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                return r;
            }
        }
        let mut resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
        for (name, value) in &web.headers {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
        resp
    }

    fn take_token(&self, interval: Duration, burst: u32) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let cap = burst.max(1) as f64;
        let now = Instant::now();
        let refill = now.duration_since(b.last).as_secs_f64() / interval.as_secs_f64();
        b.tokens = (b.tokens.min(cap) + refill).min(cap);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn plain(code: StatusCode, text: &'static str) -> Response<axum::body::Body> {
    let mut r = Response::new(axum::body::Body::from(text));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Answers a connection over the limit with a 503 and closes it. It first waits briefly for the
/// client's request, so that HTTP clients read the 503 as the answer to what they sent rather
/// than as an unexpected message on a fresh connection.
async fn refuse_connection(mut stream: TcpStream) {
    let mut first = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_millis(250), stream.read(&mut first)).await;
    let body = "too many open connections (server.max_connections); retry shortly\n";
    let msg = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(msg.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
