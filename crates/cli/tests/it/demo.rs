//! The scenario suite: `medic demo --once` — real patients (child processes) broken for real,
//! medic (`medic run`) repairing them — on the full schedule, and the same scenarios with
//! trouble injected: an action that fails, a fault that keeps coming back, medic killed in the
//! middle of a repair. Besides the demo's own summary, each test checks what the supervisor
//! (the stand-in for systemd or an orchestrator) was actually asked to do, from its log.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    summary: Value,
    /// The supervisor's control calls, in order (`restart web-1`, …).
    calls: Vec<String>,
}

fn demo(dir: &Path, extra: &[&str]) -> Run {
    let summary = dir.join("summary.json");
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["demo", "--once", "--quiet", "4s", "--dir"])
        .arg(dir)
        .arg("--json")
        .arg(&summary)
        // Any free port, chosen by the demo itself (a port chosen here was once given to a
        // patient before medic could bind it).
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let medic_log = std::fs::read_to_string(dir.join("medic.log")).unwrap_or_default();
    let summary: Value = std::fs::read(&summary)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| {
            panic!("no summary; stdout:\n{stdout}\nstderr:\n{stderr}\nmedic.log:\n{medic_log}")
        });
    let calls = std::fs::read_to_string(dir.join("supervisor.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, c)| c).to_string())
        .collect();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout,
        summary,
        calls,
    }
}

/// Instances in the file_sd targets file the supervisor keeps.
fn targets_in_service(dir: &Path) -> usize {
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.join("targets/web.json")).unwrap()).unwrap();
    v.as_array().unwrap().len()
}

fn executions(fault: &Value) -> Vec<Value> {
    fault["executions"].as_array().cloned().unwrap_or_default()
}

fn steps(e: &Value) -> Vec<(String, String, String)> {
    e["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["kind"].as_str().unwrap_or("").to_string(),
                s["name"].as_str().unwrap_or("").to_string(),
                s["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The timeline's lines: (seconds, the rest).
fn timeline(stdout: &str) -> Vec<(f64, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let (t, rest) = l.trim_start().split_once("s  ")?;
            Some((t.parse().ok()?, rest.to_string()))
        })
        .collect()
}

#[test]
fn the_demo_heals_every_fault_and_stays_still_when_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let r = demo(dir.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    // Events in the order they happened: times never go back, and the alert that caused a
    // restart comes before it (the poller once printed the restart first).
    let lines = timeline(&r.stdout);
    for w in lines.windows(2) {
        assert!(w[0].0 <= w[1].0, "out of order: {w:?}\n{}", r.stdout);
    }
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|(_, l)| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{}", r.stdout))
    };
    assert!(
        pos("alert InstanceDown firing") < pos("action restart succeeded"),
        "{}",
        r.stdout
    );
    // The anomaly rule, warmed from the history the demo writes, sees the traffic change.
    let anomalies = r.summary["anomalies"].as_array().unwrap();
    assert!(!anomalies.is_empty(), "{}", r.stdout);
    assert!(r.stdout.contains("anomaly detection: "), "{}", r.stdout);
    let faults = r.summary["faults"].as_array().unwrap();
    let names: Vec<&str> = faults
        .iter()
        .map(|f| f["fault"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "crash",
            "memory leak",
            "bad deploy",
            "saturation",
            "disk fill"
        ]
    );
    for f in faults {
        assert_eq!(f["outcome"], "healed", "{f:#}");
        let e = executions(f);
        assert!(
            e.iter().any(|e| e["status"] == "succeeded"),
            "no verified repair: {f:#}"
        );
        // Recovery is measured from the injection to the verification, and bounded.
        let rec = f["recover_seconds"].as_f64().unwrap();
        let det = f["detect_seconds"].as_f64().unwrap();
        assert!(det > 0.0 && det < rec && rec < 30.0, "{f:#}");
    }
    assert_eq!(r.summary["quiet_actions"], 0, "{}", r.stdout);
    assert_eq!(r.summary["quiet_executions"], 0, "{}", r.stdout);
    // What the supervisor was really asked to do: one call per fault, nothing else.
    assert_eq!(
        r.calls,
        [
            "restart web-1",
            "restart web-2",
            "rollback web-3",
            "scale-out web"
        ],
        "{}",
        r.stdout
    );
    // The disk repair ran `find … -delete` on rotated logs only: the live log is still there.
    let logs = dir.path().join("web-1/logs");
    let left: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["app.log"], "{}", r.stdout);
    // The saturation repair put a fourth instance in service.
    assert_eq!(targets_in_service(dir.path()), 4);
    // People heard of each repair: a success report to `ops` per fault.
    let reports = r.summary["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| {
            n["receiver"] == "ops"
                && n["message"]["alerts"][0]["labels"]["medic_event"] == "success"
        })
        .count();
    assert_eq!(reports, 5, "{}", r.stdout);
    // The closing table is printed.
    assert!(r.stdout.contains("FAULT") && r.stdout.contains("RECOVER"));
}

