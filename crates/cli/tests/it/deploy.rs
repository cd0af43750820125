//! The deployment files of docs/ha.md: the systemd unit passes `systemd-analyze verify`, the
//! Kubernetes manifests validate against the API's schemas with unknown fields refused
//! (`kubernetes-validate --strict`, offline: no cluster runs here, and `kubectl --dry-run`
//! needs one), and the medic.yml each carries passes `medic check config`.

use std::path::Path;
use std::process::Command;

use crate::support::*;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn check_config(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["check", "config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_systemd_unit_verifies_and_its_config_checks() {
    require_binary("/usr/bin/systemd-analyze", "systemd");
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/medic@.service")).unwrap();
    // The unit as installed, with this build's binary and the example environment file.
    let env = dir.path().join("a.env");
    std::fs::copy(repo().join("deploy/systemd/a.env"), &env).unwrap();
    let unit = unit
        .replace("/usr/local/bin/medic", env!("CARGO_BIN_EXE_medic"))
        .replace("/etc/medic/%i.env", env.to_str().unwrap());
    let path = dir.path().join("medic@a.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    check_config(&std::fs::read_to_string(repo().join("deploy/systemd/medic.yml")).unwrap());
}

#[test]
fn the_kubernetes_manifests_validate_and_their_config_checks() {
    let path = repo().join("deploy/kubernetes/medic.yaml");
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("kubernetes-validate: {e}; install the pip package kubernetes-validate (scripts/test.sh does)")
        });
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The medic.yml in the ConfigMap: the block under `medic.yml: |`, dedented.
    let text = std::fs::read_to_string(&path).unwrap();
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("medic.yml: |"))
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .collect();
    assert!(block.len() > 5, "no medic.yml in the ConfigMap");
    let config: String = block
        .iter()
        .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
        .collect();
    assert!(config.contains("ha:"), "{config}");
    check_config(&config);
}
