//! Native histograms in the store: the WAL, checkpoints, blocks cut from the head, compaction,
//! and the rules for order and duplicates.

use std::sync::Arc;

use medic_model::histogram::parse_test_expression;
use medic_model::{
    AppendError, Appendable, FloatHistogram, HistogramSeries, Labels, Matcher, Queryable,
};
use medic_tsdb::{Db, FsyncPolicy, Metrics, Options};

const H: i64 = 3_600_000;
const STEP: i64 = 15_000;

fn opts() -> Options {
    Options {
        fsync: FsyncPolicy::Never,
        retention_ms: 0,
        ..Options::default()
    }
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", "http_request_duration_seconds".to_string()),
        ("instance", format!("host-{i}")),
    ])
}

/// The histogram series `i` holds at `t`: written out in Prometheus's test notation, so the
/// expectation does not come from the code under test. The counts fall back every 40 samples
/// (a counter reset).
fn expected(i: usize, t: i64) -> FloatHistogram {
    let n = (t / STEP % 40 + 1) as f64;
    let text = if i % 2 == 1 {
        format!(
            "{{{{schema:-53 sum:{} count:{} custom_values:[0.1 0.5 2.5] buckets:[{} {} {} 1]}}}}",
            n * 1.5,
            4.0 * n - 3.0 + 1.0,
            n,
            n,
            n - 1.0
        )
    } else {
        format!(
            "{{{{schema:3 sum:{} count:{} z_bucket:{} z_bucket_w:0.001 offset:-2 buckets:[{} 0 {}] n_buckets:[1]}}}}",
            n * 0.25,
            3.0 * n + 1.0,
            n - 1.0,
            n,
            n
        )
    };
    parse_test_expression(&text).unwrap()
}

fn ingest(db: &Db, n: usize, from: i64, to: i64) {
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for i in 0..n {
            let r = app.series_ref(&series(i)).unwrap();
            app.append_histogram(r, t, Arc::new(expected(i, t)))
                .unwrap();
        }
        let summary = app.commit().unwrap();
        assert_eq!(summary.accepted, n);
        assert!(summary.rejected.is_empty(), "{:?}", summary.rejected);
        t += STEP;
    }
}

fn all(db: &Db) -> Vec<HistogramSeries> {
    db.querier(i64::MIN, i64::MAX)
        .unwrap()
        .select_histograms(&[
            Matcher::parse(r#"__name__="http_request_duration_seconds""#).unwrap(),
        ])
        .unwrap()
}

fn check_complete(db: &Db, n: usize, from: i64, to: i64) {
    let got = all(db);
    assert_eq!(got.len(), n, "series count");
    for s in got {
        let i: usize = s.labels.get("instance").unwrap()[5..].parse().unwrap();
        let ts: Vec<i64> = s.samples.iter().map(|h| h.t).collect();
        let want: Vec<i64> = (0..)
            .map(|k| from + k * STEP)
            .take_while(|t| *t < to)
            .collect();
        assert_eq!(ts, want, "{}", s.labels);
        for h in &s.samples {
            assert_eq!(*h.h, expected(i, h.t), "{} at {}", s.labels, h.t);
        }
    }
}

#[test]
fn histograms_survive_crash_restart_checkpoint_blocks_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
        ingest(&db, 4, 0, 40 * 60_000);
        // Dropped without close(): only the WAL survives.
    }
    let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    check_complete(&db, 4, 0, 40 * 60_000);
    ingest(&db, 4, 40 * 60_000, 60 * 60_000);
    db.close().unwrap();
    drop(db);
    // From the checkpoint written at close.
    let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    check_complete(&db, 4, 0, H);
    ingest(&db, 4, H, 7 * H);
    // Blocks cut from the head, then merged: the histograms move with them.
    db.flush().unwrap();
    let blocks = db.blocks();
    assert!(!blocks.is_empty());
    let stored: u64 = blocks.iter().map(|b| b.meta().stats.num_histograms).sum();
    assert_eq!(stored, 4 * (7 * H / STEP) as u64);
    assert!(
        blocks.iter().any(|b| b.meta().compaction.level > 1),
        "a merge happened"
    );
    check_complete(&db, 4, 0, 7 * H);
    drop(db);
    let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    check_complete(&db, 4, 0, 7 * H);
}

#[test]
fn histograms_follow_the_order_and_duplicate_rules_of_floats() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(), Metrics::default()).unwrap();
    ingest(&db, 1, 0, 10 * STEP);
    let r0 = |app: &mut Box<dyn medic_model::Appender + '_>| app.series_ref(&series(0)).unwrap();
    let last = 9 * STEP;

    // The same histogram again at the newest timestamp: dropped silently.
    let mut app = db.appender();
    let r = r0(&mut app);
    app.append_histogram(r, last, Arc::new(expected(0, last)))
        .unwrap();
    let s = app.commit().unwrap();
    assert_eq!((s.accepted, s.rejected.len()), (0, 0));

    // A different one at that timestamp, and one older than the newest: refused by name.
    let mut app = db.appender();
    let r = r0(&mut app);
    app.append_histogram(r, last, Arc::new(expected(0, 0)))
        .unwrap();
    app.append_histogram(r, 2 * STEP + 1, Arc::new(expected(0, 0)))
        .unwrap();
    let s = app.commit().unwrap();
    let reasons: Vec<_> = s.rejected.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(
        reasons,
        vec![AppendError::DuplicateTimestamp, AppendError::OutOfOrder]
    );

    // Two at one timestamp in one commit: the second, different, is refused.
    let mut app = db.appender();
    let r = r0(&mut app);
    app.append_histogram(r, last + STEP, Arc::new(expected(0, 0)))
        .unwrap();
    app.append_histogram(r, last + STEP, Arc::new(expected(0, STEP)))
        .unwrap();
    let s = app.commit().unwrap();
    assert_eq!(s.accepted, 1);
    assert_eq!(s.rejected[0].1, AppendError::DuplicateTimestamp);

    // A series may hold floats and histograms; each comes back from its own selection.
    let mut app = db.appender();
    let r = r0(&mut app);
    app.append(r, last + 2 * STEP, 42.0).unwrap();
    app.commit().unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let m = [Matcher::parse(r#"instance="host-0""#).unwrap()];
    let floats: Vec<_> = q.select(&m).unwrap().map(|s| s.unwrap().samples).collect();
    assert_eq!(floats.len(), 1);
    assert_eq!(floats[0].len(), 1);
    assert_eq!(q.select_histograms(&m).unwrap()[0].samples.len(), 11);
}
