//! The NAB scorer against hand-computed cases, and medic's detector on NAB's corpus (copied
//! into testdata/nab with its licence).

use std::path::{Path, PathBuf};

use medic_anomaly::nab::{self, Detections, Scored, Scorer, Series, Windows, PROFILES};
use medic_anomaly::Params;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/nab")
}

/// NAB's scaled sigmoid, written out here from NAB's README (not taken from the crate).
fn sig(x: f64) -> f64 {
    if x > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// 100 rows a minute apart, window over rows 50..=59, scores 1 at `hits`.
fn one_file(hits: &[usize]) -> (Vec<Scored>, Windows) {
    let times: Vec<i64> = (0..100).map(|i| i * 60_000).collect();
    let mut scores = vec![0.0; 100];
    for &h in hits {
        scores[h] = 1.0;
    }
    let mut w = Windows::new();
    w.insert("c/f.csv".into(), vec![(times[50], times[59])]);
    (
        vec![Scored {
            series: Series {
                name: "c/f.csv".into(),
                values: vec![0.0; 100],
                times,
            },
            scores,
        }],
        w,
    )
}

#[test]
fn scorer_follows_nabs_rules() {
    let std = &PROFILES[0];
    // A detection on the window's first row is worth exactly one true positive.
    let (s, w) = one_file(&[50]);
    let o = Scorer::new(&s, &w)
        .unwrap()
        .score(std, Detections::Rows, 0.5);
    assert!((o.raw - 1.0).abs() < 1e-9, "{o:?}");
    assert!((o.normalised - 100.0).abs() < 1e-9);
    // Late in the window it is worth less: row 57 → σ(-(59-57+1)/10)/σ(-1).
    let (s, w) = one_file(&[57, 58]);
    let o = Scorer::new(&s, &w)
        .unwrap()
        .score(std, Detections::Rows, 0.5);
    assert!((o.raw - sig(-0.3) / sig(-1.0)).abs() < 1e-9, "{o:?}");
    assert_eq!((o.tp, o.fp, o.fn_), (1, 0, 0));
    // Row 10 is in probation (15 rows) and ignored; row 20 precedes the window: −0.11;
    // row 64 follows it: 0.11·σ((64−59)/9); nothing in the window: −1.
    let (s, w) = one_file(&[10, 20, 64]);
    let o = Scorer::new(&s, &w)
        .unwrap()
        .score(std, Detections::Rows, 0.5);
    let want = -0.11 + 0.11 * sig(5.0 / 9.0) - 1.0;
    assert!((o.raw - want).abs() < 1e-9, "{o:?} vs {want}");
    assert_eq!((o.tp, o.fp, o.fn_), (0, 2, 1));
    assert!((o.normalised - 100.0 * (want + 1.0) / 2.0).abs() < 1e-9);
    // The low-FN profile doubles the miss.
    let o = Scorer::new(&s, &w)
        .unwrap()
        .score(&PROFILES[2], Detections::Rows, 0.5);
    assert!((o.raw - (want - 1.0)).abs() < 1e-9, "{o:?}");
    // Threshold search: 1.1 (no detections) scores 0 here; any detection does better.
    let (s, w) = one_file(&[50]);
    let best = Scorer::new(&s, &w).unwrap().optimise(std, Detections::Rows);
    assert_eq!(best.threshold, 1.0, "{best:?}");
}

#[test]
fn medic_on_nab() {
    let dir = corpus_dir();
    let corpus = nab::read_corpus(&dir.join("data")).unwrap();
    assert_eq!(corpus.len(), 41);
    let windows = nab::read_windows(&dir.join("labels/combined_windows.json")).unwrap();
    let params = Params::default();
    let scored = nab::detect(corpus, &params);
    let report = nab::report(&scored, &windows, Some(&params)).unwrap();
    println!("{report}");
    assert_eq!(report.windows, 86);
    // The goal: no false alarm storm on series without anomalies, at the default.
    assert_eq!(report.no_anomaly_alerts, Some(0), "{report}");
    // Regression floors under the figures in BENCHMARKS.md (standard profile).
    let get = |method: &str| {
        report
            .rows
            .iter()
            .find(|r| r.profile == "standard" && r.method.contains(method))
            .unwrap()
            .outcome
            .normalised
    };
    assert!(get("search, medic's alerts") >= 50.0, "{report}");
    assert!(get("default threshold") >= 40.0, "{report}");

    // Written result files score the same when read back (the `score` path).
    let out = tempfile::tempdir().unwrap();
    nab::write_results(out.path(), &scored, Some(&windows), &params).unwrap();
    let back = nab::read_results(out.path()).unwrap();
    let again = nab::report(&back, &windows, None).unwrap();
    let rows = |r: &nab::Report| -> Vec<f64> {
        r.rows
            .iter()
            .filter(|r| r.method.contains("every row"))
            .map(|r| (r.outcome.normalised * 10.0).round())
            .collect()
    };
    assert_eq!(rows(&again), rows(&report));
}
