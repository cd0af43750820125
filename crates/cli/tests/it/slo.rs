//! `medic slo generate` with the real promtool: the rules generated from a Sloth spec pass
//! `promtool check rules`, and `promtool test rules` shows each burn-rate alert firing and
//! resolving at the hand-computed times (`crates/rules/testdata/slo/checkout_test.yml`).

use std::path::Path;
use std::process::Command;

use crate::support::require_binary;

fn testdata(name: &str) -> String {
    format!(
        "{}/../rules/testdata/slo/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn medic(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn generated_slo_rules_pass_promtools_checks_and_burn_rate_tests() {
    require_binary("/usr/bin/promtool", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("checkout-slo.yml");
    let out = medic(&[
        "slo",
        "generate",
        "-i",
        &testdata("checkout.yml"),
        "-o",
        rules.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let check = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.contains("SUCCESS: 32 rules found"), "{said}");

    let test = std::fs::read_to_string(testdata("checkout_test.yml"))
        .unwrap()
        .replace("RULES", "checkout-slo.yml")
        .replace(
            "medic-VERSION",
            &format!("medic-{}", env!("CARGO_PKG_VERSION")),
        );
    let test_file = dir.path().join("checkout_test.yml");
    std::fs::write(&test_file, test).unwrap();
    let run = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&test_file)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success() && said.contains("SUCCESS"), "{said}");

    // medic's own checker reads the spec itself.
    let out = medic(&["rules", "check", &testdata("checkout.yml")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS: 32 rules found"));
}

#[test]
fn a_malformed_spec_is_refused_with_its_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    let text = std::fs::read_to_string(testdata("checkout.yml"))
        .unwrap()
        .replacen("objective: 99\n", "objective: 150\n", 1);
    std::fs::write(&bad, text).unwrap();
    let out = medic(&["slo", "generate", "-i", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:7: slos[0] (\"availability\"): objective: 150 is outside (0, 100]",
            bad.display()
        )),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing half-written");
    assert!(!Path::new(&dir.path().join("out.yml")).exists());
}

fn close(v: &serde_json::Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-9)
}

/// `medic run` loads the spec from `rule_files`; with 2 % of requests failing against a 99 %
/// objective, the SLO API and `medic slo list | show` report an error ratio of 2 % over every
/// window, a burn rate of 2 and the period's budget overspent (1 − 2 = −1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_medic_reports_its_slos_from_the_recorded_series() {
    use crate::support::*;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("medic.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files:\n  - {}\n",
            testdata("checkout.yml")
        ),
    )
    .unwrap();
    let medic = Medic::start(&dir.path().join("data"), Some(&config), &[]);
    let c = client();
    let now = now_ms() / 1000 * 1000;
    let labels = |name: &str| {
        vec![
            ("__name__".to_string(), name.to_string()),
            ("job".to_string(), "checkout".to_string()),
        ]
    };
    // 100 requests a minute for two hours, 2 of them failing.
    let points = |per_minute: f64| -> Vec<(i64, f64)> {
        (0..=480)
            .map(|i| (now - 7_200_000 + i * 15_000, i as f64 * per_minute / 4.0))
            .collect()
    };
    let body = write_request(&[
        (labels("requests_total"), points(100.0)),
        (labels("requests_errors_total"), points(2.0)),
    ]);
    let r = post_write(&c, &medic.url(""), body).await.unwrap();
    assert_eq!(r.status().as_u16(), 204);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let slo = loop {
        let v = get_json(&c, &medic.url("/api/v1/medic/slos")).await;
        let slos = v["data"].as_array().cloned().unwrap_or_default();
        let found = slos
            .iter()
            .find(|s| {
                s["id"] == "checkout-availability"
                    && !s["budget_remaining"].is_null()
                    && s["error_ratio"].as_object().is_some_and(|m| m.len() == 8)
            })
            .cloned();
        let latency = slos.iter().find(|s| s["id"] == "checkout-latency");
        if let (Some(s), Some(latency)) = (found, latency) {
            assert!(
                latency["error_ratio"]
                    .as_object()
                    .is_some_and(|m| m.is_empty()),
                "the latency SLO has no traffic and so no ratios: {latency}"
            );
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "no SLO series: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert!(close(&slo["objective"], 0.99), "{slo}");
    assert!(close(&slo["error_budget"], 0.01), "{slo}");
    assert!(close(&slo["period_days"], 30.0), "{slo}");
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        assert!(close(&slo["error_ratio"][w], 0.02), "{w}: {slo}");
        assert!(close(&slo["burn_rate"][w], 2.0), "{w}: {slo}");
    }
    assert!(close(&slo["current_burn_rate"], 2.0), "{slo}");
    assert!(close(&slo["period_burn_rate"], 2.0), "{slo}");
    assert!(close(&slo["budget_remaining"], -1.0), "{slo}");
    assert_eq!(slo["labels"]["team"], "payments");

    let r = c
        .get(medic.url("/api/v1/medic/slos/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    let url = medic.url("");
    let list = medic_cli(&["slo", "list", "--url", &url]);
    assert!(
        list.contains("checkout-availability") && list.contains("2.00×"),
        "{list}"
    );
    assert!(list.contains("-100.000%"), "budget left: {list}");
    let show = medic_cli(&["slo", "show", "checkout-availability", "--url", &url]);
    assert!(
        show.contains("objective:    99.000%") && show.contains("3d"),
        "{show}"
    );
}

fn medic_cli(args: &[&str]) -> String {
    let out = medic(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
