//! PromQL: parsed, then evaluated over a few series (an instant query and a short range).
#![no_main]
use std::sync::OnceLock;

use medic_model::{Labels, MemStorage, Sample};
use medic_promql::{Engine, EngineOptions};

fn store() -> &'static MemStorage {
    static S: OnceLock<MemStorage> = OnceLock::new();
    S.get_or_init(|| {
        let s = MemStorage::new();
        for (job, k) in [("api", 1.0), ("db", 2.0)] {
            let samples: Vec<Sample> = (0..60)
                .map(|i| Sample::new(i * 15_000, k * i as f64))
                .collect();
            s.add(
                Labels::from_pairs([("__name__", "http_requests_total"), ("job", job)]),
                &samples,
            );
        }
        s
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    if q.len() > 4096 {
        return;
    }
    let engine = Engine::new(EngineOptions {
        max_samples: 1_000_000,
        timeout: std::time::Duration::from_millis(500),
        ..Default::default()
    });
    let _ = engine.instant(store(), q, 900_000);
});
