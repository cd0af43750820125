//! The log store on a real directory: head, flush to parts, reopen, WAL replay and damage,
//! quarantine, retention, the query budget.

use std::time::Duration;

use medic_logs::logql::{self, logs, Direction};
use medic_logs::store::{LogStore, Options};
use medic_logs::{Entry, Stream};
use medic_model::{Labels, Matcher};

const NS: i64 = 1_000_000_000;
const NOW: i64 = 1_750_000_000 * NS;

fn push_of(app: &str, from: i64, n: usize) -> Vec<Stream> {
    vec![Stream {
        labels: Labels::from_pairs([("app", app), ("env", "prod")]),
        entries: (0..n)
            .map(|i| {
                Entry::new(
                    from + i as i64 * NS,
                    format!("{app} line {i} status={}", 200 + i % 3),
                )
            })
            .collect(),
    }]
}

fn lines(store: &LogStore, app: &str) -> Vec<String> {
    let m = [Matcher::equal("app", app)];
    let streams = store.select_streams(&m, 0, i64::MAX).unwrap();
    streams
        .into_iter()
        .flat_map(|s| s.entries)
        .map(|e| e.line)
        .collect()
}

fn opts(dir: &std::path::Path) -> Options {
    let mut o = Options::new(dir);
    o.retention = Duration::from_secs(365 * 86400);
    o
}

#[test]
fn entries_survive_flush_reopen_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(opts(dir.path())).unwrap();
    // Two hours, so the flush writes two parts; one push out of order.
    store
        .push(push_of("a", NOW - 2 * 3600 * NS, 100), NOW)
        .unwrap();
    store.push(push_of("a", NOW - 3600 * NS, 100), NOW).unwrap();
    store.push(push_of("b", NOW - 3000 * NS, 10), NOW).unwrap();
    let before = lines(&store, "a");
    assert_eq!(before.len(), 200);
    store.flush().unwrap();
    assert!(store.stats().parts >= 2, "{:?}", store.stats());
    assert_eq!(store.stats().head_entries, 0);
    assert_eq!(lines(&store, "a"), before);
    // Pushed after the flush: only in the WAL when the store reopens.
    store.push(push_of("a", NOW - 60 * NS, 5), NOW).unwrap();
    drop(store);
    let store = LogStore::open(opts(dir.path())).unwrap();
    let after = lines(&store, "a");
    assert_eq!(after.len(), 205);
    assert_eq!(&after[..200], &before[..]);
    assert_eq!(lines(&store, "b").len(), 10);
    // The WAL segments the flush covered are gone.
    let segments = std::fs::read_dir(dir.path().join("wal")).unwrap().count();
    assert!(segments <= 2, "{segments} WAL segments left");
    // Label API from the index.
    assert_eq!(store.label_names(0, i64::MAX), ["app", "env"]);
    assert_eq!(store.label_values("app", &[], 0, i64::MAX), ["a", "b"]);
    // A LogQL query over the store.
    let q = match logql::parse(r#"{env="prod"} |= "status=201""#).unwrap() {
        logql::ast::Expr::Log(l) => l,
        _ => unreachable!(),
    };
    let res = logs::query_logs(&store, &q, 0, i64::MAX, 1000, Direction::Forward).unwrap();
    let n: usize = res.iter().map(|s| s.entries.len()).sum();
    // Of 0..100 twice, 0..10 and 0..5: i % 3 == 1.
    assert_eq!(n, 33 + 33 + 3 + 2);
}

#[test]
fn a_torn_wal_tail_loses_only_the_torn_push() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(opts(dir.path())).unwrap();
    store.push(push_of("a", NOW - 10 * NS, 3), NOW).unwrap();
    drop(store);
    let seg = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5]);
    std::fs::write(&seg, &bytes).unwrap();
    let store = LogStore::open(opts(dir.path())).unwrap();
    assert_eq!(lines(&store, "a").len(), 3);
    assert_eq!(std::fs::metadata(&seg).unwrap().len() as usize, whole);
    assert_eq!(
        store
            .counters()
            .wal_damaged_segments
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn a_damaged_part_is_quarantined_and_the_rest_opens() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(opts(dir.path())).unwrap();
    store
        .push(push_of("a", NOW - 3 * 3600 * NS, 10), NOW)
        .unwrap();
    store.push(push_of("b", NOW - 60 * NS, 10), NOW).unwrap();
    store.flush().unwrap();
    drop(store);
    let mut parts: Vec<_> = std::fs::read_dir(dir.path().join("parts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    parts.sort();
    let victim = &parts[0];
    let mut b = std::fs::read(victim).unwrap();
    let n = b.len();
    b[n - 30] ^= 0xff; // inside the index
    std::fs::write(victim, b).unwrap();
    let store = LogStore::open(opts(dir.path())).unwrap();
    assert_eq!(lines(&store, "a").len(), 0);
    assert_eq!(lines(&store, "b").len(), 10);
    assert!(dir
        .path()
        .join("quarantine")
        .join(victim.file_name().unwrap())
        .exists());
}

#[test]
fn retention_by_age_and_size_deletes_the_oldest_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.retention = Duration::from_secs(2 * 86400);
    let store = LogStore::open(o.clone()).unwrap();
    store
        .push(
            push_of("old", NOW - 3 * 86400 * NS + 3600 * NS, 10),
            NOW - 2 * 86400 * NS,
        )
        .unwrap();
    store
        .push(push_of("new", NOW - 3600 * NS, 10), NOW)
        .unwrap();
    store.flush().unwrap();
    store.maintain(NOW).unwrap();
    assert_eq!(lines(&store, "old").len(), 0);
    assert_eq!(lines(&store, "new").len(), 10);
    // Too old to accept at all.
    let err = store
        .push(push_of("old", NOW - 3 * 86400 * NS, 1), NOW)
        .unwrap_err();
    assert!(
        err.to_string().contains("older than the retention"),
        "{err}"
    );
    drop(store);
    o.max_bytes = 1;
    let store = LogStore::open(o).unwrap();
    store.maintain(NOW).unwrap();
    assert_eq!(store.stats().parts, 0);
}

#[test]
fn a_query_over_its_byte_budget_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.max_query_bytes = 1000;
    let store = LogStore::open(o).unwrap();
    store.push(push_of("a", NOW - 100 * NS, 100), NOW).unwrap();
    store.flush().unwrap();
    let q = match logql::parse(r#"{app="a"}"#).unwrap() {
        logql::ast::Expr::Log(l) => l,
        _ => unreachable!(),
    };
    let err = logs::query_logs(&store, &q, 0, i64::MAX, 10, Direction::Backward).unwrap_err();
    assert!(err.to_string().contains("max_query_bytes"), "{err}");
}
