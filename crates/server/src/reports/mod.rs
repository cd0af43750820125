//! Scheduled reports: the configured definitions, the scheduler (a pure `due` on the cron
//! schedule, the last handled run and the time; the task around it only sleeps, generates,
//! stores and delivers), and reports made on demand.

pub mod gather;
pub mod layout;
pub mod stepped;

use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use medic_report::cron::Cron;
use medic_report::period::Period;
use medic_state::{Report, ReportStore};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::{info, warn};

use crate::config::ReportConfig;
use crate::http::AppState;

/// A configured report, checked.
#[derive(Debug, Clone)]
pub struct Definition {
    pub config: ReportConfig,
    pub cron: Cron,
    pub tz: TimeZone,
}

/// The run of `cron` to carry out at `now`, given the last one handled: the latest scheduled
/// time in `(last, now]` (runs missed while medic was down collapse into one), or none.
/// Without a last run, nothing is due: a new report starts with its next scheduled time.
pub fn due(
    cron: &Cron,
    tz: &TimeZone,
    last: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut t = cron.next_after(last?, tz)?;
    if t > now {
        return None;
    }
    // At most a year of minutes; a longer gap runs the latest found.
    for _ in 0..525_600 {
        match cron.next_after(t, tz) {
            Some(n) if n <= now => t = n,
            _ => break,
        }
    }
    Some(t)
}

/// What the reports export about themselves.
#[derive(Clone, Default)]
pub struct ReportMetrics {
    generated: Family<Vec<(&'static str, String)>, Counter>,
    delivery_failures: Family<Vec<(&'static str, String)>, Counter>,
    last_seconds: Family<Vec<(&'static str, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl ReportMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "medic_reports_generated",
            "Reports generated, by report name",
            self.generated.clone(),
        );
        r.register(
            "medic_report_delivery_failures",
            "Report deliveries a receiver did not take",
            self.delivery_failures.clone(),
        );
        r.register(
            "medic_report_generation_seconds",
            "How long the last generation of each report took",
            self.last_seconds.clone(),
        );
    }
}

/// Reports: definitions, their store, their metrics.
pub struct Reports {
    pub definitions: Vec<Definition>,
    store: Box<dyn ReportStore>,
    metrics: ReportMetrics,
}

/// A generated report and its figures.
pub struct Generated {
    pub report: Report,
    pub figures: gather::Figures,
    pub summary: String,
}

impl Reports {
    pub fn new(
        configs: &[ReportConfig],
        store: Box<dyn ReportStore>,
        receivers: &[String],
        metrics: ReportMetrics,
    ) -> Result<Reports, String> {
        let mut definitions = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            let (cron, tz) = c.check(&format!("reports[{i}]"))?;
            for (j, r) in c.receivers.iter().enumerate() {
                if !receivers.contains(r) {
                    return Err(format!(
                        "reports[{i}].receivers[{j}]: no receiver named {r:?} in the alerting config"
                    ));
                }
            }
            definitions.push(Definition {
                config: c.clone(),
                cron,
                tz,
            });
        }
        Ok(Reports {
            definitions,
            store,
            metrics,
        })
    }

    pub fn definition(&self, name: &str) -> Option<&Definition> {
        self.definitions.iter().find(|d| d.config.name == name)
    }

    pub fn list(&self, limit: usize) -> Result<Vec<Report>, String> {
        self.store.list(limit).map_err(|e| e.to_string())
    }

    pub fn get(&self, id: i64) -> Result<Option<Report>, String> {
        self.store.get(id).map_err(|e| e.to_string())
    }

    /// When each definition runs next, after the last handled run (or now).
    pub fn next_runs(&self, now: Timestamp) -> Vec<(String, Option<i64>)> {
        self.definitions
            .iter()
            .map(|d| {
                let last = self
                    .store
                    .last_run(&d.config.name)
                    .ok()
                    .flatten()
                    .and_then(|ms| Timestamp::from_millisecond(ms).ok());
                let from = last.map_or(now, |l| l.max(now));
                let next = d.cron.next_after(from, &d.tz).map(|t| t.as_millisecond());
                (d.config.name.clone(), next)
            })
            .collect()
    }

    /// Generates and stores a report over `period`: of definition `name` when given (its
    /// title and series), else a plain one named `report`. Blocking (queries and SQLite).
    pub fn generate(
        &self,
        st: &AppState,
        name: Option<&str>,
        period: &Period,
        tz_name: &str,
    ) -> Result<Generated, String> {
        let def = match name {
            Some(n) => Some(
                self.definition(n)
                    .ok_or_else(|| format!("no report named {n:?} in the configuration"))?,
            ),
            None => None,
        };
        let req = gather::Request {
            name: name.unwrap_or("report"),
            title: def.and_then(|d| d.config.title.as_deref()),
            timezone: def.map_or(tz_name, |d| d.config.timezone.as_str()),
            series: def.map_or(&[], |d| d.config.series.as_slice()),
        };
        let started = std::time::Instant::now();
        let now = st.incidents.now_ms();
        let figures = gather::gather(st, &req, period, now);
        let doc = layout::build(&figures);
        let mut report = Report {
            id: 0,
            name: req.name.to_string(),
            period: period.label.clone(),
            start_ms: period.start_ms(),
            end_ms: period.end_ms(),
            generated_at: now,
            figures: serde_json::to_string(&figures).unwrap_or_default(),
            markdown: doc.markdown(),
            html: doc.html(),
        };
        report.id = self.store.save(&report).map_err(|e| e.to_string())?;
        let label = vec![("report", req.name.to_string())];
        self.metrics.generated.get_or_create(&label).inc();
        self.metrics
            .last_seconds
            .get_or_create(&label)
            .set(started.elapsed().as_secs_f64());
        let summary = layout::summary_lines(&figures).join("\n");
        Ok(Generated {
            report,
            figures,
            summary,
        })
    }

