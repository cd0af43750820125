//! Label matchers as amtool and the API take them, and series selectors.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = medic_alert::matchers::parse_matchers(text);
        let _ = medic_model::parse_selector(text);
        let _ = medic_model::parse_duration(text);
        let _ = medic_model::parse_api_time(text);
    }
});
