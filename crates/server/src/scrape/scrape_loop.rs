//! One target's scrape loop: fetch, parse, relabel, append, staleness markers, health.

use super::*;

/// The first scrape waits this long so targets spread over the interval, stably per target.
pub(super) fn initial_offset(labels: &Labels, interval: Duration, now_ms: i64) -> Duration {
    let iv = interval.as_millis().max(1) as i64;
    let want = (labels.stable_hash() % iv as u64) as i64;
    Duration::from_millis((want - now_ms.rem_euclid(iv)).rem_euclid(iv) as u64)
}

pub(super) async fn scrape_loop(
    mgr: Arc<ScrapeManager>,
    pool: Arc<Pool>,
    target: Arc<Target>,
    mut stop: watch::Receiver<bool>,
    mut global_stop: watch::Receiver<bool>,
) {
    let offset = initial_offset(&target.labels, pool.interval, mgr.clock.now_ms());
    tokio::select! {
        _ = tokio::time::sleep(offset) => {}
        _ = stop.changed() => return finish(&mgr, &target, &HashSet::new(), false),
        _ = global_stop.changed() => return,
    }
    let mut ticker = tokio::time::interval(pool.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seen: HashSet<Labels> = HashSet::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return finish(&mgr, &target, &seen, true),
            _ = global_stop.changed() => return,
        }
        seen = scrape_once(&mgr, &pool, &target, seen).await;
    }
}

/// Writes staleness markers for `seen` when a target is removed.
pub(super) fn finish(mgr: &ScrapeManager, target: &Target, seen: &HashSet<Labels>, removed: bool) {
    if !removed || seen.is_empty() {
        return;
    }
    let now = mgr.clock.now_ms();
    let mut app = mgr.store.appender();
    for l in seen {
        let _ = app.append_labels(l, now, STALE_NAN);
    }
    if let Err(e) = app.commit() {
        warn!(target = %target.url, error = %e, "could not write staleness markers");
    }
}

/// One scrape and its append. Returns the series seen, for the next staleness check.
pub(super) async fn scrape_once(
    mgr: &ScrapeManager,
    pool: &Pool,
    target: &Target,
    prev: HashSet<Labels>,
) -> HashSet<Labels> {
    let ts = mgr.clock.now_ms();
    let start = Instant::now();
    let result = fetch(pool, target)
        .await
        .and_then(|body| parse_body(pool, target, body));
    let cfg = &pool.cfg;
    // Build the samples to store; any failure stores nothing but the report series.
    let built = result.and_then(|parsed| {
        let scraped = parsed.len();
        let mut out = Vec::with_capacity(parsed.len());
        for s in parsed {
            let labels = merge_target_labels(&s.labels, &target.labels, cfg.honor_labels);
            let Some(labels) = relabel::relabel(&labels, &cfg.metric_relabel_configs) else {
                continue;
            };
            let t = match s.timestamp {
                Some(t) if cfg.honor_timestamps => t,
                _ => ts,
            };
            out.push((labels, t, s.value, s.histogram));
        }
        if cfg.sample_limit > 0 && out.len() > cfg.sample_limit {
            return Err(format!(
                "sample limit exceeded: {} samples > sample_limit {}",
                out.len(),
                cfg.sample_limit
            ));
        }
        Ok((scraped, out))
    });
    let duration = start.elapsed().as_secs_f64();
    let job = vec![("job", cfg.job_name.clone())];
    mgr.metrics.duration.get_or_create(&job).observe(duration);

    let (ok, scraped, samples, error) = match built {
        Ok((scraped, samples)) => (true, scraped, samples, String::new()),
        Err(e) => (false, 0, Vec::new(), e),
    };
    let post = samples.len();
    let mut cur: HashSet<Labels> = samples.iter().map(|(l, ..)| l.clone()).collect();
    let added = cur.iter().filter(|l| !prev.contains(*l)).count();
    let report = [
        ("up", if ok { 1.0 } else { 0.0 }),
        ("scrape_duration_seconds", duration),
        ("scrape_samples_scraped", scraped as f64),
        ("scrape_samples_post_metric_relabeling", post as f64),
        ("scrape_series_added", added as f64),
    ];
    let store = mgr.store.clone();
    let target_labels = target.labels.clone();
    let prev_for_append = prev;
    let (cur, append_errors) = tokio::task::spawn_blocking(move || {
        let mut app = store.appender();
        let mut errors = 0usize;
        for (l, t, v, h) in &samples {
            let stored = match h {
                None => app.append_labels(l, *t, *v).map(|_| ()),
                Some(h) => app
                    .series_ref(l)
                    .and_then(|r| app.append_histogram(r, *t, h.clone())),
            };
            if stored.is_err() {
                errors += 1;
            }
        }
        for (name, v) in report {
            let mut b = target_labels.to_builder();
            b.set("__name__", name);
            let l = b.build();
            let _ = app.append_labels(&l, ts, v);
            cur.insert(l);
        }
        for l in prev_for_append.iter().filter(|l| !cur.contains(*l)) {
            let _ = app.append_labels(l, ts, STALE_NAN);
        }
        if let Err(e) = app.commit() {
            warn!(error = %e, "storing scrape failed");
        }
        (cur, errors)
    })
    .await
    .unwrap_or_default();
    if append_errors > 0 {
        debug!(target = %target.url, rejected = append_errors, "some scraped samples were rejected");
    }
    let result = if ok { "success" } else { "failed" };
    mgr.metrics
        .scrapes
        .get_or_create(&vec![
            ("job", cfg.job_name.clone()),
            ("result", result.to_string()),
        ])
        .inc();
    if !ok {
        debug!(job = %cfg.job_name, target = %target.url, error = %error, "scrape failed");
    }
    target.set_status(|s| {
        s.health = if ok { Health::Up } else { Health::Down };
        s.last_error = error;
        s.last_scrape_ms = Some(ts);
        s.last_duration = duration;
    });
    cur
}

