use std::fs;
use std::path::Path;

use medic_model::{Appendable, Labels, Matcher, Queryable, Sample};
use medic_tsdb::{BlockCodec, Db, FsyncPolicy, Metrics, Options};

const H: i64 = 3_600_000;

fn opts() -> Options {
    Options {
        fsync: FsyncPolicy::Never,
        retention_ms: 0,
        ..Options::default()
    }
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", "node_cpu_seconds_total".to_string()),
        ("instance", format!("host-{i}")),
        ("job", "node".to_string()),
    ])
}

/// Appends `n` series × samples every 15 s in `[from, to)`; value = t/1000 + i.
fn ingest(db: &Db, n: usize, from: i64, to: i64) -> usize {
    let mut count = 0;
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for i in 0..n {
            app.append_labels(&series(i), t, (t / 1000) as f64 + i as f64)
                .unwrap();
            count += 1;
        }
        app.commit().unwrap();
        t += 15_000;
    }
    count
}

fn all(db: &Db) -> Vec<(Labels, Vec<Sample>)> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    q.select(&[Matcher::parse(r#"job="node""#).unwrap()])
        .unwrap()
        .map(|s| {
            let s = s.unwrap();
            (s.labels, s.samples)
        })
        .collect()
}

fn check_complete(db: &Db, n: usize, from: i64, to: i64) {
    let got = all(db);
    assert_eq!(got.len(), n, "series count");
    for (labels, samples) in got {
        let i: f64 = labels.get("instance").unwrap()[5..].parse().unwrap();
        let expect: Vec<i64> = (0..)
            .map(|k| from + k * 15_000)
            .take_while(|t| *t < to)
            .collect();
        let ts: Vec<i64> = samples.iter().map(|s| s.t).collect();
        assert_eq!(ts, expect, "{labels}");
        for s in samples {
            assert_eq!(s.v, (s.t / 1000) as f64 + i);
        }
    }
}

#[test]
fn restart_replays_the_wal_without_close() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
        ingest(&db, 20, 0, 30 * 60_000);
        // Dropped without close(): like a crash, nothing but the WAL survives.
    }
    let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    check_complete(&db, 20, 0, 30 * 60_000);
    // The restarted store keeps rejecting what is out of order.
    let mut app = db.appender();
    assert!(app.append_labels(&series(0), 60_000, 1.0).is_err());
}

#[test]
fn restart_after_close_uses_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
        ingest(&db, 10, 0, 20 * 60_000);
        db.close().unwrap();
    }
    let names: Vec<String> = fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("checkpoint.")),
        "{names:?}"
    );
    let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    check_complete(&db, 10, 0, 20 * 60_000);
    // And appends continue after the checkpoint; a second restart sees both.
    ingest(&db, 10, 20 * 60_000, 25 * 60_000);
    drop(db);
    let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    check_complete(&db, 10, 0, 25 * 60_000);
}

fn newest_segment(dir: &Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .parse::<u64>()
                .is_ok()
        })
        .filter(|p| fs::metadata(p).unwrap().len() > 0)
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

#[test]
fn torn_wal_tail_is_truncated_and_start_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
        ingest(&db, 5, 0, 10 * 60_000);
    }
    let seg = newest_segment(dir.path());
    let len = fs::metadata(&seg).unwrap().len();
    // Tear the last record in half and add garbage, as a crash mid-write could.
    let mut data = fs::read(&seg).unwrap();
    data.truncate(len as usize - 30);
    data.extend_from_slice(&[0xde, 0xad, 0xbe]);
    fs::write(&seg, &data).unwrap();

    let metrics = Metrics::default();
    let db = Db::open(dir.path(), opts(), metrics.clone()).unwrap();
    assert_eq!(metrics.wal_truncations.get(), 1);
    // Everything before the torn commit is there: 39 full commits of 5 samples.
    check_complete(&db, 5, 0, 39 * 15_000);
    drop(db);
    // The repaired WAL opens cleanly the next time.
    let metrics = Metrics::default();
    let _db = Db::open(dir.path(), opts(), metrics.clone()).unwrap();
    assert_eq!(metrics.wal_truncations.get(), 0);
}