    /// Sends a generated report to `receivers`; the failures, each naming its receiver.
    pub async fn deliver(
        &self,
        am: &medic_alert::AlertManager,
        receivers: &[String],
        g: &Generated,
    ) -> Vec<String> {
        let doc = medic_alert::notify::Document {
            title: g.figures.title.clone(),
            kind: "report".into(),
            markdown: g.report.markdown.clone(),
            html: g.report.html.clone(),
            summary: g.summary.clone(),
        };
        let mut failures = Vec::new();
        for r in receivers {
            if let Err(e) = am.send_document(r, &doc).await {
                self.metrics
                    .delivery_failures
                    .get_or_create(&vec![("report", g.report.name.clone())])
                    .inc();
                failures.push(e);
            }
        }
        failures
    }

    /// The scheduler: runs what is due, then sleeps until the next scheduled time (at most a
    /// minute, so a changed clock is noticed), until `shutdown`.
    pub async fn run(st: Arc<AppState>, shutdown: impl std::future::Future<Output = ()>) {
        if st.reports.definitions.is_empty() {
            return shutdown.await;
        }
        tokio::pin!(shutdown);
        loop {
            run_due(&st).await;
            let now = Timestamp::now();
            let next = st
                .reports
                .next_runs(now)
                .into_iter()
                .filter_map(|(_, t)| t)
                .min()
                .unwrap_or(i64::MAX);
            let wait = (next - now.as_millisecond()).clamp(100, 60_000);
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            }
        }
    }
}

/// Runs every definition that is due now; a first start records now as handled.
async fn run_due(st: &Arc<AppState>) {
    let now = Timestamp::now();
    for d in &st.reports.definitions {
        let name = d.config.name.clone();
        let last = match st.reports.store.last_run(&name) {
            Ok(Some(ms)) => Timestamp::from_millisecond(ms).ok(),
            Ok(None) => {
                if let Err(e) = st.reports.store.set_last_run(&name, now.as_millisecond()) {
                    warn!(report = %name, error = %e, "cannot record a report's first start");
                }
                continue;
            }
            Err(e) => {
                warn!(report = %name, error = %e, "cannot read when a report last ran");
                continue;
            }
        };
        let Some(at) = due(&d.cron, &d.tz, last, now) else {
            continue;
        };
        let period = match Period::previous(d.config.period, at, &d.tz) {
            Ok(p) => p,
            Err(e) => {
                warn!(report = %name, error = %e, "cannot work out a report's period");
                continue;
            }
        };
        let st2 = st.clone();
        let (n2, tz) = (name.clone(), d.config.timezone.clone());
        let made = tokio::task::spawn_blocking(move || {
            st2.reports.generate(&st2, Some(&n2), &period, &tz)
        })
        .await;
        // Handled either way: a report that cannot be made now is not retried in a loop.
        if let Err(e) = st.reports.store.set_last_run(&name, at.as_millisecond()) {
            warn!(report = %name, error = %e, "cannot record a report's run");
        }
        match made {
            Ok(Ok(g)) => {
                info!(report = %name, id = g.report.id, period = %g.report.period, "report generated");
                for f in st
                    .reports
                    .deliver(&st.alerts, &d.config.receivers, &g)
                    .await
                {
                    warn!(report = %name, error = %f, "cannot deliver a report");
                }
            }
            Ok(Err(e)) => warn!(report = %name, error = %e, "cannot generate a report"),
            Err(e) => warn!(report = %name, error = %e, "report generation panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn due_runs_the_latest_missed_time_once() {
        let c = Cron::parse("0 8 1 * *").unwrap();
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        // Never run: nothing due; the first start only records itself.
        assert_eq!(due(&c, &tz, None, ts("2026-12-01T00:00:00Z")), None);
        // Last handled on 1 November; on 1 December at 00:00 UTC (08:00 Shanghai) it is due.
        let nov = Some(ts("2026-11-01T00:00:00Z"));
        assert_eq!(due(&c, &tz, nov, ts("2026-11-30T23:59:00Z")), None);
        assert_eq!(
            due(&c, &tz, nov, ts("2026-12-01T00:00:00Z")),
            Some(ts("2026-12-01T00:00:00Z"))
        );
        // Down from October to February: the February run only.
        assert_eq!(
            due(
                &c,
                &tz,
                Some(ts("2026-10-01T00:00:00Z")),
                ts("2027-02-03T00:00:00Z")
            ),
            Some(ts("2027-02-01T00:00:00Z"))
        );
        // Handled: not due again.
        assert_eq!(
            due(
                &c,
                &tz,
                Some(ts("2026-12-01T00:00:00Z")),
                ts("2026-12-01T00:05:00Z")
            ),
            None
        );
    }
}
