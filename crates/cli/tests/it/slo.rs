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
