//! The dispatch loop: due groups flushed through the pipeline, messages sent with retries on their own tasks, deliveries logged.

use super::*;

impl AlertManager {
    // ---- the loop ----

    /// Dispatches until `shutdown` resolves: flushes due groups, runs the pipeline, and
    /// collects garbage once a minute.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let (mut last_gc, mut last_eor) = (0, 0);
        loop {
            let now = self.now();
            let (flushes, next) = {
                let mut g = self.lock();
                let f = g.dispatcher.due(now);
                (f, g.dispatcher.next_due())
            };
            for f in flushes {
                let me = self.clone();
                tokio::spawn(async move { me.flush(f).await });
            }
            if now - last_gc >= 60_000 {
                last_gc = now;
                self.gc(now);
            }
            if now - last_eor >= 2_000 {
                last_eor = now;
                self.expire_resolved_silences(now);
            }
            let wait = next.map_or(1_000, |t| (t - self.now()).clamp(0, 1_000));
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            }
        }
    }

    /// Runs the pipeline for one flush and reports back to the dispatcher.
    pub(super) async fn flush(self: Arc<Self>, mut f: Flush) {
        let now = self.now();
        let (deliveries, loaded, group_interval) = {
            let g = self.lock();
            if g.dispatcher.generation() != f.generation {
                // Taken before a reload; the new dispatcher flushes the group again.
                return;
            }
            let route = g.dispatcher.route(f.route).clone();
            let stages = Stages {
                inhibitor: &g.inhibitor,
                silences: &g.silences,
                intervals: &g.loaded.intervals,
                nflog: &g.nflog,
                acks: &g.acks,
                receivers: &g.loaded.infos,
                escalations: &g.loaded.escalations,
                repairs: &g.repairs,
            };
            (
                pipeline::plan_flush(&mut f, &route, &g.flaps, self.opts.flap_hold, &stages, now),
                g.loaded.clone(),
                route.opts.group_interval,
            )
        };
        let deliveries = match deliveries {
            Ok(d) => d,
            Err(q) => {
                let reason = match q {
                    Quiet::TimeMuted => "time_muted",
                    Quiet::AllMuted => "all_muted",
                    Quiet::UpToDate => "up_to_date",
                };
                self.metrics
                    .flushes_quiet
                    .get_or_create(&QuietLabel {
                        reason: reason.into(),
                    })
                    .inc();
                self.lock().dispatcher.flushed(&f, true);
                return;
            }
        };
        let budget =
            Duration::from_millis(group_interval.max(1_000) as u64).min(self.opts.max_retry);
        let mut tasks = Vec::new();
        for d in deliveries {
            let me = self.clone();
            let integ = loaded
                .integrations
                .get(&d.receiver)
                .and_then(|v| v.get(d.integration))
                .cloned();
            tasks.push(tokio::spawn(
                async move { me.deliver(d, integ, budget).await },
            ));
        }
        let mut ok = true;
        for t in tasks {
            ok &= t.await.unwrap_or(false);
        }
        self.lock().dispatcher.flushed(&f, ok);
    }

    /// Sends one message with retries; logs it when delivered. Returns whether it was.
    pub(super) async fn deliver(
        &self,
        d: Delivery,
        integ: Option<Arc<Integration>>,
        budget: Duration,
    ) -> bool {
        let labels = IntegrationLabels {
            receiver: d.receiver.clone(),
            integration: d
                .integration_name
                .split('[')
                .next()
                .unwrap_or("")
                .to_string(),
        };
        let fence = self.fence.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(fence) = fence.filter(|_| d.send) {
            if !fence().await {
                return false;
            }
        }
        let result = match (&integ, d.send) {
            (_, false) => Ok(()),
            (None, true) => Err(NotifyError {
                retryable: false,
                message: "receiver no longer configured".into(),
                reason: "config",
            }),
            (Some(i), true) => self.send_with_retry(i, &d, budget).await,
        };
        let now = self.now();
        match result {
            Ok(()) => {
                if d.send {
                    self.metrics.notifications.get_or_create(&labels).inc();
                }
                let entry = pipeline::log_entry(&d, now);
                let g = {
                    let mut g = self.lock();
                    g.nflog.log(entry.clone());
                    g
                };
                let _order = self.persist.lock().unwrap_or_else(|p| p.into_inner());
                drop(g);
                if let Err(e) = self.state.save_nflog(&entry) {
                    self.metrics.state_errors.inc();
                    warn!(error = %e, "cannot store the notification log; a restart may repeat this message");
                }
                if d.send {
                    self.record(&[self.group_event(
                        &d,
                        now,
                        if d.escalation.is_some() {
                            EventKind::Escalated
                        } else {
                            EventKind::Notified
                        },
                        String::new(),
                    )]);
                }
                true
            }
            Err(e) => {
                warn!(receiver = %d.receiver, integration = %d.integration_name, group = %d.group_key, error = %e, "notification failed");
                self.metrics
                    .notifications_failed
                    .get_or_create(&FailureLabels {
                        receiver: labels.receiver.clone(),
                        integration: labels.integration.clone(),
                        reason: e.reason.into(),
                    })
                    .inc();
                self.record(&[self.group_event(
                    &d,
                    now,
                    EventKind::NotifyFailed,
                    e.message.clone(),
                )]);
                false
            }
        }
    }

    pub(super) fn group_event(
        &self,
        d: &Delivery,
        at: i64,
        kind: EventKind,
        detail: String,
    ) -> Event {
        let detail = match (&d.escalation, detail.is_empty()) {
            (Some(p), true) => format!(
                "escalation policy {p}; {} firing, {} resolved",
                d.firing.len(),
                d.resolved.len()
            ),
            (_, true) => format!("{} firing, {} resolved", d.firing.len(), d.resolved.len()),
            (_, false) => detail,
        };
        Event {
            at,
            kind,
            fingerprint: None,
            labels: d.group_labels.clone(),
            group_key: d.group_key.clone(),
            receiver: format!("{}/{}", d.receiver, d.integration_name),
            detail,
            author: String::new(),
        }
    }

    pub(super) async fn send_with_retry(
        &self,
        integ: &Integration,
        d: &Delivery,
        budget: Duration,
    ) -> Result<(), NotifyError> {
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(500);
        let kind = KindLabel {
            integration: integ.kind.to_string(),
        };
        let data = Data::new(
            &d.receiver,
            &d.group_labels,
            d.alerts.clone(),
            self.now(),
            &self.opts.external_url,
        );
        loop {
            self.metrics.requests.get_or_create(&kind).inc();
            let t0 = std::time::Instant::now();
            let r = integ.notify(&data, &d.group_key, self.now()).await;
            self.metrics
                .latency
                .get_or_create(&kind)
                .observe(t0.elapsed().as_secs_f64());
            match r {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.metrics.requests_failed.get_or_create(&kind).inc();
                    if !e.retryable || started.elapsed() + backoff > budget {
                        return Err(e);
                    }
                    debug!(receiver = %d.receiver, error = %e, ?backoff, "retrying notification");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}
