//! Prometheus's data APIs beside queries: remote write in, series, labels, targets, export, TSDB status, flush.

use super::params::{blocking, Params};
use super::*;

pub(super) async fn write(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !st.config.remote_write.enabled {
        return (
            StatusCode::NOT_FOUND,
            "remote write receiver is disabled (remote_write.enabled: false)\n",
        )
            .into_response();
    }
    // Remote write 1.0 (`proto=prometheus.WriteRequest`, or no `proto`) or 2.0.
    let proto = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').find_map(|p| p.trim().strip_prefix("proto=")))
        .map(|p| p.trim_matches('"').to_string());
    let v2 = match proto.as_deref() {
        None | Some("prometheus.WriteRequest") => false,
        Some(crate::remote_write_v2::PROTO) => true,
        Some(other) => {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unknown remote write protobuf message {other:?}; medic reads prometheus.WriteRequest (1.0) and io.prometheus.write.v2.Request (2.0)\n"),
            )
                .into_response();
        }
    };
    let limit = st.config.remote_write.max_body_size.0 as usize;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return too_large(format!("body of {len} bytes exceeds the limit of {limit} bytes (remote_write.max_body_size)\n"));
        }
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return too_large(format!(
                "body exceeds the limit of {limit} bytes (remote_write.max_body_size)\n"
            ));
        }
    };
    let max_decoded = st.config.remote_write.max_decoded_size.0 as usize;
    // What decoding and storing this body will hold: about 8× its decoded size. Taken from the
    // shared budget, or refused at once with 503 (Prometheus retries); a body larger than the
    // whole budget may still go alone.
    let decoded = snap::raw::decompress_len(&bytes)
        .unwrap_or(0)
        .min(max_decoded);
    let total = (st.config.remote_write.max_inflight_bytes.0 >> 10).max(1) as usize;
    let kib = ((bytes.len() + decoded.saturating_mul(8)) >> 10)
        .clamp(1, total.min(u32::MAX as usize)) as u32;
    let Ok(permit) = st.write_budget.clone().try_acquire_many_owned(kib) else {
        st.http
            .refused
            .get_or_create(&vec![("reason", "remote_write_inflight".to_string())])
            .inc();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "too many remote-write bytes in flight (remote_write.max_inflight_bytes); retry shortly\n",
        )
            .into_response();
    };
    let db = st.db.clone();
    let result = tokio::task::spawn_blocking(move || {
        let _held = permit;
        let raw = crate::remote_write::decompress(&bytes, max_decoded)?;
        if v2 {
            crate::remote_write_v2::ingest(db.as_ref(), &raw)
        } else {
            crate::remote_write::ingest(db.as_ref(), &raw)
        }
    })
    .await;
    use crate::remote_write::{DecodeError, IngestError};
    match result {
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}\n"),
        )
            .into_response(),
        Ok(Err(IngestError::Decode(e @ DecodeError::TooLarge { .. }))) => {
            (StatusCode::PAYLOAD_TOO_LARGE, format!("{e}\n")).into_response()
        }
        Ok(Err(IngestError::Decode(e))) => {
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
        Ok(Err(IngestError::Storage(e))) => {
            warn!(error = %e, "remote write: storage error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storage error: {e}\n"),
            )
                .into_response()
        }
        Ok(Ok(outcome)) => {
            let mut resp = if outcome.rejected.is_empty() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                (StatusCode::BAD_REQUEST, format!("{}\n", outcome.message())).into_response()
            };
            if v2 {
                // What 2.0 senders read to learn what was stored.
                let h = resp.headers_mut();
                let floats = outcome.accepted - outcome.accepted_histograms;
                h.insert("X-Prometheus-Remote-Write-Samples-Written", floats.into());
                h.insert(
                    "X-Prometheus-Remote-Write-Histograms-Written",
                    outcome.accepted_histograms.into(),
                );
                h.insert("X-Prometheus-Remote-Write-Exemplars-Written", 0.into());
            }
            resp
        }
    }
}

pub(super) async fn targets(State(st): State<Arc<AppState>>, params: Params) -> Response {
    let state = params.get("state").unwrap_or("any").to_string();
    let (active, dropped) = st.scrape.as_ref().map(|s| s.targets()).unwrap_or_default();
    let mut data = serde_json::Map::new();
    if state == "any" || state == "active" {
        data.insert("activeTargets".into(), json!(active));
    } else {
        data.insert("activeTargets".into(), json!([]));
    }
    if state == "any" || state == "dropped" {
        data.insert("droppedTargets".into(), json!(dropped));
    } else {
        data.insert("droppedTargets".into(), json!([]));
    }
    success(Value::Object(data))
}

pub(super) async fn series(
    State(st): State<Arc<AppState>>,
    p: Params,
) -> Result<Response, ApiError> {
    if let Some(b) = &st.query_backend {
        return Ok(b.forward(&["api", "v1", "series"], p.pairs()).await);
    }
    let sets = p.required_matchers()?;
    let (start, end) = p.range()?;
    let db = st.db.clone();
    let series = blocking(move || select_union(db.as_ref(), &sets, start, end)).await?;
    let labels: Vec<&medic_model::Labels> = series.iter().map(|s| &s.labels).collect();
    Ok(success(json!(labels)))
}

