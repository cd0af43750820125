//! Prometheus rule files (alerting, recording and medic's anomaly rules).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ =
            medic_rules::file::parse(text, std::path::Path::new("/nonexistent/rules.yml"), false);
    }
});
