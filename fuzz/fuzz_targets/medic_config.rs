//! medic.yml (and Prometheus's prometheus.yml, which it reads).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = medic_server::Config::parse(text, std::path::Path::new("/nonexistent/medic.yml"));
    }
});
