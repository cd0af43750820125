//! A deterministic, realistic-looking workload: node-exporter-like hosts and HTTP services, with
//! counters that grow by noisy amounts (and sometimes reset), gauges on daily cycles with noise,
//! histogram buckets, values rounded the way exporters round them.

use medic_model::Sample;

/// splitmix64: small, fast, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy)]
enum Kind {
    /// Counter growing by about `rate` per second, values with `decimals` decimals.
    Counter { rate: f64, decimals: i32 },
    /// Gauge around `base` with a daily swing of `amp` and noise, rounded to `step`.
    Gauge {
        base: f64,
        amp: f64,
        noise: f64,
        step: f64,
    },
    /// Linear fill (filesystem), rounded to `step`.
    Trend { start: f64, per_sec: f64, step: f64 },
}

/// One series and how its values evolve.
pub struct SeriesSpec {
    pub labels: Vec<(String, String)>,
    kind: Kind,
    offset_ms: i64,
    seed: u64,
}

fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// About `n` series: half node-like hosts (55 series each), half HTTP services (~140 each).
pub fn series(n: usize, seed: u64) -> Vec<SeriesSpec> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n + 200);
    let mut host = 0;
    let mut svc = 0;
    while out.len() < n {
        if out.len() < n / 2 || svc * 140 > host * 55 + n / 2 {
            let inst = format!("node-{host:04}:9100");
            let off = (rng.next_u64() % 14_999 + 1) as i64;
            node_cpu(&mut out, &mut rng, &inst, off);
            node_memory(&mut out, &mut rng, &inst, off);
            node_filesystems(&mut out, &mut rng, &inst, off);
            node_network(&mut out, &mut rng, &inst, off);
            node_disks(&mut out, &mut rng, &inst, off);
            node_load(&mut out, &mut rng, &inst, off);
            host += 1;
        } else {
            let inst = format!("api-{svc:04}:8080");
            let off = (rng.next_u64() % 14_999 + 1) as i64;
            api_service(&mut out, &mut rng, &inst, off);
            svc += 1;
        }
    }
    out.truncate(n);
    out
}

fn node_cpu(out: &mut Vec<SeriesSpec>, rng: &mut Rng, inst: &str, off: i64) {
    for cpu in 0..4 {
        for (mode, share) in [
            ("user", 0.2),
            ("system", 0.05),
            ("idle", 0.7),
            ("iowait", 0.01),
            ("irq", 0.001),
            ("softirq", 0.005),
            ("steal", 0.002),
            ("nice", 0.0005),
        ] {
            out.push(SeriesSpec {
                labels: l(&[
                    ("__name__", "node_cpu_seconds_total"),
                    ("job", "node"),
                    ("instance", inst),
                    ("cpu", &cpu.to_string()),
                    ("mode", mode),
                ]),
                kind: Kind::Counter {
                    rate: share * (0.6 + rng.f() * 0.8),
                    decimals: 2,
                },
                offset_ms: off,
                seed: rng.next_u64(),
            });
        }
    }
}

fn node_memory(out: &mut Vec<SeriesSpec>, rng: &mut Rng, inst: &str, off: i64) {
    for (name, base) in [
        ("node_memory_MemAvailable_bytes", 6e9),
        ("node_memory_MemFree_bytes", 2e9),
        ("node_memory_Cached_bytes", 3e9),
        ("node_memory_Buffers_bytes", 3e8),
        ("node_memory_MemTotal_bytes", 16e9),
    ] {
        let amp = if name.ends_with("Total_bytes") {
            0.0
        } else {
            base * 0.2
        };
        out.push(SeriesSpec {
            labels: l(&[("__name__", name), ("job", "node"), ("instance", inst)]),
            kind: Kind::Gauge {
                base,
                amp,
                noise: amp * 0.05,
                step: 4096.0,
            },
            offset_ms: off,
            seed: rng.next_u64(),
        });
    }
}

