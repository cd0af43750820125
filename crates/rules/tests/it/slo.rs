//! SLOs in Sloth's format: the rules generated carry Sloth's names, labels and thresholds (the
//! figures Sloth itself writes for the same objectives), malformed specs are refused naming the
//! field and line, and the generated alerts fire and resolve when hand-computed burn rates say
//! they should (medic's promtool-format runner here; the real promtool in the cli tests).

use std::path::{Path, PathBuf};

use medic_rules::slo::{generate, spec, Options};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/slo")
        .join(name)
}

fn checkout() -> medic_rules::slo::Spec {
    let path = testdata("checkout.yml");
    spec::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
}

#[test]
fn the_generated_rules_have_sloths_names_labels_and_thresholds() {
    let text = generate(&checkout(), &Options::default());
    let rf = medic_rules::file::parse(&text, Path::new("generated.yml"), false).unwrap();
    let groups: Vec<&str> = rf.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        groups,
        [
            "sloth-slo-sli-recordings-checkout-availability",
            "sloth-slo-meta-recordings-checkout-availability",
            "sloth-slo-alerts-checkout-availability",
            "sloth-slo-sli-recordings-checkout-latency",
            "sloth-slo-meta-recordings-checkout-latency",
        ],
        "both of latency's alerts are disabled: no alert group"
    );
    let records: Vec<&str> = rf.groups[0]
        .rules
        .iter()
        .filter_map(|r| r.record.as_deref())
        .collect();
    assert_eq!(
        records,
        [
            "slo:sli_error:ratio_rate5m",
            "slo:sli_error:ratio_rate30m",
            "slo:sli_error:ratio_rate1h",
            "slo:sli_error:ratio_rate2h",
            "slo:sli_error:ratio_rate6h",
            "slo:sli_error:ratio_rate1d",
            "slo:sli_error:ratio_rate3d",
            "slo:sli_error:ratio_rate30d",
        ]
    );
    let meta: Vec<&str> = rf.groups[1]
        .rules
        .iter()
        .filter_map(|r| r.record.as_deref())
        .collect();
    assert_eq!(
        meta,
        [
            "slo:objective:ratio",
            "slo:error_budget:ratio",
            "slo:time_period:days",
            "slo:current_burn_rate:ratio",
            "slo:period_burn_rate:ratio",
            "slo:period_error_budget_remaining:ratio",
            "sloth_slo_info",
        ]
    );
    let five = &rf.groups[0].rules[0];
    let labels: Vec<(&str, &str)> = five
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("sloth_id", "checkout-availability"),
            ("sloth_service", "checkout"),
            ("sloth_slo", "availability"),
            ("sloth_window", "5m"),
            ("team", "payments"),
        ]
    );
    assert!(five
        .expr
        .contains(r#"requests_errors_total{job="checkout"}[5m]"#));
    // The period ratio is the mean of the 5-minute ratios.
    let period = &rf.groups[0].rules[7];
    assert_eq!(period.labels["sloth_window"], "30d");
    assert_eq!(period.labels["sloth_id"], "checkout-availability");
    assert!(period
        .expr
        .contains("sum_over_time(slo:sli_error:ratio_rate5m{"));
    // Sloth writes these figures for objectives 99.9 and 99 (its out-base.yaml): the budget is
    // computed as (100 - objective) / 100, the thresholds as factor × budget.
    assert!(
        text.contains("expr: |\n      vector(0.9990000000000001)"),
        "{text}"
    );
    assert!(text.contains("vector(1-0.9990000000000001)"));
    let mut strict = checkout();
    strict.slos[0].objective = 99.9;
    let strict = generate(&strict, &Options::default());
    assert!(
        strict.contains("(14.4 * 0.0009999999999999432))"),
        "{strict}"
    );
    let alerts = &rf.groups[2].rules;
    assert_eq!(alerts.len(), 2);
    let page = &alerts[0];
    assert_eq!(
        page.alert.as_deref(),
        Some("CheckoutAvailabilityBudgetBurn")
    );
    assert_eq!(page.labels["sloth_severity"], "page");
    assert_eq!(page.labels["severity"], "critical");
    assert_eq!(page.labels["category"], "availability");
    for threshold in ["(14.4 * 0.01)", "(6 * 0.01)"] {
        assert!(
            page.expr.contains(threshold),
            "{threshold} in {}",
            page.expr
        );
    }
    for w in [
        "ratio_rate5m",
        "ratio_rate1h",
        "ratio_rate30m",
        "ratio_rate6h",
    ] {
        assert!(page.expr.contains(w), "{w}");
    }
    let ticket = &alerts[1];
    assert_eq!(ticket.labels["sloth_severity"], "ticket");
    for threshold in ["(3 * 0.01)", "(1 * 0.01)"] {
        assert!(
            ticket.expr.contains(threshold),
            "{threshold} in {}",
            ticket.expr
        );
    }
    assert_eq!(
        ticket.annotations["title"],
        "(ticket) {{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is too fast."
    );
    assert_eq!(
        ticket.annotations["runbook"],
        "https://runbooks.example/checkout"
    );
}

/// Over a 28-day period the factors are those of Sloth's 28d windows: the same budget shares
/// spent over a shorter period.
#[test]
fn a_28_day_period_scales_the_burn_rates() {
    let text = generate(
        &checkout(),
        &Options {
            period_days: 28,
            ..Default::default()
        },
    );
    for needle in [
        "slo:sli_error:ratio_rate4w",
        "vector(28)",
        "(13.44 * 0.01)",
        "(5.6 * 0.01)",
        "(2.8 * 0.01)",
        "(0.9333333333333333 * 0.01)",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
}

#[test]
fn malformed_specs_are_refused_naming_the_field_and_line() {
    let base = std::fs::read_to_string(testdata("checkout.yml")).unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "\"prometheus/v1\"",
            "\"prometheus/v2\"",
            "version: \"prometheus/v2\" is not supported",
        ),
        (
            "objective: 99\n",
            "objective: 150\n",
            "slos[0] (\"availability\"): objective: 150 is outside (0, 100]",
        ),
        (
            "[{{.window}}]))\n        total",
            "[5m]))\n        total",
            "sli.events.error_query: must use the {{.window}} template variable",
        ),
        (
            "name: CheckoutAvailabilityBudgetBurn",
            "name: \"\"",
            "alerting.name: \"\" is not a valid alert name",
        ),
        (
            "- name: \"latency\"",
            "- name: \"availability\"",
            "slos[1] (\"availability\"): name: another SLO",
        ),
        (
            "sum(rate(requests_total{job=\"checkout\"}",
            "sum(rate(requests_total{job=\"checkout\"",
            "sli.events.total_query:",
        ),
        (
            "      events:\n",
            "      plugin:\n        id: x\n      events:\n",
            "sli.plugin: Sloth's SLI plugins are Go code",
        ),
        (
            "  team: payments",
            "  sloth_team: payments",
            "labels: \"sloth_team\": labels starting with sloth_",
        ),
        (
            "objective: 99\n",
            "objective: 99\n    obective: 98\n",
            "unknown field `obective`",
        ),
    ];
    for (from, to, want) in cases {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        let errs = spec::parse(&text, Path::new("slos/checkout.yml")).unwrap_err();
        let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            all.iter()
                .any(|e| e.contains(want) && e.starts_with("slos/checkout.yml")),
            "{want:?} not in {all:#?}"
        );
    }
    // The SLO's own line is named.
    let text = base.replacen("objective: 99\n", "objective: 0\n", 1);
    let errs = spec::parse(&text, Path::new("c.yml")).unwrap_err();
    assert_eq!(errs[0].line, Some(7), "{errs:?}");
}

/// The generated rules, run by medic's promtool-format runner straight from the spec (rule
/// files may name a Sloth spec): each alert fires and resolves at the hand-computed times.
#[test]
fn the_burn_rate_alerts_fire_and_resolve_when_the_error_budget_says() {
    let dir = tempfile::tempdir().unwrap();
    let test = std::fs::read_to_string(testdata("checkout_test.yml"))
        .unwrap()
        .replace("RULES", testdata("checkout.yml").to_str().unwrap())
        .replace(
            "medic-VERSION",
            &format!("medic-{}", env!("CARGO_PKG_VERSION")),
        );
    let path = dir.path().join("test.yml");
    std::fs::write(&path, test).unwrap();
    let errs = medic_rules::unittest::run_file(&path, &Default::default());
    assert!(errs.is_empty(), "{errs:#?}");
}
