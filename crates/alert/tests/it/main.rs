//! Integration tests of the alert crate: timelines with a deterministic clock, and receivers
//! against real HTTP and SMTP servers.

mod incidents;
mod restart;
mod timeline;

/// Inputs the fuzzers (`fuzz/`) found slow or broken, kept as regression tests: each must be
/// handled (accepted or refused) without panicking, and printed timings show how long it took.
#[test]
fn fuzz_regressions_are_handled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let t = std::time::Instant::now();
        let r = medic_alert::matchers::parse_matchers(&text);
        eprintln!(
            "{}: {:?} in {:?}",
            path.display(),
            r.as_ref().map(Vec::len),
            t.elapsed()
        );
    }
}
