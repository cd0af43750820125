//! The checks every request passes before its handler: the client's request rate, the `Host`
//! it names, where a state-changing request comes from, its body's size and type.

use super::*;

/// A 429 when the request's client (its identity when authentication is on, else its address)
/// is over `server.client_rate_limit`; health checks and `/metrics` are never limited.
pub(super) fn over_client_rate(
    st: &AppState,
    req: &Request,
    id: Option<&crate::auth::Identity>,
    perm: Permission,
) -> Option<HttpError> {
    let per_second = st.config.server.client_rate_limit;
    if per_second <= 0.0 || perm == Permission::Public {
        return None;
    }
    let client = match id {
        Some(id) if st.auth.enabled() => format!("identity {}", id.name),
        _ => req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "unknown".into(), |c| format!("address {}", c.0.ip())),
    };
    let rate = crate::serve::client_rate::ClientRate {
        per_second,
        burst: f64::from(st.config.server.client_rate_burst.max(1)),
    };
    let now = CLOCK_ORIGIN.elapsed().as_secs_f64();
    if st.client_rates.admit(rate, &client, now) {
        return None;
    }
    st.http
        .refused
        .get_or_create(&vec![("reason", "client_rate_limit".to_string())])
        .inc();
    Some(HttpError::with_status(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        format!(
            "{client} is over server.client_rate_limit ({per_second} requests per second); retry shortly"
        ),
    ))
}

static CLOCK_ORIGIN: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

/// Requests naming a host medic does not answer to are refused (403), against DNS rebinding:
/// see `server.allowed_hosts`. Health checks are not checked (probes use any name).
pub(super) async fn allowed_host(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if path == "/-/healthy" || path == "/-/ready" {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if host_allowed(&st, host) {
        return next.run(req).await;
    }
    st.http
        .refused
        .get_or_create(&vec![("reason", "host".to_string())])
        .inc();
    (
        StatusCode::FORBIDDEN,
        format!(
            "Host {host:?} is not a name of this server; add it to server.allowed_hosts if it is\n"
        ),
    )
        .into_response()
}

/// Whether `Host: host` names this server (see `server.allowed_hosts`).
fn host_allowed(st: &AppState, host: &str) -> bool {
    let server = &st.config.server;
    let configured = &server.allowed_hosts;
    let listen = host_name(&server.listen);
    let wildcard = listen.is_empty() || listen == "0.0.0.0" || listen == "::";
    if configured.is_empty() && (st.auth.enabled() || wildcard) {
        // Authentication is what a rebinding page cannot present; and an operator who opened
        // medic unauthenticated to every address has accepted any name.
        return true;
    }
    let name = host_name(host);
    if name.is_empty() {
        // No Host (HTTP/1.0 clients, some probes): no name to rebind.
        return true;
    }
    let own = [
        Some(listen),
        server
            .external_url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_string)),
    ];
    let loopback = ["localhost", "127.0.0.1", "::1"];
    // Loopback names are safe whatever the list: a rebinding page names its own host.
    loopback.iter().any(|l| name.eq_ignore_ascii_case(l))
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || own.iter().flatten().any(|o| o.eq_ignore_ascii_case(&name))
        || configured
            .iter()
            .any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(&name))
}

/// `host[:port]` without the port (IPv6 brackets kept off).
fn host_name(host: &str) -> String {
    let h = host.trim();
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    match h.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.contains(':') => {
            name.to_string()
        }
        _ => h.to_string(),
    }
}

/// State-changing requests a browser makes for another site are refused: when the request
/// carries an `Origin` (browsers add it to cross-site POSTs) that is not this server's own
/// `Host`, or `Sec-Fetch-Site: cross-site`. Clients that are not browsers send neither.
pub(super) async fn same_origin(req: Request, next: Next) -> Response {
    let writes = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    );
    if writes {
        if let Some(why) = cross_origin(req.headers()) {
            return (StatusCode::FORBIDDEN, format!("{why}\n")).into_response();
        }
    }
    next.run(req).await
}

/// Why the headers show a cross-site request, if they do.
fn cross_origin(h: &HeaderMap) -> Option<String> {
    let get = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok());
    if get(header::HeaderName::from_static("sec-fetch-site")) == Some("cross-site") {
        return Some("cross-site request refused (Sec-Fetch-Site: cross-site)".into());
    }
    let origin = get(header::ORIGIN)?;
    let host = get(header::HOST).unwrap_or("");
    let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
    if origin == "null" || !authority.eq_ignore_ascii_case(host) {
        return Some(format!(
            "cross-origin request refused: Origin {origin:?} is not this server ({host:?})"
        ));
    }
    None
}

/// Bounds every request body but remote write's (which has `remote_write.max_body_size` and
/// an in-flight budget) by `server.max_request_body`: a declared length over it is refused at
/// once with 413, a body that grows past it fails when read (413 too).
pub(super) async fn limit_body(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path() == "/api/v1/write" {
        return next.run(req).await;
    }
    let max = st.config.server.max_request_body.0 as usize;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        st.http
            .refused
            .get_or_create(&vec![("reason", "body_too_large".to_string())])
            .inc();
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body of {} bytes exceeds server.max_request_body ({max} bytes)\n",
                declared.unwrap_or(0)
            ),
        )
            .into_response();
    }
    let req = req.map(|b| Body::new(http_body_util::Limited::new(b, max)));
    next.run(req).await
}

/// Refuses a state-changing request whose body is not JSON when its route's bodies
/// are JSON: a web page can POST `text/plain` to any origin without asking, so accepting it would
/// let any page an operator visits approve a repair or add a silence. Alertmanager answers 415
/// too.
pub(super) async fn require_json(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let json_api = path.starts_with("/api/v2/") || path.starts_with("/api/v1/medic/");
    let writes = matches!(*req.method(), Method::POST | Method::PUT);
    if json_api && writes {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let is_json = ct
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "{path} takes a JSON body: send Content-Type: application/json (got {:?})\n",
                    ct
                ),
            )
                .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_lose_their_port() {
        for (host, name) in [
            ("medic.internal:9099", "medic.internal"),
            ("medic.internal", "medic.internal"),
            ("127.0.0.1:9099", "127.0.0.1"),
            ("[::1]:9099", "::1"),
            ("::1", "::1"),
            ("", ""),
        ] {
            assert_eq!(host_name(host), name, "{host}");
        }
    }
}
