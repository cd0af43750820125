//! Alertmanager configuration files.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = medic_alert::config::Config::parse(
            text,
            std::path::Path::new("/nonexistent/alertmanager.yml"),
        );
    }
});