#[test]
fn head_is_cut_into_blocks_and_queries_span_both() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    ingest(&db, 8, 0, 5 * H);
    db.maintain().unwrap();
    let blocks = db.blocks();
    assert!(!blocks.is_empty(), "a block was cut");
    assert!(db.head().min_time() >= 2 * H);
    check_complete(&db, 8, 0, 5 * H);
    // Restart: blocks plus the checkpointed head give the same data.
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    check_complete(&db, 8, 0, 5 * H);
}

#[test]
fn flush_persists_the_head_and_compacts() {
    for codec in [BlockCodec::Pco, BlockCodec::Xor] {
        let dir = tempfile::tempdir().unwrap();
        let o = Options {
            block_codec: codec,
            ..opts()
        };
        let db = Db::open(dir.path(), o.clone(), Metrics::default()).unwrap();
        ingest(&db, 6, 0, 7 * H);
        let summary = db.flush().unwrap();
        assert!(summary.blocks_written >= 1);
        // 0–6h merged into one block (one full window), 6–7h on its own.
        let spans: Vec<(i64, i64)> = db
            .blocks()
            .iter()
            .map(|b| (b.meta().min_time, b.meta().max_time))
            .collect();
        assert_eq!(spans[0], (0, 6 * H), "{spans:?}");
        assert_eq!(db.head().num_series(), 0);
        check_complete(&db, 6, 0, 7 * H);
        // Samples after the flushed range are still accepted.
        ingest(&db, 6, 7 * H, 7 * H + 60_000);
        check_complete(&db, 6, 0, 7 * H + 60_000);
        drop(db);
        let db = Db::open(dir.path(), o, Metrics::default()).unwrap();
        check_complete(&db, 6, 0, 7 * H + 60_000);
    }
}

#[test]
fn corrupted_block_is_quarantined_and_start_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
        ingest(&db, 3, 0, 3 * H);
        db.flush().unwrap();
        db.close().unwrap();
    }
    let block = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("index").exists())
        .unwrap();
    let idx = block.join("index");
    let mut data = fs::read(&idx).unwrap();
    data[12] ^= 0x55;
    fs::write(&idx, data).unwrap();

    let metrics = Metrics::default();
    let db = Db::open(dir.path(), opts(), metrics.clone()).unwrap();
    assert_eq!(metrics.blocks_quarantined.get(), 1);
    let name = block.file_name().unwrap();
    assert!(dir.path().join("quarantine").join(name).exists());
    // The store works on without it.
    ingest(&db, 3, 4 * H, 4 * H + 60_000);
    assert_eq!(all(&db).len(), 3);
}

#[test]
fn retention_by_time_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        retention_ms: 5 * H,
        ..opts()
    };
    let db = Db::open(dir.path(), o, Metrics::default()).unwrap();
    ingest(&db, 4, 0, 12 * H);
    db.flush().unwrap();
    // Newest data at ~12h, retention 5h: blocks ending at or before 7h are gone.
    for b in db.blocks() {
        assert!(b.meta().max_time > 7 * H, "{:?}", b.meta());
    }
    assert!(!db.blocks().is_empty());
    drop(db);

    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        retention_bytes: 1,
        ..opts()
    };
    let db = Db::open(dir.path(), o, Metrics::default()).unwrap();
    ingest(&db, 4, 0, 3 * H);
    db.flush().unwrap();
    assert!(db.blocks().is_empty(), "a 1-byte limit leaves no block");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A sample 15 days ahead of the clock once made retention delete every block and then refused
/// every normal write as too old. It is refused instead, counted, and history stays.
#[test]
fn a_sample_from_the_future_is_refused_and_history_stays() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        retention_ms: 15 * 24 * H,
        ..opts()
    };
    let metrics = Metrics::default();
    let db = Db::open(dir.path(), o, metrics.clone()).unwrap();
    let now = now_ms() / 15_000 * 15_000;
    ingest(&db, 2, now - 6 * H, now - H);
    db.flush().unwrap();
    let blocks = db.blocks().len();
    assert!(blocks > 0);

    let mut app = db.appender();
    let e = app
        .append_labels(&series(0), now + 15 * 24 * H, 1.0)
        .unwrap_err();
    assert_eq!(e, medic_model::AppendError::TooFarInFuture);
    assert_eq!(e.reason(), "too_far_in_future");
    // Within the 10-minute tolerance is fine.
    app.append_labels(&series(0), now + 5 * 60_000, 1.0)
        .unwrap();
    app.commit().unwrap();
    db.flush().unwrap();
    assert!(db.blocks().len() >= blocks.min(1), "history kept");
    assert_eq!(all(&db)[0].1.first().unwrap().t, now - 6 * H);
    // Normal writes go on.
    ingest(&db, 2, now + 6 * 60_000, now + 7 * 60_000);
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains("reason=\"too_far_in_future\"} 1"), "{text}");
}

