//! What a standby serves while another replica leads: every request except `/-/healthy` is
//! forwarded to the leader named in the lease row (its `ha.advertise_url`), with its method,
//! path, query, headers and body, and the leader's answer comes back as it was given. So every
//! replica serves reads and accepts alerts, silences, acks and approvals, and they all see
//! the same state at once: the leader's, written to PostgreSQL. Without a live leader the
//! standby answers 503 with `Retry-After`, as while it starts.

use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

/// The largest request body a standby relays (remote write batches included).
const MAX_REQUEST_BYTES: usize = 64 << 20;

/// Marks a relayed request: a standby never relays one again (two replicas advertising one
/// URL would otherwise pass a request between them forever).
const RELAYED: &str = "x-medic-relayed-by";

/// The leader a standby forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderSeen {
    pub replica: String,
    pub url: String,
}

/// What a standby knows of the leader: set by the lease loop, read by the request handlers.
#[derive(Debug, Default)]
pub struct StandbyView {
    leader: RwLock<Option<LeaderSeen>>,
    /// This replica's name, once the lease loop starts.
    me: std::sync::OnceLock<String>,
}

impl StandbyView {
    pub fn set_me(&self, replica: &str) {
        let _ = self.me.set(replica.to_string());
    }

    pub fn set(&self, leader: Option<LeaderSeen>) {
        *self.leader.write().unwrap_or_else(|p| p.into_inner()) = leader;
    }

    pub fn leader(&self) -> Option<LeaderSeen> {
        self.leader
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Headers that belong to one connection, not to the request (RFC 9110 §7.6.1).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

fn unavailable(why: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "2")],
        why,
    )
        .into_response()
}

/// `/-/ready` on a standby: ready while it has a live leader to forward to.
pub async fn ready(view: Arc<StandbyView>) -> Response {
    match view.leader() {
        Some(l) => format!(
            "medic is Ready (a standby; requests are forwarded to the leader {}).\n",
            l.replica
        )
        .into_response(),
        None => unavailable(
            "medic is not ready: opening storage (replaying the WAL), or a standby waiting for a leader.\n"
                .into(),
        ),
    }
}

/// The client standbys forward with: no decompression (bodies pass through as they are), no
/// redirects followed, a short connect timeout and none on the whole request (a long query
/// takes what the leader's own limits allow).
pub fn client() -> Result<reqwest::Client, crate::Error> {
    reqwest::Client::builder()
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(2))
        .user_agent(concat!("medic/", env!("CARGO_PKG_VERSION"), " (standby)"))
        .build()
        .map_err(|e| crate::Error::Internal(format!("the standby's client: {e}")))
}

/// Forwards `req` to the leader, or says why it cannot.
pub async fn forward(view: Arc<StandbyView>, client: reqwest::Client, req: Request) -> Response {
    let Some(leader) = view.leader() else {
        return unavailable(
            "medic is starting: opening storage (replaying the WAL), or a standby waiting for a leader; try again shortly.\n"
                .into(),
        );
    };
    if req.headers().contains_key(RELAYED) {
        return (
            StatusCode::LOOP_DETECTED,
            format!(
                "this request was relayed by a standby to another standby; check that each replica's ha.advertise_url is its own (the lease names {} at {})\n",
                leader.replica, leader.url
            ),
        )
            .into_response();
    }
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", leader.url.trim_end_matches('/'));
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "a standby relays bodies of at most {} MiB; send this one to the leader",
                    MAX_REQUEST_BYTES >> 20
                ),
            )
                .into_response()
        }
    };
    let mut out = client
        .request(parts.method, &url)
        .header(RELAYED, view.me.get().map_or("standby", String::as_str))
        .body(body);
    // The Host and Origin the client sent go on as they were, so the leader's host and
    // same-origin checks judge the client's request, not the relay.
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            out = out.header(name, value);
        }
    }
    let resp = match out.send().await {
        Ok(r) => r,
        Err(e) => {
            return unavailable(format!(
                "the leader {} did not answer this standby: {}; try again shortly\n",
                leader.replica,
                e.without_url()
            ))
        }
    };
    let mut answer = Response::builder().status(resp.status().as_u16());
    for (name, value) in resp.headers() {
        if !hop_by_hop(name) {
            answer = answer.header(name, value);
        }
    }
    answer
        .body(Body::new(Relay::start(resp)))
        .unwrap_or_else(|e| unavailable(format!("relaying the leader's answer: {e}\n")))
}

/// The leader's answer body, relayed chunk by chunk as it arrives.
struct Relay(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl Relay {
    fn start(mut resp: reqwest::Response) -> Relay {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            loop {
                let next = match resp.chunk().await {
                    Ok(Some(c)) => Ok(c),
                    Ok(None) => return,
                    Err(e) => Err(std::io::Error::other(e.without_url())),
                };
                let failed = next.is_err();
                if tx.send(next).await.is_err() || failed {
                    return;
                }
            }
        });
        Relay(rx)
    }
}

impl http_body::Body for Relay {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|c| c.map(|r| r.map(http_body::Frame::data)))
    }
}
