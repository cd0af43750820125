//! Tests of the engine: limits, nesting depth, loading.

use super::*;
use medic_model::MemStorage;

#[test]
fn huge_subqueries_fail_cleanly() {
    let store = MemStorage::new();
    store.add(
        Labels::from_pairs([("__name__", "x")]),
        &[Sample::new(0, 1.0)],
    );
    let e = Engine::default();
    let err = e
        .instant(&store, "max_over_time(x[100y:1ms])", 0)
        .unwrap_err();
    assert!(matches!(err, Error::TooManySamples(_)), "{err}");
    let tight = Engine::new(EngineOptions {
        timeout: Duration::from_millis(20),
        ..EngineOptions::default()
    });
    let err = tight
        .instant(&store, "max_over_time(x[1d:10ms])", 0)
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
}

/// Every point a subquery produces counts: 4,000 series × 86,400 points is far over a
/// 1 M limit, though the selector itself loaded only 4,000 samples.
#[test]
fn subquery_points_count_against_the_sample_limit() {
    let store = MemStorage::new();
    for i in 0..4000 {
        store.add(
            Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]),
            &[Sample::new(0, 1.0)],
        );
    }
    let e = Engine::new(EngineOptions {
        max_samples: 1_000_000,
        ..EngineOptions::default()
    });
    let err = e
        .instant(&store, "max_over_time((m @ 0)[1d:1s])", 86_400_000)
        .unwrap_err();
    assert!(matches!(err, Error::TooManySamples(_)), "{err}");
    // Within the limit it answers.
    let v = e
        .instant(&store, "count(max_over_time((m @ 0)[100s:1s]))", 100_000)
        .unwrap();
    assert_eq!(
        v,
        Value::Vector(vec![crate::value::VectorSample {
            labels: Labels::empty(),
            t: 100_000,
            v: 4000.0,
            h: None,
            drop_name: false,
        }])
    );
}

fn nest(open: &str, close: &str, n: usize, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

/// Queries as deep as the limit work on a 2 MiB thread (tokio's blocking threads); deeper
/// ones get a clear error; none overflows the stack.
#[test]
fn deep_queries_work_or_fail_cleanly() {
    let ok = MAX_DEPTH - 2;
    let shapes: Vec<(String, String)> = vec![
        ("abs".into(), nest("abs(", ")", ok, "vector(1)")),
        ("sum".into(), nest("sum(", ")", ok, "vector(1)")),
        ("neg".into(), format!("{}x", "-".repeat(ok))),
        ("paren".into(), nest("(", ")", ok, "1")),
        ("plus".into(), format!("1{}", "+1".repeat(ok))),
        (
            "or".into(),
            format!("vector(1){}", " or vector(1)".repeat(ok)),
        ),
    ];
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let store = MemStorage::new();
            let e = Engine::default();
            for (name, q) in &shapes {
                e.instant(&store, q, 0)
                    .unwrap_or_else(|err| panic!("{name}: {err}"));
            }
            let too_deep = [
                nest("abs(", ")", 5000, "vector(1)"),
                format!("1{}", "+1".repeat(5000)),
                format!("{}x", "-".repeat(5000)),
                nest("(", ")", 40_000, "1"),
                nest("sum(", ")", 5000, "vector(1)"),
            ];
            for q in &too_deep {
                let err = e.instant(&store, q, 0).unwrap_err();
                assert!(matches!(err, Error::TooDeep { .. }), "{err}");
                assert!(err.to_string().contains("the limit is 2048"), "{err}");
            }
        })
        .unwrap();
    handle.join().unwrap();
}

#[test]
fn limitk_and_limit_ratio_select_subsets() {
    let store = MemStorage::new();
    for i in 0..200 {
        store.add(
            Labels::from_pairs([("__name__", "x"), ("i", &i.to_string())]),
            &[Sample::new(0, i as f64)],
        );
    }
    let e = Engine::default();
    let count = |q: &str| match e.instant(&store, q, 0).unwrap() {
        Value::Vector(v) => v.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(count("limitk(7, x)"), 7);
    assert_eq!(count("limitk(0, x)"), 0);
    assert_eq!(count("limitk(1000, x)"), 200);
    assert_eq!(count("limit_ratio(1, x)"), 200);
    assert_eq!(count("limit_ratio(0, x)"), 0);
    // r and r-1 select complementary halves; a hash-based choice is roughly proportional.
    let half = count("limit_ratio(0.5, x)");
    assert!((60..140).contains(&half), "{half}");
    assert_eq!(count("limit_ratio(0.5, x) or limit_ratio(-0.5, x)"), 200);
    assert_eq!(count("limit_ratio(0.5, x) and limit_ratio(-0.5, x)"), 0);
    let err = e.instant(&store, "limitk(NaN, x)", 0).unwrap_err();
    assert_eq!(err.to_string(), "Parameter value is NaN");
}
