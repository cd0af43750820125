//! Remote write bodies: snappy, then protobuf, with the decoded size bounded.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = medic_server::remote_write::decode(data, 16 << 20);
    // The same bytes as an already-compressed body: protobuf decoding on its own.
    if let Ok(framed) = snap::raw::Encoder::new().compress_vec(data) {
        let _ = medic_server::remote_write::decode(&framed, 16 << 20);
    }
});