/// Retention never measures from a stored sample later than the clock allows: blocks holding
/// such a sample (written before the check existed, or restored) do not age out the rest.
#[test]
fn retention_ignores_time_beyond_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms() / 15_000 * 15_000;
    {
        let o = Options {
            retention_ms: 0,
            max_future_ms: 0,
            ..opts()
        };
        let db = Db::open(dir.path(), o, Metrics::default()).unwrap();
        ingest(&db, 2, now - 4 * H, now - 3 * H);
        let mut app = db.appender();
        app.append_labels(&series(9), now + 30 * 24 * H, 1.0)
            .unwrap();
        app.commit().unwrap();
        db.flush().unwrap();
        db.close().unwrap();
    }
    let o = Options {
        retention_ms: 15 * 24 * H,
        ..opts()
    };
    let db = Db::open(dir.path(), o, Metrics::default()).unwrap();
    db.flush().unwrap();
    assert_eq!(all(&db).len(), 3, "no block deleted");
}

#[test]
fn second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    let e = Db::open(dir.path(), opts(), Metrics::default()).unwrap_err();
    assert!(e.to_string().contains("locked"), "{e}");
}

#[test]
fn label_apis_cover_blocks_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    ingest(&db, 3, 0, H);
    db.flush().unwrap();
    let mut app = db.appender();
    app.append_labels(
        &Labels::from_pairs([("__name__", "up"), ("job", "api")]),
        2 * H,
        1.0,
    )
    .unwrap();
    app.commit().unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    assert_eq!(q.label_values("job", &[]).unwrap(), vec!["api", "node"]);
    assert_eq!(
        q.label_names(&[Matcher::parse(r#"job="api""#).unwrap()])
            .unwrap(),
        vec!["__name__", "job"]
    );
    assert_eq!(q.label_values("instance", &[]).unwrap().len(), 3);
}

#[test]
fn compaction_keeps_the_block_count_small_during_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        block_range_ms: 60_000,
        ..opts()
    };
    let db = Db::open(dir.path(), o, Metrics::default()).unwrap();
    // 6 hours of data, maintenance after every 2 minutes of it, as the background thread would.
    let mut t = 0;
    while t < 6 * H {
        ingest(&db, 3, t, t + 120_000);
        db.maintain().unwrap();
        t += 120_000;
    }
    let blocks = db.blocks();
    let spans: Vec<(i64, i64)> = blocks
        .iter()
        .map(|b| (b.meta().min_time / 60_000, b.meta().max_time / 60_000))
        .collect();
    assert!(blocks.len() <= 12, "{} blocks: {spans:?}", blocks.len());
    check_complete(&db, 3, 0, 6 * H);
}

/// Records what the store reports to its change observers.
#[derive(Default)]
struct Changes(std::sync::Mutex<Vec<i64>>);

impl medic_model::ChangeObserver for Changes {
    fn changed_from(&self, from: i64) {
        self.0.lock().unwrap().push(from);
    }
}