fn node_filesystems(out: &mut Vec<SeriesSpec>, rng: &mut Rng, inst: &str, off: i64) {
    for mp in ["/", "/var", "/home"] {
        let size = 1e11 * (1.0 + rng.f());
        out.push(SeriesSpec {
            labels: l(&[
                ("__name__", "node_filesystem_avail_bytes"),
                ("job", "node"),
                ("instance", inst),
                ("mountpoint", mp),
                ("fstype", "ext4"),
            ]),
            kind: Kind::Trend {
                start: size * 0.6,
                per_sec: -(rng.f() * 2e4),
                step: 4096.0,
            },
            offset_ms: off,
            seed: rng.next_u64(),
        });
        out.push(SeriesSpec {
            labels: l(&[
                ("__name__", "node_filesystem_size_bytes"),
                ("job", "node"),
                ("instance", inst),
                ("mountpoint", mp),
                ("fstype", "ext4"),
            ]),
            kind: Kind::Gauge {
                base: size.round(),
                amp: 0.0,
                noise: 0.0,
                step: 4096.0,
            },
            offset_ms: off,
            seed: rng.next_u64(),
        });
    }
}

fn node_network(out: &mut Vec<SeriesSpec>, rng: &mut Rng, inst: &str, off: i64) {
    for dev in ["eth0", "eth1"] {
        for name in [
            "node_network_receive_bytes_total",
            "node_network_transmit_bytes_total",
        ] {
            out.push(SeriesSpec {
                labels: l(&[
                    ("__name__", name),
                    ("job", "node"),
                    ("instance", inst),
                    ("device", dev),
                ]),
                kind: Kind::Counter {
                    rate: 1e5 + rng.f() * 1e6,
                    decimals: 0,
                },
                offset_ms: off,
                seed: rng.next_u64(),
            });
        }
    }
}

fn node_disks(out: &mut Vec<SeriesSpec>, rng: &mut Rng, inst: &str, off: i64) {
    for dev in ["sda", "sdb"] {
        for name in [
            "node_disk_read_bytes_total",
            "node_disk_written_bytes_total",
        ] {
            out.push(SeriesSpec {
                labels: l(&[
                    ("__name__", name),
                    ("job", "node"),
                    ("instance", inst),
                    ("device", dev),
                ]),
                kind: Kind::Counter {
                    rate: 1e4 + rng.f() * 1e5,
                    decimals: 0,
                },
                offset_ms: off,
                seed: rng.next_u64(),
            });
        }
    }
}

fn node_load(out: &mut Vec<SeriesSpec>, rng: &mut Rng, inst: &str, off: i64) {
    for name in ["node_load1", "node_load5", "node_load15"] {
        out.push(SeriesSpec {
            labels: l(&[("__name__", name), ("job", "node"), ("instance", inst)]),
            kind: Kind::Gauge {
                base: 1.5,
                amp: 1.0,
                noise: 0.3,
                step: 0.01,
            },
            offset_ms: off,
            seed: rng.next_u64(),
        });
    }
    out.push(SeriesSpec {
        labels: l(&[
            ("__name__", "node_boot_time_seconds"),
            ("job", "node"),
            ("instance", inst),
        ]),
        kind: Kind::Gauge {
            base: 1.69e9,
            amp: 0.0,
            noise: 0.0,
            step: 1.0,
        },
        offset_ms: off,
        seed: rng.next_u64(),
    });
}

