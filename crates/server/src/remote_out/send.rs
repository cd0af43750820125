//! The sender of one destination: reads the queue from its saved cursor, splits the series
//! across shards by label hash (so each series' samples arrive in order), sends the shards'
//! requests at once, retries what may succeed later with doubling backoff, and saves the
//! cursor once every request of the batch was accepted (or refused for good).

use std::sync::Arc;
use std::time::Duration;

use prost::Message;

use super::{Cursor, Target};
use crate::config::RemoteWriteTarget;
use crate::remote_write::proto;

/// Most payload bytes read from the queue per round.
const READ_BYTES: usize = 8 << 20;

/// The HTTP client for a destination (its TLS settings and timeout).
pub(super) fn client(c: &RemoteWriteTarget) -> Result<reqwest::Client, crate::Error> {
    let b = reqwest::Client::builder()
        .timeout(c.remote_timeout.duration())
        .user_agent(concat!("medic/", env!("CARGO_PKG_VERSION")));
    crate::client_auth::with_tls(b, c.tls_config.as_ref(), &format!("remote_write {}", c.url))?
        .build()
        .map_err(|e| crate::Error::Internal(format!("remote_write {}: {e}", c.url)))
}

/// What became of one request after its retries.
#[derive(Debug, PartialEq)]
enum Outcome {
    Accepted,
    /// Refused for good (4xx other than 429): dropped.
    Rejected(u16),
    /// Given up while retrying because the queue outgrew its bound: these are its oldest
    /// samples, the ones the bound drops.
    Abandoned,
}

/// Whether an answer's status means "try again".
fn retryable(status: u16, retry_on_429: bool) -> bool {
    status >= 500 || (status == 429 && retry_on_429)
}

/// The next backoff: doubled, within `[min, max]`.
fn next_backoff(current: Duration, min: Duration, max: Duration) -> Duration {
    (current * 2).clamp(min, max)
}

pub(super) async fn run(t: Arc<Target>, client: reqwest::Client) {
    let labels = t.labels();
    let mut cursor = match t.queue.saved_cursor() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(remote = %t.name, error = %e, "remote write queue: cannot read the cursor; starting from its oldest record");
            Cursor::default()
        }
    };
    loop {
        if let Some(next) = t.queue.over_bound(cursor) {
            drop_to(&t, cursor, next);
            cursor = next;
            continue;
        }
        let pending = t.queue.pending_bytes(cursor);
        t.metrics
            .pending_bytes
            .get_or_create(&labels)
            .set(pending as i64);
        let read = {
            let t = t.clone();
            tokio::task::spawn_blocking(move || t.queue.read(cursor, READ_BYTES)).await
        };
        let (records, next) = match read {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!(remote = %t.name, error = %e, "remote write queue: cannot read");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => return,
        };
        if records.is_empty() {
            let idle = t.config.queue_config.batch_send_deadline.duration();
            let _ = tokio::time::timeout(idle.min(Duration::from_secs(1)), t.wake.notified()).await;
            continue;
        }
        let series = decode(&t, &records);
        send_batch(&t, &client, series, cursor).await;
        cursor = next;
        let t2 = t.clone();
        let saved = tokio::task::spawn_blocking(move || t2.queue.save_cursor(next)).await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(remote = %t.name, error = %e, "remote write queue: cannot save the cursor");
        }
    }
}

/// Skips the records from `from` to `to` — the oldest segment, the queue being over its
/// bound — counting their samples, and saves the cursor past them.
fn drop_to(t: &Target, from: Cursor, to: Cursor) {
    let mut samples = 0u64;
    // One segment's worth at most: the one being dropped.
    if let Ok((records, _)) = t.queue.read(from, super::queue::SEGMENT_BYTES as usize) {
        for r in decode(t, &records) {
            samples += r.samples.len() as u64;
        }
    }
    if let Err(e) = t.queue.save_cursor(to) {
        tracing::warn!(remote = %t.name, error = %e, "remote write queue: cannot save the cursor");
    }
    let mut l = t.labels();
    l.push(("reason", "queue_full".into()));
    t.metrics.dropped.get_or_create(&l).inc_by(samples);
    tracing::warn!(remote = %t.name, samples, "remote write queue over queue_config.max_bytes: dropped its oldest segment");
}