/// Adds target labels to scraped labels. With `honor_labels` the scraped value wins; without,
/// the target's wins and a clashing scraped value moves to `exported_<name>`.
pub(super) fn merge_target_labels(scraped: &Labels, target: &Labels, honor: bool) -> Labels {
    let mut b = scraped.to_builder();
    for l in target.iter() {
        match scraped.get(&l.name) {
            Some(_) if honor => {}
            Some(existing) => {
                let mut name = format!("exported_{}", l.name);
                while scraped.has(&name) {
                    name = format!("exported_{name}");
                }
                b.set(name, existing.to_string());
                b.set(l.name.clone(), l.value.clone());
            }
            None => {
                b.set(l.name.clone(), l.value.clone());
            }
        }
    }
    b.build()
}

/// Parses a scrape body in its format and keeps the metadata it declares for the target.
fn parse_body(
    pool: &Pool,
    target: &Target,
    body: Body,
) -> Result<Vec<parser::ParsedSample>, String> {
    let (parsed, meta) = match body {
        Body::Text(text, format) => {
            parser::parse_with_metadata(&text, format, pool.cfg.parse_limit)
        }
        Body::Proto(bytes) => parser_proto::parse(
            &bytes,
            pool.cfg.parse_limit,
            pool.cfg.always_scrape_classic_histograms,
        ),
    }
    .map_err(|e| e.to_string())?;
    let mut held = target.metadata.lock().unwrap_or_else(|e| e.into_inner());
    if **held != meta {
        *held = Arc::new(meta);
    }
    Ok(parsed)
}

/// A scrape response body: text in one of the text formats, or the protobuf format.
pub(super) enum Body {
    Text(String, Format),
    Proto(Vec<u8>),
}

pub(super) async fn fetch(pool: &Pool, target: &Target) -> Result<Body, String> {
    let cfg = &pool.cfg;
    let accept = match &cfg.scrape_protocols {
        Some(p) => crate::config::ScrapeProtocol::accept_header(p),
        None => ACCEPT_HEADER.to_string(),
    };
    let req = pool
        .client
        .get(&target.url)
        .header(reqwest::header::ACCEPT, accept)
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", pool.timeout.as_secs_f64()),
        )
        .timeout(pool.timeout);
    let req = crate::client_auth::apply(
        req,
        cfg.basic_auth.as_ref(),
        cfg.authorization.as_ref(),
        cfg.bearer_token.as_deref(),
        cfg.bearer_token_file.as_deref(),
    )?;
    let mut resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            format!(
                "scrape timed out after {}",
                medic_model::format_duration(pool.timeout)
            )
        } else {
            format!("Get {:?}: {}", target.url, medic_model::error_chain(&e))
        }
    })?;
    if !resp.status().is_success() {
        return Err(format!("server returned HTTP status {}", resp.status()));
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let proto = content_type.as_deref().is_some_and(|ct| {
        ct.trim_start()
            .starts_with("application/vnd.google.protobuf")
    });
    let format = Format::from_content_type(content_type.as_deref());
    let limit = cfg.body_size_limit.0 as usize;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        if e.is_timeout() {
            format!(
                "scrape timed out after {}",
                medic_model::format_duration(pool.timeout)
            )
        } else {
            format!("reading body: {}", medic_model::error_chain(&e))
        }
    })? {
        if limit > 0 && body.len() + chunk.len() > limit {
            return Err(format!("body size limit exceeded ({limit} bytes)"));
        }
        body.extend_from_slice(&chunk);
    }
    if proto {
        return Ok(Body::Proto(body));
    }
    let text = String::from_utf8(body)
        .map_err(|e| format!("body is not UTF-8 at byte {}", e.utf8_error().valid_up_to()))?;
    Ok(Body::Text(text, format))
}
