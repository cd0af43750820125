//! Go templates as in alert annotations: parsed, then executed with an alert's data and
//! Prometheus's functions (`query` against an empty store).
#![no_main]
use std::sync::Arc;

use medic_model::{Labels, MemStorage};
use medic_promql::{Engine, EngineOptions};
use medic_rules::template::{alert_data, funcs, Text};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > 4096 {
        return;
    }
    let engine = Engine::new(EngineOptions {
        timeout: std::time::Duration::from_millis(200),
        ..Default::default()
    });
    let f = funcs(engine, Arc::new(MemStorage::new()), 0, "http://medic");
    let labels = Labels::from_pairs([("alertname", "Down"), ("instance", "web-1")]);
    let d = alert_data(&labels, &Labels::default(), "http://medic", 1.5);
    let _ = Text::parse("fuzz", text).expand(&d, &f);
});