/// The series matching any of the selector sets, each once, in label order.
pub(crate) fn select_union(
    db: &dyn Queryable,
    sets: &[Vec<Matcher>],
    start: i64,
    end: i64,
) -> Result<Vec<medic_model::Series>, String> {
    let q = db.querier(start, end).map_err(|e| e.to_string())?;
    let mut all = std::collections::BTreeMap::new();
    for ms in sets {
        for s in q.select(ms).map_err(|e| e.to_string())? {
            let s = s.map_err(|e| e.to_string())?;
            all.entry(s.labels.clone()).or_insert(s);
        }
    }
    Ok(all.into_values().collect())
}

/// The native histograms of the series any matcher set selects in `[start, end]`, by labels.
fn select_histogram_union(
    db: &dyn Queryable,
    sets: &[Vec<Matcher>],
    start: i64,
    end: i64,
) -> Result<
    std::collections::BTreeMap<medic_model::Labels, Vec<medic_model::HistogramSample>>,
    String,
> {
    let q = db.querier(start, end).map_err(|e| e.to_string())?;
    let mut all = std::collections::BTreeMap::new();
    for ms in sets {
        for s in q.select_histograms(ms).map_err(|e| e.to_string())? {
            all.entry(s.labels).or_insert(s.samples);
        }
    }
    Ok(all)
}

pub(super) async fn labels(
    State(st): State<Arc<AppState>>,
    p: Params,
) -> Result<Response, ApiError> {
    label_query(st, p, None).await
}

pub(super) async fn label_values(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    if !medic_model::is_valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    label_query(st, p, Some(name)).await
}

pub(super) async fn label_query(
    st: Arc<AppState>,
    p: Params,
    name: Option<String>,
) -> Result<Response, ApiError> {
    if let Some(b) = &st.query_backend {
        let path = match &name {
            Some(n) => vec!["api", "v1", "label", n.as_str(), "values"],
            None => vec!["api", "v1", "labels"],
        };
        return Ok(b.forward(&path, p.pairs()).await);
    }
    let sets = p.matchers()?;
    let (start, end) = p.range()?;
    let db = st.db.clone();
    let list = blocking(move || {
        let q = db.querier(start, end).map_err(|e| e.to_string())?;
        let sets = if sets.is_empty() {
            vec![Vec::new()]
        } else {
            sets
        };
        let mut out = BTreeSet::new();
        for ms in &sets {
            let v = match &name {
                Some(n) => q.label_values(n, ms),
                None => q.label_names(ms),
            }
            .map_err(|e| e.to_string())?;
            out.extend(v);
        }
        Ok(out.into_iter().collect::<Vec<_>>())
    })
    .await?;
    Ok(success(json!(list)))
}

/// `GET /api/v1/export?match[]=…&start=…&end=…`: raw samples as JSON lines, one series per
/// line, in VictoriaMetrics's export shape (`{"metric":{…},"values":[…],"timestamps":[…]}`).
/// Non-finite values are written as the strings "NaN", "+Inf", "-Inf"; staleness markers are
/// left out.
pub(super) async fn export(
    State(st): State<Arc<AppState>>,
    p: Params,
) -> Result<Response, ApiError> {
    let sets = p.required_matchers()?;
    let (start, end) = p.range()?;
    let db = st.db.clone();
    let text = blocking(move || {
        let mut out = String::new();
        let mut histograms = select_histogram_union(db.as_ref(), &sets, start, end)?;
        let mut floats = select_union(db.as_ref(), &sets, start, end)?;
        // Series that hold histograms alone get a line too.
        for labels in histograms.keys() {
            if floats.binary_search_by(|s| s.labels.cmp(labels)).is_err() {
                floats.push(medic_model::Series {
                    labels: labels.clone(),
                    samples: Vec::new(),
                });
            }
        }
        floats.sort_by(|a, b| a.labels.cmp(&b.labels));
        for s in floats {
            let hs = histograms.remove(&s.labels).unwrap_or_default();
            let mut values = Vec::with_capacity(s.samples.len());
            let mut timestamps = Vec::with_capacity(s.samples.len());
            for x in s.samples.iter().filter(|x| !is_stale_nan(x.v)) {
                values.push(if x.v.is_finite() {
                    json!(x.v)
                } else if x.v.is_nan() {
                    json!("NaN")
                } else if x.v > 0.0 {
                    json!("+Inf")
                } else {
                    json!("-Inf")
                });
                timestamps.push(x.t);
            }
            if values.is_empty() && hs.is_empty() {
                continue;
            }
            let mut line = json!({"metric": s.labels, "values": values, "timestamps": timestamps});
            if !hs.is_empty() {
                // Native histograms as Prometheus's query API writes a matrix's.
                line["histograms"] = hs
                    .iter()
                    .map(|h| json!([super::query::ts(h.t), super::query::histogram_json(&h.h)]))
                    .collect();
            }
            out.push_str(&line.to_string());
            out.push('\n');
        }
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/stream+json")], text).into_response())
}

pub(super) async fn tsdb_status(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let db = st.db.clone();
    let s = blocking(move || Ok(db.stats())).await?;
    Ok(success(json!({
        "headStats": {
            "numSeries": s.head_series,
            "minTime": s.head_min_time,
            "maxTime": s.head_max_time,
        },
        "blocks": s.blocks,
        "blocksBytes": s.blocks_bytes,
        "walBytes": s.wal_bytes,
    })))
}

pub(super) async fn flush(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let db = st.db.clone();
    let summary = blocking(move || db.flush().map_err(|e| e.to_string())).await?;
    Ok(success(json!(summary)))
}

/// 413 for a body left unread: with `Connection: close`, so that the client does not send its
/// next request on a connection the server is about to drop.
pub(super) fn too_large(message: String) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        [(header::CONNECTION, "close")],
        message,
    )
        .into_response()
}
