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

/// Reads racing flushes see every acknowledged entry exactly once: never the head in flight
/// and the parts it became together, never neither.
#[test]
fn reads_during_flushes_neither_miss_nor_double_count() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(opts(dir.path())).unwrap();
    let acked = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, acked, done) = (store.clone(), acked.clone(), done.clone());
        std::thread::spawn(move || {
            let m = [Matcher::equal("app", "race")];
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) {
                let before = acked.load(Ordering::SeqCst);
                let n: usize = store
                    .select_streams(&m, 0, i64::MAX)
                    .unwrap()
                    .iter()
                    .map(|s| s.entries.len())
                    .sum();
                let after = acked.load(Ordering::SeqCst);
                assert!(
                    n >= before && n <= after + 10,
                    "read {n} entries with {before}..{after} acknowledged"
                );
                reads += 1;
            }
            reads
        })
    };
    for k in 0..300 {
        store
            .push(
                push_of("race", NOW - 4000 * NS + k as i64 * 10 * NS, 10),
                NOW,
            )
            .unwrap();
        acked.fetch_add(10, Ordering::SeqCst);
        if k % 7 == 0 {
            store.flush().unwrap();
        }
    }
    done.store(true, Ordering::SeqCst);
    let reads = reader.join().unwrap();
    assert!(reads > 10, "only {reads} reads raced the flushes");
    assert_eq!(lines(&store, "race").len(), 3000);
}

/// A needle search skips chunks without the needle, and a count reads no lines; both give the
/// same answers as reading everything.
#[test]
fn needles_and_counts_answer_as_full_reads_do() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(opts(dir.path())).unwrap();
    store
        .push(push_of("a", NOW - 3 * 3600 * NS, 500), NOW)
        .unwrap();
    store.push(push_of("b", NOW - 3600 * NS, 500), NOW).unwrap();
    store.flush().unwrap();
    let parse = |q: &str| match logql::parse(q).unwrap() {
        logql::ast::Expr::Log(l) => l,
        _ => unreachable!(),
    };
    let res = logs::query_logs(
        &store,
        &parse(r#"{env="prod"} |= "b line 499 ""#),
        0,
        i64::MAX,
        10,
        Direction::Forward,
    )
    .unwrap();
    assert_eq!(res.len(), 1);
    assert_eq!(res[0].entries[0].1, "b line 499 status=201");
    let m = match logql::parse(r#"sum(count_over_time({env="prod"}[1d]))"#).unwrap() {
        logql::ast::Expr::Metric(m) => m,
        _ => unreachable!(),
    };
    let steps = logql::metric::Steps {
        start: NOW,
        end: NOW,
        step: NS,
    };
    let v = logql::metric::eval(&store, &m, steps).unwrap();
    assert_eq!(v[0][0].value, 1000.0);
}
