//! `POST /api/v2/alerts` bodies.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = medic_server::http::decode_posted_alerts(data, 1_700_000_000_000);
});