fn decode(t: &Target, records: &[Vec<u8>]) -> Vec<proto::TimeSeries> {
    let mut out = Vec::new();
    for r in records {
        match proto::WriteRequest::decode(r.as_slice()) {
            Ok(w) => out.extend(w.timeseries),
            Err(e) => {
                tracing::warn!(remote = %t.name, error = %e, "remote write queue: a record does not decode; skipped")
            }
        }
    }
    out
}

/// Splits the series into shards by their labels' hash, then each shard into requests of at
/// most `max_samples_per_send` samples, in order.
fn shard(
    series: Vec<proto::TimeSeries>,
    shards: usize,
    per_send: usize,
) -> Vec<Vec<proto::WriteRequest>> {
    let mut by_shard: Vec<Vec<proto::TimeSeries>> = vec![Vec::new(); shards];
    for s in series {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for l in &s.labels {
            std::hash::Hash::hash(&l.name, &mut h);
            std::hash::Hash::hash(&l.value, &mut h);
        }
        let i = (std::hash::Hasher::finish(&h) % shards as u64) as usize;
        by_shard[i].push(s);
    }
    by_shard
        .into_iter()
        .map(|series| {
            let mut requests = Vec::new();
            let mut cur: Vec<proto::TimeSeries> = Vec::new();
            let mut n = 0;
            for mut s in series {
                while !s.samples.is_empty() {
                    let room = per_send - n;
                    let take = room.min(s.samples.len());
                    let rest = s.samples.split_off(take);
                    cur.push(proto::TimeSeries {
                        labels: s.labels.clone(),
                        samples: std::mem::replace(&mut s.samples, rest),
                        histograms: Vec::new(),
                    });
                    n += take;
                    if n == per_send {
                        requests.push(proto::WriteRequest {
                            timeseries: std::mem::take(&mut cur),
                        });
                        n = 0;
                    }
                }
            }
            if !cur.is_empty() {
                requests.push(proto::WriteRequest { timeseries: cur });
            }
            requests
        })
        .collect()
}

/// Sends the series: shards at once, each shard's requests in order, each until accepted or
/// refused for good.
async fn send_batch(
    t: &Arc<Target>,
    client: &reqwest::Client,
    series: Vec<proto::TimeSeries>,
    from: Cursor,
) {
    let q = &t.config.queue_config;
    let shards = shard(series, q.max_shards.max(1), q.max_samples_per_send.max(1));
    let tasks = shards.into_iter().filter(|s| !s.is_empty()).map(|requests| {
        let (t, client) = (t.clone(), client.clone());
        tokio::spawn(async move {
            for w in requests {
                let samples: u64 = w.timeseries.iter().map(|s| s.samples.len() as u64).sum();
                let newest = w
                    .timeseries
                    .iter()
                    .filter_map(|s| s.samples.last().map(|x| x.timestamp))
                    .max();
                let mut l = t.labels();
                match send_one(&t, &client, &w, from).await {
                    Outcome::Accepted => {
                        t.metrics.sent.get_or_create(&l).inc_by(samples);
                        if let Some(ts) = newest {
                            let g = t.metrics.highest_sent.get_or_create(&l);
                            if ts / 1000 > g.get() {
                                g.set(ts / 1000);
                            }
                        }
                    }
                    Outcome::Rejected(status) => {
                        l.push(("reason", "rejected".into()));
                        t.metrics.dropped.get_or_create(&l).inc_by(samples);
                        tracing::warn!(remote = %t.name, status, samples, "the destination refused samples for good; dropped");
                    }
                    Outcome::Abandoned => {
                        l.push(("reason", "queue_full".into()));
                        t.metrics.dropped.get_or_create(&l).inc_by(samples);
                        tracing::warn!(remote = %t.name, samples, "remote write queue over queue_config.max_bytes while the destination is away: its oldest samples dropped");
                    }
                }
            }
        })
    });
    for task in tasks.collect::<Vec<_>>() {
        let _ = task.await;
    }
}

