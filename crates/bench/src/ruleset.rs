//! The rule set of the rules benchmark: recording and alerting rules in the style of the
//! node-exporter mixin (utilisation, saturation, filesystem prediction) and of service/SLO
//! mixins (request rates, error ratios over the multi-window burn-rate windows, latency
//! quantiles), over the metrics the workload generates. Like the mixins it imitates, it is
//! generated: templates × modes, devices, mountpoints, handlers, windows and thresholds.

use std::fmt::Write;

struct Rules {
    out: String,
    count: usize,
}

impl Rules {
    fn group(&mut self, name: &str) {
        let _ = write!(self.out, "- name: {name}\n  rules:\n");
    }

    fn record(&mut self, name: &str, expr: &str) {
        self.count += 1;
        let _ = write!(
            self.out,
            "  - record: {name}\n    expr: {}\n",
            yaml_str(expr)
        );
    }

    fn alert(&mut self, name: &str, expr: &str, for_: &str, severity: &str, summary: &str) {
        self.count += 1;
        let _ = write!(
            self.out,
            "  - alert: {name}\n    expr: {}\n    for: {for_}\n    labels:\n      severity: {severity}\n    annotations:\n      summary: {}\n      description: {}\n",
            yaml_str(expr),
            yaml_str(summary),
            yaml_str("{{ $labels.instance }} of job {{ $labels.job }}: value {{ $value | humanize }}."),
        );
    }
}

fn yaml_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

const CPU_MODES: [&str; 8] = [
    "user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice",
];
const HANDLERS: [&str; 4] = ["/api/users", "/api/orders", "/api/search", "/health"];
const MOUNTPOINTS: [&str; 3] = ["/", "/var", "/home"];
/// Multi-window burn-rate windows, as SLO generators write them.
const SLO_WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// The rule file (YAML) and the number of rules in it; every group evaluates every `interval`.
pub fn rule_file(interval: &str) -> (String, usize) {
    let mut r = Rules {
        out: String::from("groups:\n"),
        count: 0,
    };
    node_exporter_rules(&mut r);
    node_exporter_cluster(&mut r);
    node_exporter(&mut r);
    api_rules(&mut r);
    api_slo_rules(&mut r);
    api_slo(&mut r);
    api_alerts(&mut r);

    // Every group evaluates at the same interval.
    let out = r
        .out
        .replace("  rules:\n", &format!("  interval: {interval}\n  rules:\n"));
    (out, r.count)
}