#[test]
fn a_failing_action_is_rolled_back_then_escalated() {
    let dir = tempfile::tempdir().unwrap();
    let r = demo(dir.path(), &["--trouble", "failing-action"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let f = &r.summary["faults"][0];
    assert_eq!(f["outcome"], "escalated", "{f:#}");
    // An escalation is not shown as a success.
    let end = timeline(&r.stdout)
        .into_iter()
        .find(|(_, l)| l.contains("saturation on web: escalated"))
        .unwrap();
    assert!(end.1.starts_with("📟"), "{end:?}");
    assert!(!r.stdout.contains("✔ escalated"), "{}", r.stdout);
    let e = executions(f);
    let failed = e.iter().find(|e| e["status"] == "failed").unwrap();
    let s = steps(failed);
    let at = |kind: &str, state: &str| {
        s.iter()
            .position(|(k, _, st)| k == kind && st == state)
            .unwrap_or_else(|| panic!("no {kind} {state}: {s:?}"))
    };
    assert!(at("action", "failed") < at("rollback", "succeeded"));
    assert!(at("rollback", "succeeded") < at("escalate", "succeeded"));
    // The broken instance was started, then taken away again.
    assert_eq!(r.calls, ["scale-out web", "scale-in web"]);
    assert_eq!(targets_in_service(dir.path()), 3);
    // The on-call receiver was told, with what medic saw and did.
    let paged = r.summary["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["receiver"] == "oncall")
        .unwrap_or_else(|| panic!("oncall not paged: {}", r.stdout));
    assert_eq!(
        paged["message"]["alerts"][0]["labels"]["medic_event"],
        "failure"
    );
}

#[test]
fn a_fault_that_keeps_coming_back_meets_the_cooldown_then_the_circuit_breaker() {
    let dir = tempfile::tempdir().unwrap();
    let r = demo(dir.path(), &["--trouble", "recurring"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let f = &r.summary["faults"][0];
    assert_eq!(f["outcome"], "circuit breaker", "{f:#}");
    let mut e = executions(f);
    e.sort_by_key(|e| e["created_at"].as_i64());
    let statuses: Vec<&str> = e.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        ["succeeded", "vetoed", "succeeded", "vetoed"],
        "{}",
        r.stdout
    );
    assert_eq!(e[1]["veto"]["guard"], "cooldown");
    assert_eq!(e[3]["veto"]["guard"], "circuit_breaker");
    assert!(steps(&e[3])
        .iter()
        .any(|(k, n, _)| k == "guard" && n == "recurrence"));
    // Two restarts, the cooldown (10s) apart: the cooldown delayed the second one.
    let log = std::fs::read_to_string(dir.path().join("supervisor.log")).unwrap();
    let times: Vec<f64> = log
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(r.calls, ["restart web-1", "restart web-1"]);
    assert!(times[1] - times[0] >= 9.5, "{log}");
    // The playbook is paused until a person resumes it, and on-call was told.
    assert!(r.summary["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["receiver"] == "oncall"
            && n["message"]["alerts"][0]["labels"]["medic_event"] == "circuit_breaker"));
}

#[test]
fn medic_killed_in_the_middle_of_a_repair_resumes_without_repeating_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = demo(dir.path(), &["--trouble", "restart-medic"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("killed medic (SIGKILL)"), "{}", r.stdout);
    let f = &r.summary["faults"][0];
    assert_eq!(f["outcome"], "healed", "{f:#}");
    let e = executions(f);
    assert_eq!(e.len(), 1, "{e:#?}");
    let s = steps(&e[0]);
    assert!(
        s.iter()
            .any(|(k, n, st)| k == "action" && n == "restart" && st == "unknown"),
        "{s:?}"
    );
    assert!(s.iter().any(|(k, _, _)| k == "resume"), "{s:?}");
    assert_eq!(e[0]["status"], "succeeded");
    // The restart was asked for exactly once.
    assert_eq!(r.calls, ["restart web-1"]);
}

#[test]
fn the_demo_configuration_passes_medic_check_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["check", "config"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/demo/medic.yml"
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("5 playbooks: OK"), "{text}");
    assert!(text.contains("SUCCESS: 6 rules found"), "{text}");
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Starts `medic demo` (not `--once`) and waits until its schedule runs; returns the child, the
/// port medic listens on, and the demo's working directory.
fn running_demo() -> (std::process::Child, u16, std::path::PathBuf) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["demo", "--quiet", "60s", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("medic-demo-{}", child.id()));
    let out = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some((_, p)) = line.split_once("medic listening on http://127.0.0.1:") {
            port = p.trim().parse().ok();
        }
        if line.contains("quiet period (60s)") {
            break;
        }
    }
    let port = port.expect("the demo says where medic listens");
    std::thread::spawn(move || for _ in lines {});
    assert!(port_open(port), "medic is up");
    (child, port, dir)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Whatever ends the demo, nothing of it is left running: on SIGHUP (terminal closed) the child
/// `medic run` once kept running and held its port (it takes SIGHUP as "reload"), and on SIGTERM
/// the working directory stayed behind.
#[test]
fn the_demo_leaves_nothing_behind_when_the_terminal_closes_or_it_is_killed() {
    for sig in [libc::SIGHUP, libc::SIGTERM] {
        let (mut child, port, dir) = running_demo();
        assert!(dir.exists());
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        assert!(
            status.code().is_some(),
            "signal {sig}: the demo ended by itself: {status}"
        );
        wait_until(&format!("signal {sig}: medic stopped"), || !port_open(port));
        assert!(!dir.exists(), "signal {sig}: working directory removed");
    }
    // Even SIGKILL, which nothing can catch: medic and the patients follow the demo.
    let (mut child, port, dir) = running_demo();
    let _ = child.kill();
    let _ = child.wait();
    wait_until("SIGKILL: medic stopped", || !port_open(port));
    wait_until("SIGKILL: patients stopped", || {
        let needle = dir.to_string_lossy().into_owned();
        !std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
            std::fs::read(p.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}
