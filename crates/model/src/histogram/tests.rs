use super::*;

fn h(text: &str) -> FloatHistogram {
    parse_test_expression(text).unwrap()
}

#[test]
fn exponential_bounds() {
    // Schema 0: powers of two; schema 1: every half octave; schema -1: every second octave.
    assert_eq!(exponential_bound(0, 0), 1.0);
    assert_eq!(exponential_bound(3, 0), 8.0);
    assert_eq!(exponential_bound(-2, 0), 0.25);
    assert!((exponential_bound(1, 1) - 2f64.sqrt()).abs() < 1e-15);
    assert_eq!(exponential_bound(2, 1), 2.0);
    assert_eq!(exponential_bound(1, -1), 4.0);
    assert_eq!(exponential_bound(1024, 0), f64::MAX);
    assert_eq!(exponential_bound(1025, 0), f64::INFINITY);
}

#[test]
fn parses_and_lists_buckets_in_value_order() {
    let x = h("{{schema:0 sum:5 count:6 z_bucket:1 z_bucket_w:0.5 buckets:[1 0 2] offset:1 n_buckets:[2]}}");
    assert_eq!(x.positive, vec![(1, 1.0), (3, 2.0)]);
    assert_eq!(x.negative, vec![(0, 2.0)]);
    let b: Vec<(f64, f64, f64)> = x
        .buckets()
        .iter()
        .map(|b| (b.lower, b.upper, b.count))
        .collect();
    assert_eq!(
        b,
        vec![
            (-1.0, -0.5, 2.0),
            (-0.5, 0.5, 1.0),
            (1.0, 2.0, 1.0),
            (4.0, 8.0, 2.0)
        ]
    );
    assert_eq!(
        format_test_expression(&x),
        "{{count:6 sum:5 z_bucket:1 z_bucket_w:0.5 offset:1 buckets:[1 0 2] n_buckets:[2]}}"
    );
    assert!(parse_test_expression("{{bogus:1}}").is_err());
    assert!(parse_test_expression("{{buckets:[1 2}}").is_err());
}

#[test]
fn custom_bucket_bounds() {
    let x = h("{{schema:-53 sum:5 count:4 custom_values:[5 10] buckets:[1 2 1]}}");
    let b: Vec<(f64, f64)> = x.buckets().iter().map(|b| (b.lower, b.upper)).collect();
    assert_eq!(
        b,
        vec![(f64::NEG_INFINITY, 5.0), (5.0, 10.0), (10.0, f64::INFINITY)]
    );
}

#[test]
fn adds_across_schemas_and_zero_buckets() {
    // Schema 1 buckets 1..=4 are (1,√2], (√2,2], (2,2√2], (2√2,4]; at schema 0 they become
    // (1,2] and (2,4].
    let mut a = h("{{schema:0 count:2 sum:3 buckets:[1 1] offset:1}}");
    let b = h("{{schema:1 count:4 sum:10 buckets:[1 1 1 1] offset:1}}");
    a.add(&b).unwrap();
    assert_eq!(a.schema, 0);
    assert_eq!(a.positive, vec![(1, 3.0), (2, 3.0)]);
    assert_eq!((a.count, a.sum), (6.0, 13.0));
    // A zero bucket of width 1.5 swallows (0.5,1] and grows to 2, the upper bound of the bucket
    // it cut through, swallowing (1,2] too.
    let mut c = h("{{count:3 sum:3 buckets:[1 1 1]}}");
    let d = h("{{count:1 sum:0 z_bucket:1 z_bucket_w:1.5}}");
    c.add(&d).unwrap();
    assert_eq!(c.zero_threshold, 2.0);
    assert_eq!(c.zero_count, 3.0);
    assert_eq!(c.positive, vec![(2, 1.0)]);
    // Subtracting to zero leaves no bucket.
    let mut e = h("{{count:2 sum:2 buckets:[2]}}");
    e.sub(&h("{{count:2 sum:2 buckets:[2]}}")).unwrap();
    assert!(e.positive.is_empty());
    assert_eq!(
        h("{{schema:-53 custom_values:[1]}}").add(&h("{{count:1}}")),
        Err(Mismatch::ExponentialAndCustom)
    );
}

#[test]
fn custom_buckets_reconcile_to_common_bounds() {
    let mut a = h("{{schema:-53 count:1 sum:1 custom_values:[10] buckets:[1]}}");
    let b = h("{{schema:-53 count:1 sum:1 custom_values:[2 10] buckets:[1]}}");
    let r = a.add(&b).unwrap();
    assert!(r.custom_reconciled);
    assert_eq!(a.custom_values, vec![10.0]);
    assert_eq!(a.positive, vec![(0, 2.0)]);
}

#[test]
fn counter_resets() {
    let prev = h("{{count:4 sum:5 buckets:[1 2 1]}}");
    assert!(!h("{{count:5 sum:6 buckets:[1 3 1]}}").detect_reset(&prev));
    assert!(h("{{count:5 sum:6 buckets:[2 1 2]}}").detect_reset(&prev));
    assert!(h("{{count:3 sum:6 buckets:[1 1 1]}}").detect_reset(&prev));
    // A coarser schema is compared after reducing the previous histogram.
    assert!(!h("{{schema:-1 count:5 sum:6 buckets:[1 4]}}").detect_reset(&prev));
    // A finer schema is a reset.
    assert!(h("{{schema:1 count:5 sum:6 buckets:[1 4]}}").detect_reset(&prev));
    assert!(h("{{count:1 sum:1 buckets:[1] counter_reset_hint:gauge}}").detect_reset(&prev));
    assert!(!h("{{count:1 sum:1 buckets:[1] counter_reset_hint:not_reset}}").detect_reset(&prev));
}

#[test]
fn spans_round_trip() {
    // -2 and -1, then a gap of three (0, 1, 2) before 3.
    let side = vec![(-2, 1.0), (-1, 2.0), (3, 4.0)];
    let (spans, counts) = FloatHistogram::spans(&side);
    assert_eq!(
        spans,
        vec![
            Span {
                offset: -2,
                length: 2
            },
            Span {
                offset: 3,
                length: 1
            }
        ]
    );
    assert_eq!(FloatHistogram::from_spans(&spans, &counts), Some(side));
    assert_eq!(FloatHistogram::from_spans(&spans, &[1.0]), None);
}

#[test]
fn prints_as_prometheus_prints() {
    assert_eq!(format_go_g(1e6), "1e+06");
    assert_eq!(format_go_g(123456.0), "123456");
    assert_eq!(format_go_g(2.5e-5), "2.5e-05");
    assert_eq!(format_go_g(0.001), "0.001");
    assert_eq!(format_go_g(-1.5e300), "-1.5e+300");
    let x = h("{{count:20 sum:10 z_bucket:2 z_bucket_w:0.001 buckets:[1 2] offset:0 n_buckets:[1 2] n_offset:0}}");
    assert_eq!(
        x.to_string(),
        "{count:20, sum:10, [-2,-1):2, [-1,-0.5):1, [-0.001,0.001]:2, (0.5,1]:1, (1,2]:2}"
    );
}