/// An HTTP service's series.
fn api_service(out: &mut Vec<SeriesSpec>, rng: &mut Rng, inst: &str, off: i64) {
    let handlers = ["/api/users", "/api/orders", "/api/search", "/health"];
    for h in handlers {
        let rps = 5.0 + rng.f() * 50.0;
        for method in ["GET", "POST"] {
            for (status, share) in [("200", 0.97), ("404", 0.02), ("500", 0.01)] {
                out.push(SeriesSpec {
                    labels: l(&[
                        ("__name__", "http_requests_total"),
                        ("job", "api"),
                        ("instance", inst),
                        ("handler", h),
                        ("method", method),
                        ("status", status),
                    ]),
                    kind: Kind::Counter {
                        rate: rps * share * 0.5,
                        decimals: 0,
                    },
                    offset_ms: off,
                    seed: rng.next_u64(),
                });
            }
            let les = [
                "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
                "+Inf",
            ];
            for (i, le) in les.iter().enumerate() {
                let share = 1.0 - (-(i as f64 + 1.0) / 2.5).exp();
                let share = if *le == "+Inf" { 1.0 } else { share };
                out.push(SeriesSpec {
                    labels: l(&[
                        ("__name__", "http_request_duration_seconds_bucket"),
                        ("job", "api"),
                        ("instance", inst),
                        ("handler", h),
                        ("method", method),
                        ("le", le),
                    ]),
                    kind: Kind::Counter {
                        rate: rps * 0.5 * share,
                        decimals: 0,
                    },
                    offset_ms: off,
                    seed: rng.next_u64(),
                });
            }
            for (name, rate, dec) in [
                ("http_request_duration_seconds_sum", rps * 0.04, 3),
                ("http_request_duration_seconds_count", rps * 0.5, 0),
            ] {
                out.push(SeriesSpec {
                    labels: l(&[
                        ("__name__", name),
                        ("job", "api"),
                        ("instance", inst),
                        ("handler", h),
                        ("method", method),
                    ]),
                    kind: Kind::Counter {
                        rate,
                        decimals: dec,
                    },
                    offset_ms: off,
                    seed: rng.next_u64(),
                });
            }
        }
    }
    for (name, base, step) in [
        ("process_resident_memory_bytes", 2.5e8, 4096.0),
        ("process_open_fds", 120.0, 1.0),
        ("go_goroutines", 80.0, 1.0),
        ("process_cpu_seconds_total", 0.0, 0.01),
    ] {
        let kind = if name.ends_with("_total") {
            Kind::Counter {
                rate: 0.3,
                decimals: 2,
            }
        } else {
            Kind::Gauge {
                base,
                amp: base * 0.1,
                noise: base * 0.03,
                step,
            }
        };
        out.push(SeriesSpec {
            labels: l(&[("__name__", name), ("job", "api"), ("instance", inst)]),
            kind,
            offset_ms: off,
            seed: rng.next_u64(),
        });
    }
}

fn round(v: f64, step: f64) -> f64 {
    (v / step).round() * step
}

impl SeriesSpec {
    /// Samples every 15 s from `start` (aligned to this series' scrape offset) to `end`.
    pub fn samples(&self, start: i64, end: i64) -> Vec<Sample> {
        let mut rng = Rng::new(self.seed);
        let step = 15_000;
        let first = start - start.rem_euclid(step) + self.offset_ms;
        let mut out = Vec::with_capacity(((end - first) / step + 1).max(0) as usize);
        let mut counter = rng.f() * 1e4;
        let mut noise = 0.0;
        // About one in twenty counters restarts once, as processes do.
        let reset_at = if rng.f() < 0.05 {
            Some(first + (rng.f() * (end - first) as f64) as i64)
        } else {
            None
        };
        let mut t = first;
        while t < end {
            let v = match self.kind {
                Kind::Counter { rate, decimals } => {
                    if reset_at.is_some_and(|r| t >= r && t - step < r) {
                        counter = 0.0;
                    }
                    counter += rate * 15.0 * (0.5 + rng.f());
                    let p = 10f64.powi(decimals);
                    (counter * p).floor() / p
                }
                Kind::Gauge {
                    base,
                    amp,
                    noise: n,
                    step: s,
                } => {
                    noise = 0.9 * noise + (rng.f() - 0.5) * n;
                    let day = (t as f64 / 86_400_000.0) * std::f64::consts::TAU;
                    round(base + amp * day.sin() + noise, s)
                }
                Kind::Trend {
                    start: s0,
                    per_sec,
                    step: s,
                } => round(s0 + per_sec * ((t - first) as f64 / 1000.0), s),
            };
            out.push(Sample::new(t, v));
            t += step;
        }
        out
    }
}