/// Caches of query results hear of every commit (with its oldest sample) and of every deletion
/// by retention (`i64::MIN`: anything may have changed); an empty commit reports nothing.
#[test]
fn observers_hear_of_commits_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        retention_ms: 5 * H,
        ..opts()
    };
    let db = Db::open(dir.path(), o, Metrics::default()).unwrap();
    let seen = std::sync::Arc::new(Changes::default());
    db.observe_changes(seen.clone());
    let mut app = db.appender();
    app.append_labels(&series(0), 60_000, 1.0).unwrap();
    app.append_labels(&series(1), 30_000, 1.0).unwrap();
    app.commit().unwrap();
    db.appender().commit().unwrap();
    assert_eq!(*seen.0.lock().unwrap(), vec![30_000]);
    seen.0.lock().unwrap().clear();
    // Retention deletes blocks in the background maintenance as the head grows, or at the
    // flush: either way it must say so.
    ingest(&db, 2, 2 * H, 12 * H);
    db.flush().unwrap();
    assert!(
        seen.0.lock().unwrap().contains(&i64::MIN),
        "retention deleted blocks and said so: {:?}",
        seen.0.lock().unwrap()
    );
}

/// A selection with a sample allowance stops as soon as blocks and head together pass it, and
/// returns everything when they do not.
#[test]
fn a_selection_stops_at_its_sample_allowance() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    ingest(&db, 3, 0, 6 * H);
    db.flush().unwrap();
    ingest(&db, 3, 6 * H, 7 * H);
    assert!(!db.blocks().is_empty(), "some samples are in blocks");
    let m = [Matcher::new(medic_model::MatchType::Equal, "job", "node").unwrap()];
    let q = db.db_querier(0, 7 * H);
    let all = q.select_vec(&m).unwrap();
    let total: usize = all.iter().map(|s| s.samples.len()).sum();
    assert_eq!(total, 3 * 7 * 240);
    assert_eq!(q.select_vec_at_most(&m, total).unwrap(), all);
    for limit in [0, 10, total / 2, total - 1] {
        match q.select_vec_at_most(&m, limit) {
            Err(medic_tsdb::Error::TooManySamples(n)) => assert_eq!(n, limit),
            other => panic!("limit {limit}: {other:?}"),
        }
    }
    // Through the trait, as the PromQL engine asks.
    let e = medic_model::Querier::select_at_most(&q, &m, 100)
        .err()
        .unwrap();
    assert!(
        matches!(e, medic_model::StorageError::TooManySamples(100)),
        "{e}"
    );
}

/// A querier made before the head is cut into blocks still sees every sample: it reads the
/// head first and the live block list after, so samples moved from one to the other are found
/// in one or both (and merged), never in neither. A list of blocks taken when the querier was
/// made misses the cut block once the head is truncated (found by the report tests, whose
/// 30-day backfill keeps the store cutting while they query).
#[test]
fn a_querier_sees_samples_cut_from_the_head_after_it_was_made() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    let n = ingest(&db, 3, 0, 6 * H);
    let m = [Matcher::new(medic_model::MatchType::Equal, "job", "node").unwrap()];
    let q = db.db_querier(0, 7 * H);
    db.flush().unwrap();
    assert!(!db.blocks().is_empty(), "the flush cut blocks");
    let got: usize = q
        .select_vec(&m)
        .unwrap()
        .iter()
        .map(|s| s.samples.len())
        .sum();
    assert_eq!(got, n);
    assert_eq!(
        medic_model::Querier::label_values(&q, "instance", &[])
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn a_snapshot_holds_every_block_and_the_head_and_accepts_new_samples_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("data"), opts(), Metrics::default()).unwrap();
    // Seven hours: blocks are cut from the first hours, the rest stays in the head.
    ingest(&db, 20, 0, 7 * H);
    db.maintain().unwrap();
    assert!(!db.blocks().is_empty(), "some hours were cut into blocks");
    assert!(
        db.head().oldest_sample().is_some(),
        "some samples are in the head"
    );

    let snap = dir.path().join("snap");
    let summary = db.snapshot(&snap).unwrap();
    assert_eq!(summary.blocks, db.blocks().len());
    assert!(summary.head_blocks >= 1);
    // Written after the snapshot: not in it.
    ingest(&db, 20, 7 * H, 8 * H);
    // The store goes on: cutting and merging must not touch the snapshot's linked files.
    db.flush().unwrap();
    drop(db);

    let restored = Db::open(&snap, opts(), Metrics::default()).unwrap();
    check_complete(&restored, 20, 0, 7 * H);
    // New samples right after the newest one in the snapshot are accepted.
    let mut app = restored.appender();
    app.append_labels(&series(0), 7 * H, 1.0).unwrap();
    app.commit().unwrap();
}
