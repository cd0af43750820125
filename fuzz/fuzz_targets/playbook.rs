//! Playbooks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = medic_heal::playbook::Playbook::parse(
            std::path::Path::new("/nonexistent/playbook.yml"),
            text,
        );
    }
});
