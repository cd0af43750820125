//! medic's own `/metrics`: the registry every component registers into, HTTP request metrics,
//! and the standard `process_*` metrics read from `/proc`.

use std::fmt::Write;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of the HTTP metrics.
pub type HandlerLabels = Vec<(&'static str, String)>;

/// HTTP request metrics.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    /// Requests by handler and status code.
    pub requests: Family<HandlerLabels, Counter>,
    /// Request latency by handler.
    pub duration: Family<HandlerLabels, Histogram>,
    /// Requests refused by a limit, by reason.
    pub refused: Family<HandlerLabels, Counter>,
    /// Queries stopped because their client went away.
    pub queries_cancelled: Counter,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            refused: Family::default(),
            queries_cancelled: Counter::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 3.0, 10))
            }),
        }
    }
}

/// The registry plus process metrics, rendered in the OpenMetrics text format.
pub struct SelfMetrics {
    registry: Mutex<Registry>,
    start_time: f64,
}

impl SelfMetrics {
    /// An empty registry with `medic_build_info` and HTTP metrics registered.
    pub fn new(http: &HttpMetrics) -> Self {
        let mut registry = Registry::default();
        let build: Family<
            Vec<(&'static str, &'static str)>,
            prometheus_client::metrics::gauge::Gauge,
        > = Family::default();
        build
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        registry.register("medic_build_info", "medic's version; always 1", build);
        registry.register(
            "medic_http_requests",
            "HTTP requests by handler and code",
            http.requests.clone(),
        );
        registry.register(
            "medic_http_refused",
            "Requests refused by a limit, by reason",
            http.refused.clone(),
        );
        registry.register(
            "medic_query_cancelled",
            "Queries stopped before they finished because their client disconnected",
            http.queries_cancelled.clone(),
        );
        registry.register(
            "medic_http_request_duration_seconds",
            "HTTP request latency by handler",
            http.duration.clone(),
        );
        let start_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self {
            registry: Mutex::new(registry),
            start_time,
        }
    }

    /// Lets a component register its metrics.
    pub fn with_registry(&self, f: impl FnOnce(&mut Registry)) {
        f(&mut self.registry.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(
            &mut out,
            &self.registry.lock().unwrap_or_else(|e| e.into_inner()),
        );
        let body = out.strip_suffix("# EOF\n").unwrap_or(&out).to_string();
        let mut out = body;
        process_metrics(&mut out, self.start_time);
        out.push_str("# EOF\n");
        out
    }
}

fn process_metrics(out: &mut String, start_time: f64) {
    let _ = writeln!(out, "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {start_time}");
    // /proc/self/stat fields 14 and 15 are user and system time in clock ticks.
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // After the command name, field 3 (state) is index 0, so utime (14) is index 11.
            if f.len() > 12 {
                let ticks = clock_ticks();
                let cpu = (f[11].parse::<f64>().unwrap_or(0.0)
                    + f[12].parse::<f64>().unwrap_or(0.0))
                    / ticks;
                let _ = writeln!(out, "# HELP process_cpu_seconds Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total {cpu}");
            }
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            if let Some(kb) = line.strip_prefix("VmRSS:") {
                let bytes = kb
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0)
                    * 1024;
                let _ = writeln!(out, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {bytes}");
            }
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let n = fds.count();
        let _ = writeln!(out, "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds {n}");
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions and only reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics_with_process_metrics() {
        let m = SelfMetrics::new(&HttpMetrics::default());
        let text = m.render();
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("medic_build_info{version="));
        assert!(text.contains("process_resident_memory_bytes "));
        assert!(text.contains("process_cpu_seconds_total "));
        // medic's own scraper must be able to read it.
        let parsed =
            crate::scrape::parser::parse(&text, crate::scrape::parser::Format::OpenMetrics)
                .unwrap();
        assert!(parsed.len() > 3);
    }
}