async fn send_one(
    t: &Target,
    client: &reqwest::Client,
    w: &proto::WriteRequest,
    from: Cursor,
) -> Outcome {
    let q = &t.config.queue_config;
    let body = match snap::raw::Encoder::new().compress_vec(&w.encode_to_vec()) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(remote = %t.name, error = %e, "cannot compress a request");
            return Outcome::Rejected(0);
        }
    };
    let (min, max) = (q.min_backoff.duration(), q.max_backoff.duration());
    let mut backoff = min;
    loop {
        let status = match request(t, client, body.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(remote = %t.name, error = %e, "remote write request failed");
                0
            }
        };
        let mut l = t.labels();
        l.push(("code", status.to_string()));
        t.metrics.requests.get_or_create(&l).inc();
        if (200..300).contains(&status) {
            return Outcome::Accepted;
        }
        if status != 0 && !retryable(status, q.retry_on_http_429) {
            return Outcome::Rejected(status);
        }
        t.metrics.retries.get_or_create(&t.labels()).inc();
        if t.queue.over_bound(from).is_some() {
            return Outcome::Abandoned;
        }
        tokio::time::sleep(backoff).await;
        backoff = next_backoff(backoff, min, max);
    }
}

/// One POST; the status code, or why there is none (never with credentials).
async fn request(t: &Target, client: &reqwest::Client, body: Vec<u8>) -> Result<u16, String> {
    let c = &t.config;
    let mut req = client
        .post(&c.url)
        .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
        .header(reqwest::header::CONTENT_ENCODING, "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0");
    for (k, v) in &c.headers {
        req = req.header(k, v);
    }
    let req = crate::client_auth::apply(
        req,
        c.basic_auth.as_ref(),
        c.authorization.as_ref(),
        c.bearer_token.as_deref(),
        c.bearer_token_file.as_deref(),
    )?;
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    Ok(resp.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(name: &str, n: usize) -> proto::TimeSeries {
        proto::TimeSeries {
            labels: vec![proto::Label {
                name: "__name__".into(),
                value: name.into(),
            }],
            samples: (0..n)
                .map(|i| proto::Sample {
                    value: i as f64,
                    timestamp: i as i64,
                })
                .collect(),
            histograms: Vec::new(),
        }
    }

    #[test]
    fn shards_keep_each_series_whole_and_in_order_and_requests_stay_under_the_limit() {
        let series: Vec<_> = (0..20).map(|i| ts(&format!("s{i}"), 7)).collect();
        let shards = shard(series, 3, 5);
        let mut seen: std::collections::HashMap<String, Vec<i64>> = Default::default();
        let mut where_: std::collections::HashMap<String, usize> = Default::default();
        for (i, requests) in shards.iter().enumerate() {
            for w in requests {
                let n: usize = w.timeseries.iter().map(|s| s.samples.len()).sum();
                assert!(n <= 5, "{n} samples in one request");
                for s in &w.timeseries {
                    let name = s.labels[0].value.clone();
                    assert_eq!(
                        *where_.entry(name.clone()).or_insert(i),
                        i,
                        "{name} in two shards"
                    );
                    seen.entry(name)
                        .or_default()
                        .extend(s.samples.iter().map(|x| x.timestamp));
                }
            }
        }
        assert_eq!(seen.len(), 20);
        for (name, t) in seen {
            assert_eq!(t, (0..7).collect::<Vec<i64>>(), "{name}");
        }
    }

    #[test]
    fn what_is_retried_and_how_long_it_waits() {
        assert!(retryable(500, false) && retryable(503, true));
        assert!(retryable(429, true) && !retryable(429, false));
        assert!(!retryable(400, true) && !retryable(404, true));
        let (min, max) = (Duration::from_millis(30), Duration::from_secs(5));
        let mut b = min;
        let mut seen = vec![b];
        for _ in 0..10 {
            b = next_backoff(b, min, max);
            seen.push(b);
        }
        assert_eq!(seen[1], Duration::from_millis(60));
        assert_eq!(*seen.last().unwrap(), max);
    }
}
