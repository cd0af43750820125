//! Half an hour of the web service's past, written into medic's store before medic starts, so
//! the anomaly rule has learned the request rate's normal level and spread by the time the
//! faults begin (a detector needs a few hundred points; the demo lasts about a minute). The
//! series are what the patients' scrapes give, without the per-instance labels the supervisor
//! assigns; the past traffic wobbles as the quiet periods make it wobble.

use std::path::Path;

use anyhow::Context;
use medic_model::{Appendable, Labels};

/// How much past traffic is written.
const SPAN_MS: i64 = 30 * 60_000;

/// Writes the past into the store at `data` (medic is not running yet).
pub fn seed(data: &Path, base_load: f64) -> anyhow::Result<()> {
    // The store's own log lines would interrupt the demo's timeline.
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
        write(data, base_load)
    })
}

fn write(data: &Path, base_load: f64) -> anyhow::Result<()> {
    let opts = medic_tsdb::Options {
        fsync: medic_tsdb::FsyncPolicy::Never,
        ..medic_tsdb::Options::default()
    };
    let db = medic_tsdb::Db::open(data, opts, medic_tsdb::Metrics::default())
        .with_context(|| format!("opening {} to write the demo's history", data.display()))?;
    let now = medic_model::Clock::now_ms(&medic_model::SystemClock) / 1000 * 1000;
    let instances = ["web-1", "web-2", "web-3"];
    let series: Vec<(Labels, Labels)> = instances
        .iter()
        .map(|i| {
            let l = |code: &str| {
                Labels::from_pairs([
                    ("__name__", "demo_http_requests_total"),
                    ("code", code),
                    ("instance", i),
                    ("job", "web"),
                ])
            };
            (l("200"), l("500"))
        })
        .collect();
    let mut ok = vec![0.0; instances.len()];
    let mut failed = vec![0.0; instances.len()];
    let mut t = now - SPAN_MS;
    let mut app = db.appender();
    while t < now - 1000 {
        // The quiet periods' wobble: ±20 % around the base load, shared by the instances.
        let jitter = ((t / 7 % 41) as f64 - 20.0) / 100.0;
        let each = base_load * (1.0 + jitter) / instances.len() as f64;
        for (k, (l200, l500)) in series.iter().enumerate() {
            ok[k] += (each * 0.99).round();
            failed[k] += if (t / 1000 + k as i64) % 10 == 0 {
                1.0
            } else {
                0.0
            };
            app.append_labels(l200, t, ok[k])?;
            app.append_labels(l500, t, failed[k])?;
        }
        t += 1000;
    }
    app.commit()?;
    db.close()?;
    Ok(())
}