/// The `node-exporter.rules` group.
fn node_exporter_rules(r: &mut Rules) {
    let node = r#"job="node""#;
    r.group("node-exporter.rules");
    r.record(
        "instance:node_num_cpu:sum",
        &format!(r#"count without (cpu, mode) (node_cpu_seconds_total{{{node},mode="idle"}})"#),
    );
    for w in ["1m", "5m", "15m", "1h"] {
        r.record(
            &format!("instance:node_cpu_utilisation:rate{w}"),
            &format!(r#"1 - avg without (cpu) (sum without (mode) (rate(node_cpu_seconds_total{{{node}, mode=~"idle|iowait|steal"}}[{w}])))"#),
        );
    }
    for m in CPU_MODES {
        r.record(
            &format!("instance:node_cpu_{m}:rate5m"),
            &format!(r#"sum without (cpu) (rate(node_cpu_seconds_total{{{node}, mode="{m}"}}[5m])) / on (instance) group_left instance:node_num_cpu:sum"#),
        );
    }
    for l in ["1", "5", "15"] {
        r.record(
            &format!("instance:node_load{l}_per_cpu:ratio"),
            &format!("node_load{l}{{{node}}} / instance:node_num_cpu:sum{{{node}}}"),
        );
    }
    r.record(
        "instance:node_memory_utilisation:ratio",
        &format!("1 - ((node_memory_MemAvailable_bytes{{{node}}} or (node_memory_Buffers_bytes{{{node}}} + node_memory_Cached_bytes{{{node}}} + node_memory_MemFree_bytes{{{node}}})) / node_memory_MemTotal_bytes{{{node}}})"),
    );
    for m in ["MemAvailable", "MemFree", "Cached", "Buffers"] {
        r.record(
            &format!("instance:node_memory_{}:ratio", m.to_lowercase()),
            &format!("node_memory_{m}_bytes{{{node}}} / node_memory_MemTotal_bytes{{{node}}}"),
        );
    }
    for dir in ["receive", "transmit"] {
        for w in ["1m", "5m", "1h"] {
            r.record(
                &format!("instance:node_network_{dir}_bytes_excluding_lo:rate{w}"),
                &format!(r#"sum without (device) (rate(node_network_{dir}_bytes_total{{{node}, device!="lo"}}[{w}]))"#),
            );
        }
    }
    for op in ["read", "written"] {
        for w in ["1m", "5m", "1h"] {
            r.record(
                &format!("instance_device:node_disk_{op}_bytes:rate{w}"),
                &format!("rate(node_disk_{op}_bytes_total{{{node}}}[{w}])"),
            );
        }
        r.record(
            &format!("instance:node_disk_{op}_bytes:rate5m"),
            &format!("sum without (device) (instance_device:node_disk_{op}_bytes:rate5m)"),
        );
    }
    r.record(
        "instance_mountpoint:node_filesystem_used:ratio",
        &format!(r#"1 - node_filesystem_avail_bytes{{{node}, fstype!=""}} / node_filesystem_size_bytes{{{node}, fstype!=""}}"#),
    );
    for mp in MOUNTPOINTS {
        for h in ["4", "24"] {
            r.record(
                &format!("instance:node_filesystem_avail_{}_predicted_{h}h:bytes", mp_name(mp)),
                &format!(r#"predict_linear(node_filesystem_avail_bytes{{{node}, mountpoint="{mp}"}}[1h], {h} * 3600)"#),
            );
        }
    }
    r.record(
        "instance:node_uptime:seconds",
        &format!("time() - node_boot_time_seconds{{{node}}}"),
    );
}

/// The `node-exporter.cluster` group.
fn node_exporter_cluster(r: &mut Rules) {
    r.group("node-exporter.cluster");
    for w in ["1m", "5m", "15m", "1h"] {
        r.record(
            &format!("cluster:node_cpu_utilisation:avg_rate{w}"),
            &format!("avg(instance:node_cpu_utilisation:rate{w})"),
        );
    }
    for m in CPU_MODES {
        r.record(
            &format!("cluster:node_cpu_{m}:avg_rate5m"),
            &format!("avg(instance:node_cpu_{m}:rate5m)"),
        );
    }
    for agg in ["avg", "max", "min"] {
        r.record(
            &format!("cluster:node_memory_utilisation:{agg}"),
            &format!("{agg}(instance:node_memory_utilisation:ratio)"),
        );
    }
    r.record(
        "cluster:node_memory_utilisation:p90",
        "quantile(0.9, instance:node_memory_utilisation:ratio)",
    );
    for dir in ["receive", "transmit"] {
        for w in ["1m", "5m", "1h"] {
            r.record(
                &format!("cluster:node_network_{dir}_bytes:sum_rate{w}"),
                &format!("sum(instance:node_network_{dir}_bytes_excluding_lo:rate{w})"),
            );
        }
    }
    for op in ["read", "written"] {
        for w in ["1m", "5m", "1h"] {
            r.record(
                &format!("cluster:node_disk_{op}_bytes:sum_rate{w}"),
                &format!("sum(instance_device:node_disk_{op}_bytes:rate{w})"),
            );
        }
    }
    r.record(
        "cluster:node_cpu_utilisation:top10",
        "topk(10, instance:node_cpu_utilisation:rate5m)",
    );
    r.record(
        "cluster:node_filesystem_used:max_by_mountpoint",
        "max by (mountpoint) (instance_mountpoint:node_filesystem_used:ratio)",
    );
    r.record("cluster:node_count:sum", "count(instance:node_num_cpu:sum)");
}

/// The `node-exporter` group.
fn node_exporter(r: &mut Rules) {
    let node = r#"job="node""#;
    r.group("node-exporter");
    for (sev, pct, h) in [("warning", 15, "24"), ("critical", 10, "4")] {
        r.alert(
            &format!("NodeFilesystemSpaceFillingUp{h}h"),
            &format!(r#"(node_filesystem_avail_bytes{{{node}, fstype!=""}} / node_filesystem_size_bytes{{{node}, fstype!=""}} * 100 < {pct} and predict_linear(node_filesystem_avail_bytes{{{node}, fstype!=""}}[1h], {h} * 60 * 60) < 0)"#),
            "1h",
            sev,
            "Filesystem {{ $labels.mountpoint }} on {{ $labels.instance }} is predicted to run out of space within the next {{ $labels.h }} hours.",
        );
    }
    for (sev, pct) in [("warning", 5), ("critical", 3)] {
        r.alert(
            &format!("NodeFilesystemAlmostOutOfSpace{pct}"),
            &format!(r#"(node_filesystem_avail_bytes{{{node}, fstype!=""}} / node_filesystem_size_bytes{{{node}, fstype!=""}} * 100 < {pct})"#),
            "30m",
            sev,
            "Filesystem {{ $labels.mountpoint }} has only {{ printf \"%.2f\" $value }}% available space left.",
        );
    }
    for mp in MOUNTPOINTS {
        r.alert(
            &format!("NodeFilesystemUsageHigh{}", mp_name(mp)),
            &format!(
                r#"instance_mountpoint:node_filesystem_used:ratio{{mountpoint="{mp}"}} > 0.9"#
            ),
            "15m",
            "warning",
            "{{ $labels.mountpoint }} is {{ $value | humanizePercentage }} full.",
        );
    }
    for (sev, pct) in [("warning", 90), ("critical", 97)] {
        r.alert(
            &format!("NodeCPUHighUsage{pct}"),
            &format!(r#"sum without (mode) (avg without (cpu) (rate(node_cpu_seconds_total{{{node}, mode!="idle"}}[2m]))) * 100 > {pct}"#),
            "15m",
            sev,
            "CPU usage at {{ $labels.instance }} has been above {{ $value | humanize }}% for the last 15 minutes.",
        );
    }
    for m in ["iowait", "steal", "system", "softirq", "irq"] {
        r.alert(
            &format!("NodeCPU{}High", title(m)),
            &format!("instance:node_cpu_{m}:rate5m > 0.3"),
            "10m",
            "warning",
            "CPU time in mode is {{ $value | humanizePercentage }} on {{ $labels.instance }}.",
        );
    }
    r.alert(
        "NodeSystemSaturation",
        &format!(r#"node_load1{{{node}}} / count without (cpu, mode) (node_cpu_seconds_total{{{node}, mode="idle"}}) > 2"#),
        "15m",
        "warning",
        "System load per core at {{ $labels.instance }} has been above 2 for the last 15 minutes, is currently at {{ printf \"%.2f\" $value }}.",
    );
    for l in ["1", "5", "15"] {
        r.alert(
            &format!("NodeLoad{l}High"),
            &format!("instance:node_load{l}_per_cpu:ratio > 1.5"),
            "10m",
            "warning",
            "Load per CPU is {{ $value | humanize }}.",
        );
    }
    for (sev, pct) in [("warning", 90), ("critical", 95)] {
        r.alert(
            &format!("NodeMemoryHighUtilization{pct}"),
            &format!("100 - (node_memory_MemAvailable_bytes{{{node}}} / node_memory_MemTotal_bytes{{{node}}} * 100) > {pct}"),
            "15m",
            sev,
            "Memory is filling up at {{ $labels.instance }}, has been above {{ $value | humanize }}% for the last 15 minutes.",
        );
    }
    for dir in ["receive", "transmit"] {
        r.alert(
            &format!("NodeNetwork{}High", title(dir)),
            &format!("instance:node_network_{dir}_bytes_excluding_lo:rate5m > 1e9"),
            "10m",
            "warning",
            "{{ $labels.instance }} moves {{ $value | humanize1024 }}B/s.",
        );
    }
    for op in ["read", "written"] {
        r.alert(
            &format!("NodeDisk{}High", title(op)),
            &format!("instance_device:node_disk_{op}_bytes:rate5m > 5e8"),
            "10m",
            "warning",
            "Disk {{ $labels.device }} at {{ $labels.instance }}: {{ $value | humanize1024 }}B/s.",
        );
    }
    r.alert(
        "NodeRebooted",
        "instance:node_uptime:seconds < 600",
        "0s",
        "info",
        "{{ $labels.instance }} rebooted {{ $value | humanizeDuration }} ago.",
    );
}

/// The `api.rules` group.
fn api_rules(r: &mut Rules) {
    let api = r#"job="api""#;
    r.group("api.rules");
    for w in ["1m", "5m", "30m", "1h"] {
        r.record(
            &format!("job:http_requests:rate{w}"),
            &format!("sum by (job) (rate(http_requests_total{{{api}}}[{w}]))"),
        );
        r.record(
            &format!("job_handler:http_requests:rate{w}"),
            &format!("sum by (job, handler) (rate(http_requests_total{{{api}}}[{w}]))"),
        );
    }
    r.record(
        "job_handler_status:http_requests:rate5m",
        &format!("sum by (job, handler, status) (rate(http_requests_total{{{api}}}[5m]))"),
    );
    r.record(
        "instance:http_requests:rate5m",
        &format!("sum by (job, instance) (rate(http_requests_total{{{api}}}[5m]))"),
    );
    r.record(
        "instance_handler:http_requests:rate5m",
        &format!("sum by (job, instance, handler) (rate(http_requests_total{{{api}}}[5m]))"),
    );
    for s in ["200", "404", "500"] {
        r.record(
            &format!("job:http_requests_{s}:rate5m"),
            &format!(r#"sum by (job) (rate(http_requests_total{{{api}, status="{s}"}}[5m]))"#),
        );
    }
    for h in HANDLERS {
        for w in ["1m", "5m", "30m", "1h"] {
            r.record(
                &format!("handler_{}:http_requests:rate{w}", handler_name(h)),
                &format!(r#"sum by (job, instance) (rate(http_requests_total{{{api}, handler="{h}"}}[{w}]))"#),
            );
        }
    }
    for q in ["50", "90", "95", "99"] {
        r.record(
            &format!("job_handler_method:http_request_duration_seconds:p{q}"),
            &format!("histogram_quantile(0.{q}, sum by (job, handler, method, le) (rate(http_request_duration_seconds_bucket{{{api}}}[5m])))"),
        );
    }
    for q in ["50", "90", "99"] {
        r.record(
            &format!("job:http_request_duration_seconds:p{q}"),
            &format!("histogram_quantile(0.{q}, sum by (job, le) (rate(http_request_duration_seconds_bucket{{{api}}}[5m])))"),
        );
    }
    r.record(
        "instance:http_request_duration_seconds:p99",
        &format!("histogram_quantile(0.99, sum by (job, instance, le) (rate(http_request_duration_seconds_bucket{{{api}}}[5m])))"),
    );
    r.record(
        "job_handler:http_request_duration_seconds:mean5m",
        &format!("sum by (job, handler) (rate(http_request_duration_seconds_sum{{{api}}}[5m])) / sum by (job, handler) (rate(http_request_duration_seconds_count{{{api}}}[5m]))"),
    );
    r.record(
        "instance:process_cpu:rate5m",
        &format!("rate(process_cpu_seconds_total{{{api}}}[5m])"),
    );
    r.record(
        "job:process_resident_memory_bytes:max",
        &format!("max by (job) (process_resident_memory_bytes{{{api}}})"),
    );
    r.record(
        "job:go_goroutines:max",
        &format!("max by (job) (go_goroutines{{{api}}})"),
    );
}

/// The `api.slo.rules` group.
fn api_slo_rules(r: &mut Rules) {
    let api = r#"job="api""#;
    r.group("api.slo.rules");
    for w in SLO_WINDOWS {
        r.record(
            &format!("job_handler:http_errors:ratio_rate{w}"),
            &format!(r#"sum by (job, handler) (rate(http_requests_total{{{api}, status=~"5.."}}[{w}])) / sum by (job, handler) (rate(http_requests_total{{{api}}}[{w}]))"#),
        );
        r.record(
            &format!("job:http_errors:ratio_rate{w}"),
            &format!(r#"sum by (job) (rate(http_requests_total{{{api}, status=~"5.."}}[{w}])) / sum by (job) (rate(http_requests_total{{{api}}}[{w}]))"#),
        );
    }

    // One SLO per handler, as SLO generators emit them: its error ratio over every window.
    for h in HANDLERS {
        for w in SLO_WINDOWS {
            r.record(
                &format!("slo:{}_errors:ratio_rate{w}", handler_name(h)),
                &format!(r#"sum by (job) (rate(http_requests_total{{{api}, handler="{h}", status=~"5.."}}[{w}])) / sum by (job) (rate(http_requests_total{{{api}, handler="{h}"}}[{w}]))"#),
            );
        }
    }
}

/// The `api.slo` group.
fn api_slo(r: &mut Rules) {
    r.group("api.slo");
    for h in HANDLERS {
        for (long, short, factor, sev) in [
            ("1h", "5m", "14.4", "critical"),
            ("6h", "30m", "6", "critical"),
            ("1d", "2h", "3", "warning"),
            ("3d", "6h", "1", "warning"),
        ] {
            r.alert(
                &format!("ErrorBudgetBurn{}{long}", title(&handler_name(h))),
                &format!(r#"job_handler:http_errors:ratio_rate{long}{{handler="{h}"}} > ({factor} * 0.001) and job_handler:http_errors:ratio_rate{short}{{handler="{h}"}} > ({factor} * 0.001)"#),
                "2m",
                sev,
                "{{ $labels.handler }} burns its error budget {{ $value | humanizePercentage }} over {{ $labels.job }}.",
            );
        }
    }
}

/// The `api.alerts` group.
fn api_alerts(r: &mut Rules) {
    let api = r#"job="api""#;
    r.group("api.alerts");
    for h in HANDLERS {
        for q in ["90", "99"] {
            r.alert(
                &format!("HighLatency{}P{q}", title(&handler_name(h))),
                &format!(r#"job_handler_method:http_request_duration_seconds:p{q}{{handler="{h}"}} > 0.5"#),
                "10m",
                "warning",
                "p{q} latency of {{ $labels.handler }} is {{ $value | humanizeDuration }}.",
            );
        }
        r.alert(
            &format!("HighErrorRate{}", title(&handler_name(h))),
            &format!(r#"sum by (job, instance) (rate(http_requests_total{{{api}, handler="{h}", status="500"}}[5m])) / sum by (job, instance) (rate(http_requests_total{{{api}, handler="{h}"}}[5m])) > 0.05"#),
            "5m",
            "critical",
            "{{ $labels.instance }} fails {{ $value | humanizePercentage }} of requests.",
        );
        r.alert(
            &format!("NotFoundSpike{}", title(&handler_name(h))),
            &format!(r#"sum by (job, instance) (rate(http_requests_total{{{api}, handler="{h}", status="404"}}[5m])) > 10"#),
            "5m",
            "info",
            "{{ $labels.instance }} answers {{ $value | humanize }} 404/s.",
        );
    }
    r.alert(
        "InstanceHighLatency",
        "instance:http_request_duration_seconds:p99 > 1",
        "10m",
        "warning",
        "p99 at {{ $labels.instance }} is {{ $value | humanizeDuration }}.",
    );
    r.alert(
        "InstanceTrafficDrop",
        "instance:http_requests:rate5m < 0.5 * avg by (job) (instance:http_requests:rate5m)",
        "10m",
        "warning",
        "{{ $labels.instance }} serves {{ $value | humanize }} req/s.",
    );
    r.alert(
        "ProcessHighMemory",
        &format!("process_resident_memory_bytes{{{api}}} > 2e9"),
        "15m",
        "warning",
        "{{ $labels.instance }} uses {{ $value | humanize1024 }}B.",
    );
    r.alert(
        "ProcessFdsHigh",
        &format!("process_open_fds{{{api}}} > 1000"),
        "15m",
        "warning",
        "{{ $labels.instance }} holds {{ $value }} file descriptors.",
    );
    r.alert(
        "GoroutinesHigh",
        &format!("go_goroutines{{{api}}} > 5000"),
        "15m",
        "warning",
        "{{ $labels.instance }} runs {{ $value }} goroutines.",
    );
    r.alert(
        "ProcessCPUHigh",
        "instance:process_cpu:rate5m > 0.9",
        "15m",
        "warning",
        "{{ $labels.instance }} uses {{ $value | humanizePercentage }} of a CPU.",
    );
}

fn mp_name(mp: &str) -> String {
    match mp {
        "/" => "Root".into(),
        m => title(m.trim_start_matches('/')),
    }
}

fn handler_name(h: &str) -> String {
    h.trim_start_matches('/').replace('/', "_")
}

fn title(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}
