//! `medic rules check` and `medic rules test` as a user runs them.

use std::path::Path;
use std::process::Command;

fn medic(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ruletests(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rules/testdata/ruletests")
        .join(p)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn rules_check_reports_every_error_with_file_line_group_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(&good, "groups:\n- name: g\n  rules:\n  - alert: Hot\n    expr: t > 90\n    keep_firing_while: t > 80\n").unwrap();
    let (code, out, _) = medic(&["rules", "check", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCESS: 1 rules found"), "{out}");
    // Tools that do not know medic's fields reject the file with a clear message.
    crate::support::require_binary("/usr/bin/promtool", "prometheus");
    let p = Command::new("/usr/bin/promtool")
        .args(["check", "rules", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(p.status.code(), Some(1));
    let perr = String::from_utf8_lossy(&p.stdout).to_string() + &String::from_utf8_lossy(&p.stderr);
    assert!(perr.contains("field keep_firing_while not found"), "{perr}");

    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n- name: g\n  rules:\n  - record: 'bad name'\n    expr: up\n  - alert: A\n    expr: 'sum(('\n",
    )
    .unwrap();
    let (code, _, err) = medic(&["rules", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let b = bad.display();
    assert!(
        err.contains(&format!(
            "{b}:4: group \"g\", rule 1, \"bad name\": invalid recording rule name"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{b}:6: group \"g\", rule 2, \"A\": could not parse expression"
        )),
        "{err}"
    );
}

#[test]
fn rules_test_exits_like_promtool() {
    let (code, out, _) = medic(&[
        "rules",
        "test",
        &ruletests("prometheus-docs-example/test.yml"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let (code, _, err) = medic(&[
        "rules",
        "test",
        &ruletests("prometheus-promtool/failing.yml"),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("FAILED:") && err.contains("alertname: InstanceDown, time: 5m"),
        "{err}"
    );
    let (code, _, _) = medic(&[
        "rules",
        "test",
        "--run",
        "correct",
        &ruletests("prometheus-promtool/rules_run.yml"),
    ]);
    assert_eq!(code, 0);
}

#[test]
fn check_config_checks_the_rule_files_it_names() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/medic.yml");
    let (code, out, err) = medic(&["check", "config", example.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Checking") && out.contains("rules/medic.yml"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("r")).unwrap();
    std::fs::write(
        dir.path().join("r/bad.yml"),
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up ==\n",
    )
    .unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(&cfg, "rule_files: ['r/*.yml']\n").unwrap();
    let (code, out, err) = medic(&["check", "config", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("bad.yml:4") && err.contains("\"A\""), "{err}");
}
