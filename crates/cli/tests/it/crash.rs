//! `kill -9` during ingest loses no acknowledged sample — across WAL segment rotation, block
//! cuts, checkpoints and compactions, which a small block range and segment size force.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;

const SERIES: usize = 40;
const PER_BATCH: i64 = 8;
const STEP: i64 = 15_000;

fn value(series: usize, t: i64) -> f64 {
    (t / 1000) as f64 * 0.5 + series as f64
}

fn batch(k: i64) -> Vec<u8> {
    let t0 = k * PER_BATCH * STEP;
    let series: Vec<_> = (0..SERIES)
        .map(|i| {
            let labels = vec![
                ("__name__".to_string(), "crash_test_metric".to_string()),
                ("series".to_string(), format!("s{i:03}")),
            ];
            let samples = (0..PER_BATCH)
                .map(|j| (t0 + j * STEP, value(i, t0 + j * STEP)))
                .collect();
            (labels, samples)
        })
        .collect();
    write_request(&series)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingest_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("medic.yml");
    // 1m blocks: every ~8 batches of data a block is cut and the WAL checkpointed.
    std::fs::write(
        &config,
        "scrape_configs: []\nstorage:\n  block_range: 1m\n  retention: 0\n  wal:\n    segment_size: 64KiB\n",
    )
    .unwrap();

    let addr = Arc::new(Mutex::new(String::new()));
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut medic = Medic::start(&data, Some(&config), &[]);
    *addr.lock().unwrap() = medic.url("");

    // The writer sends batches in order; a batch that got no answer is sent again (to whichever
    // process is up), so each batch is eventually acknowledged exactly once by the writer.
    let writer = {
        let (addr, acked, done) = (addr.clone(), acked.clone(), done.clone());
        tokio::spawn(async move {
            let c = client();
            let mut k = 0i64;
            // Whether the current batch was sent before without an answer: medic may have
            // committed it and died before replying.
            let mut retry = false;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let base = addr.lock().unwrap().clone();
                match post_write(&c, &base, batch(k)).await {
                    Ok(r) if r.status().as_u16() == 204 => {
                        acked.lock().unwrap().push(k);
                        k += 1;
                        retry = false;
                    }
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        // The first attempt was stored: its samples are now older than each
                        // series' newest one, which medic (like Prometheus) reports as out of
                        // order. Not acknowledged, so not counted; move on.
                        let already_stored = retry
                            && status.as_u16() == 400
                            && text.contains("stored 0 samples")
                            && !text.contains("invalid")
                            && !text.contains("too_many");
                        assert!(already_stored, "batch {k}: unexpected {status} {text}");
                        k += 1;
                        retry = false;
                    }
                    Err(_) => {
                        retry = true;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        })
    };

    let mut kills = 0;
    let mut seed = 0x2545_f491u64;
    while kills < 6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(150 + seed % 400)).await;
        let before = acked.lock().unwrap().len();
        medic.kill9();
        kills += 1;
        medic = Medic::start(&data, Some(&config), &[]);
        *addr.lock().unwrap() = medic.url("");
        assert!(before > 0 || kills < 2, "writer made no progress");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await.unwrap();
    // One last kill with no graceful shutdown, then check from a fresh process.
    medic.kill9();
    let medic = Medic::start(&data, Some(&config), &[]);

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 20,
        "only {} batches acknowledged",
        acked.len()
    );
    let got = export(&client(), &medic.url(""), "crash_test_metric").await;
    assert_eq!(got.len(), SERIES, "series after {kills} kills");
    let mut expected_ts: BTreeMap<i64, ()> = BTreeMap::new();
    for k in &acked {
        for j in 0..PER_BATCH {
            expected_ts.insert(k * PER_BATCH * STEP + j * STEP, ());
        }
    }
    for s in &got {
        let i: usize = s.metric["series"][1..].parse().unwrap();
        let have: BTreeMap<i64, f64> = s
            .timestamps
            .iter()
            .zip(&s.values)
            .map(|(t, v)| (*t, v.as_f64().unwrap()))
            .collect();
        for t in expected_ts.keys() {
            match have.get(t) {
                Some(v) => assert_eq!(*v, value(i, *t), "series {i} t={t}"),
                None => panic!(
                    "series {i}: acknowledged sample t={t} lost after {kills} kills ({} acked batches, {} samples present)\n{}",
                    acked.len(),
                    have.len(),
                    medic.stderr()
                ),
            }
        }
    }
    let stats = get_json(&client(), &medic.url("/api/v1/status/tsdb")).await;
    let blocks = stats["data"]["blocks"].as_array().unwrap().len();
    assert!(blocks > 0, "the test should have cut blocks: {stats}");
    eprintln!(
        "{} batches acknowledged, {kills} kills, {blocks} blocks at the end",
        acked.len()
    );
}
