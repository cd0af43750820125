//! Scraped bodies in both exposition formats.
#![no_main]
use medic_server::scrape::parser::{parse, Format};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse(text, Format::Text);
        let _ = parse(text, Format::OpenMetrics);
    }
});
