//! Backups of the real binary: a restore drill (backup while ingesting, `kill -9`, restore
//! onto a new directory, everything acknowledged before the backup is there), damaged
//! backups refused, incremental copies, encryption, refusals, and scheduled backups.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

/// `medic <args>`; (success, stdout, stderr).
fn cli(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A playbook that runs and verifies at once.
fn quick_playbook() -> String {
    crate::heal::playbook(
        "quick",
        "Quick",
        "actions:\n  fix:\n    exec:\n      command: ['true']\nverify:\n  exec:\n    command: ['true']\n  within: 5s\n  interval: 500ms\n",
    )
}

/// Three hours of one series every 15 s ending an hour ago, flushed into blocks.
async fn history_in_blocks(c: &reqwest::Client, m: &Medic) -> Vec<(i64, f64)> {
    let end = now_ms() - 3_600_000;
    let samples: Vec<(i64, f64)> = (0..720)
        .map(|i| (end - 3 * 3_600_000 + i * 15_000, i as f64))
        .collect();
    let labels = vec![
        ("__name__".to_string(), "history".to_string()),
        ("job".to_string(), "drill".to_string()),
    ];
    let r = post_write(c, &m.url(""), write_request(&[(labels, samples.clone())]))
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let r = c
        .post(m.url("/api/v1/admin/tsdb/flush"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    samples
}

/// Writes one sample of `live{job="drill"}` every 10 ms until `stop`; returns each
/// acknowledged sample with the time its acknowledgement arrived.
fn ingest(url: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<(i64, i64)>> {
    tokio::spawn(async move {
        let c = client();
        let mut acked = Vec::new();
        let mut v = 0.0;
        while !stop.load(Ordering::Relaxed) {
            let t = now_ms();
            let labels = vec![
                ("__name__".to_string(), "live".to_string()),
                ("job".to_string(), "drill".to_string()),
            ];
            v += 1.0;
            if let Ok(r) = post_write(&c, &url, write_request(&[(labels, vec![(t, v)])])).await {
                if r.status().is_success() {
                    acked.push((t, now_ms()));
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        acked
    })
}

/// The state a restore must bring back: silences, acks, executions, history.
async fn state_of(c: &reqwest::Client, m: &Medic) -> Value {
    let silences = get_json(c, &m.url("/api/v2/silences")).await;
    let mut silences: Vec<Value> = silences
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!([s["id"], s["comment"], s["status"]["state"]]))
        .collect();
    silences.sort_by_key(|s| s.to_string());
    let groups = get_json(c, &m.url("/api/v1/medic/alerts/groups")).await;
    let acks: Vec<Value> = groups["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| !g["ack"].is_null())
        .map(|g| json!([g["id"], g["ack"]["author"], g["ack"]["comment"]]))
        .collect();
    let ex = get_json(c, &m.url("/api/v1/medic/heal/executions")).await;
    let executions: Vec<Value> = ex["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!([e["id"], e["playbook"], e["status"]]))
        .collect();
    let h = get_json(
        c,
        &m.url("/api/v1/medic/alerts/history?filter=alertname=\"Drill\""),
    )
    .await;
    let history: Vec<Value> = h["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!([e["kind"], e["at"]]))
        .collect();
    json!({"silences": silences, "acks": acks, "executions": executions, "history": history})
}

/// Sets up what a team's medic holds: an alert, a silence, an ack, a finished repair.
async fn make_state(c: &reqwest::Client, m: &Medic) {
    let r = c
        .post(m.url("/api/v2/alerts"))
        .json(&json!([{"labels": {"alertname": "Drill", "instance": "a"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(m.url("/api/v2/silences"))
        .json(&json!({
            "matchers": [{"name": "alertname", "value": "Other", "isRegex": false}],
            "startsAt": medic_model::format_rfc3339(now_ms()),
            "endsAt": medic_model::format_rfc3339(now_ms() + 3_600_000),
            "createdBy": "ops", "comment": "drill silence",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let gid = loop {
        let groups = get_json(c, &m.url("/api/v1/medic/alerts/groups")).await;
        if let Some(id) = groups["data"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "no alert group: {groups:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let r = c
        .post(m.url("/api/v1/medic/alerts/ack"))
        .json(&json!({"group": gid, "author": "alice", "comment": "looking", "duration": "2h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = c
        .post(m.url("/api/v1/medic/heal/trigger"))
        .json(&json!({"playbook": "quick", "labels": {"instance": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let e = crate::heal::finished(c, m, "quick", Duration::from_secs(30)).await;
    assert_eq!(e["status"], "succeeded", "{e:#}");
    // The alert's notification is history too: settled before the state is compared.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !state_of(c, m).await["history"]
        .to_string()
        .contains("notified")
    {
        assert!(
            Instant::now() < deadline,
            "the Drill alert was never notified"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn damage(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(file, bytes).unwrap();
}

/// A block file stored in `dest` (the biggest, so it holds samples).
fn a_stored_block_file(dest: &Path) -> PathBuf {
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    for b in std::fs::read_dir(dest.join("blocks")).unwrap() {
        for f in std::fs::read_dir(b.unwrap().path()).unwrap() {
            let f = f.unwrap();
            files.push((f.metadata().unwrap().len(), f.path()));
        }
    }
    files.sort();
    files.pop().unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_drill_after_kill_9_brings_back_every_acknowledged_sample_and_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let cap = Capture::start().await;
    let rules = "groups:\n  - name: drill\n    rules:\n      - record: live:count\n        expr: count(live)\n";
    let m = crate::heal::medic(
        dir.path(),
        &cap,
        None,
        rules,
        &[("quick", quick_playbook())],
    );
    let c = client();
    let history = history_in_blocks(&c, &m).await;
    make_state(&c, &m).await;
    let before = state_of(&c, &m).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = ingest(m.url(""), stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dest = dir.path().join("backups");
    let began = now_ms();
    let (ok, out, err) = {
        let (url, dest) = (m.url(""), dest.clone());
        tokio::task::spawn_blocking(move || cli(&["backup", "create", p(&dest), "--url", &url]))
            .await
            .unwrap()
    };
    assert!(ok, "backup create failed: {out}\n{err}");
    assert!(out.contains("backup "), "{out}");
    // Ingestion went on during the backup; medic dies hard after it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = writer.await.unwrap();
    m.kill9();
    let before_backup: Vec<i64> = acked
        .iter()
        .filter(|(_, ack)| *ack < began)
        .map(|(t, _)| *t)
        .collect();
    assert!(
        before_backup.len() > 50,
        "{} samples acknowledged before",
        before_backup.len()
    );
    assert!(
        acked.len() > before_backup.len(),
        "ingestion went on during the backup"
    );

    let (ok, out, err) = cli(&["backup", "verify", p(&dest)]);
    assert!(ok, "verify failed: {out}\n{err}");
    assert!(
        out.contains("OK") && out.contains("databases intact"),
        "{out}"
    );

    let restored = dir.path().join("restored");
    let (ok, out, err) = cli(&["backup", "restore", p(&dest), "--data", p(&restored)]);
    assert!(ok, "restore failed: {out}\n{err}");
    let cfg = restored.join("config").join("medic.yml");
    assert!(cfg.exists(), "{out}");
    for f in ["rules.yml", "alertmanager.yml", "playbooks/quick.yml"] {
        assert!(restored.join("config").join(f).exists(), "{f} not restored");
    }
    let m2 = Medic::start(&restored, Some(&cfg), &[]);

    let live = export(&c, &m2.url(""), "live").await;
    assert_eq!(live.len(), 1, "{live:?}");
    let have: std::collections::HashSet<i64> = live[0].timestamps.iter().copied().collect();
    let missing: Vec<&i64> = before_backup.iter().filter(|t| !have.contains(t)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged samples missing: {missing:?}",
        missing.len()
    );
    let old = export(&c, &m2.url(""), "history").await;
    assert_eq!(old[0].timestamps.len(), history.len());
    assert_eq!(
        state_of(&c, &m2).await,
        before,
        "the state came back different"
    );
    // The restored medic takes new samples at once.
    let r = post_write(
        &c,
        &m2.url(""),
        write_request(&[(
            vec![
                ("__name__".into(), "live".into()),
                ("job".into(), "drill".into()),
            ],
            vec![(now_ms(), 1.0)],
        )]),
    )
    .await
    .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    // A running medic's directory is refused.
    let again = cli(&[
        "backup",
        "restore",
        p(&dest),
        "--data",
        p(&restored),
        "--only",
        "state",
    ]);
    assert!(
        !again.0 && again.2.contains("running medic holds"),
        "{again:?}"
    );
    drop(m2);

    // A damaged file: verify names it, restore refuses and writes nothing.
    let victim = a_stored_block_file(&dest);
    damage(&victim);
    let (ok, out, _) = cli(&["backup", "verify", p(&dest)]);
    assert!(!ok, "verify passed a damaged backup: {out}");
    let rel = victim
        .strip_prefix(&dest)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(out.contains("DAMAGED") && out.contains(&rel), "{out}");
    let fresh = dir.path().join("fresh");
    let (ok, out, err) = cli(&["backup", "restore", p(&dest), "--data", p(&fresh)]);
    assert!(!ok, "restore took a damaged backup: {out}");
    assert!(err.contains("damaged") && err.contains(&rel), "{err}");
    let left: Vec<String> = std::fs::read_dir(&fresh)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lock")
        .collect();
    assert!(left.is_empty(), "a refused restore left {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_backups_copy_only_new_blocks_and_encrypted_ones_need_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let cap = Capture::start().await;
    let m = crate::heal::medic(
        dir.path(),
        &cap,
        None,
        "groups: []\n",
        &[("quick", quick_playbook())],
    );
    let c = client();
    history_in_blocks(&c, &m).await;
    let dest = dir.path().join("dest");
    let url = m.url("");
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&a)
        })
    };
    let create = |extra: &[&str]| {
        let mut a = vec![
            "backup".to_string(),
            "create".into(),
            p(&dest).into(),
            "--url".into(),
            url.clone(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        run(a)
    };
    let (ok, first, err) = create(&[]).await.unwrap();
    assert!(ok, "{first}{err}");
    assert!(first.contains(", 0 block files already there"), "{first}");
    // The flushed blocks (3 files each; how many blocks depends on where the 2 h block
    // boundaries fall in the history) are not copied again.
    let block_files = walk(&dest.join("blocks")).len();
    assert!(
        block_files >= 3 && block_files.is_multiple_of(3),
        "{block_files}"
    );
    let (ok, second, err) = create(&[]).await.unwrap();
    assert!(ok, "{second}{err}");
    assert!(
        second.contains(&format!(", {block_files} block files already there")),
        "{second}"
    );

    // Encrypted: the content cannot be read without the identity.
    let key = dir.path().join("key.txt");
    let (ok, recipient, err) = cli(&["backup", "keygen", "-o", p(&key)]);
    assert!(ok, "{err}");
    let recipient = recipient.trim().to_string();
    assert!(recipient.starts_with("age1"), "{recipient}");
    let (ok, out, err) = create(&["--encrypt-to", &recipient]).await.unwrap();
    assert!(ok, "{out}{err}");
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    let stored = std::fs::read(dest.join(format!("backups/{id}/config/medic.yml.age"))).unwrap();
    assert!(
        stored.starts_with(b"age-encryption.org/v1"),
        "not an age file"
    );
    let (ok, out, _) = cli(&["backup", "verify", p(&dest), "--backup", &id]);
    assert!(ok && out.contains("stored checksums only"), "{out}");
    let (ok, out, err) = cli(&[
        "backup",
        "verify",
        p(&dest),
        "--backup",
        &id,
        "--identity",
        p(&key),
    ]);
    assert!(ok && out.contains("databases intact"), "{out}{err}");
    let target = dir.path().join("t1");
    let (ok, _, err) = cli(&[
        "backup",
        "restore",
        p(&dest),
        "--data",
        p(&target),
        "--backup",
        &id,
    ]);
    assert!(!ok && err.contains("--identity"), "{err}");
    let other = dir.path().join("other.txt");
    assert!(cli(&["backup", "keygen", "-o", p(&other)]).0);
    let (ok, _, err) = cli(&[
        "backup",
        "restore",
        p(&dest),
        "--data",
        p(&target),
        "--backup",
        &id,
        "--identity",
        p(&other),
    ]);
    assert!(!ok && err.contains("cannot decrypt"), "{err}");
    let (ok, out, err) = cli(&[
        "backup",
        "restore",
        p(&dest),
        "--data",
        p(&target),
        "--backup",
        &id,
        "--identity",
        p(&key),
        "--only",
        "state",
    ]);
    assert!(ok, "{out}{err}");
    assert!(target.join("heal.db").exists() && !target.join("config").exists());

    // A second restore of the same part into the same directory is refused: it is not fresh.
    let (ok, _, err) = cli(&[
        "backup",
        "restore",
        p(&dest),
        "--data",
        p(&target),
        "--backup",
        &id,
        "--identity",
        p(&key),
        "--only",
        "state",
    ]);
    assert!(!ok && err.contains("not fresh"), "{err}");

    // Pruning keeps the newest and drops blocks nobody holds.
    let (ok, out, err) = cli(&["backup", "prune", p(&dest), "--keep-last", "1"]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("kept 1 backups, removed 2"), "{out}");
    let (ok, out, _) = cli(&["backup", "list", p(&dest), "--json"]);
    assert!(ok);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], json!(id));
    let (ok, out, _) = cli(&["backup", "verify", p(&dest), "--identity", p(&key)]);
    assert!(ok, "the kept backup lost files to pruning: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_run_and_are_pruned_by_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("scheduled");
    let cfg = dir.path().join("medic.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs: []\nbackup:\n  destination: {}\n  interval: 1s\n  keep: {{last: 2}}\n",
            dest.display()
        ),
    )
    .unwrap();
    let m = Medic::start(&dir.path().join("data"), Some(&cfg), &[]);
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = metrics_text(&c, &m).await;
        if counter(&text, "medic_backup_succeeded_total") >= 4.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled backups: {}",
            m.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let st = get_json(&c, &m.url("/api/v1/medic/backup/status")).await;
    assert_eq!(st["data"]["last"]["ok"], true, "{st:#}");
    let (ok, out, _) = cli(&["backup", "list", p(&dest), "--json"]);
    assert!(ok);
    let n = serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    assert!(
        (1..=3).contains(&n),
        "{n} backups kept under keep.last 2: {out}"
    );
    // No snapshot is left behind in the data directory.
    drop(m);
    let snaps = dir.path().join("data/snapshots");
    let left = std::fs::read_dir(&snaps).map(|d| d.count()).unwrap_or(0);
    assert!(left <= 1, "{left} snapshots left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_create_needs_an_admin_and_carries_its_token_to_every_request() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let sha = |t: &str| -> String {
        sha2::Sha256::digest(t.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let cfg = dir.path().join("medic.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs: []\nauth:\n  tokens:\n    root: {{sha256: '{}', role: admin}}\n    look: {{sha256: '{}', role: viewer}}\n",
            sha("root-token"),
            sha("look-token")
        ),
    )
    .unwrap();
    let m = Medic::start(&dir.path().join("data"), Some(&cfg), &[]);
    let dest = dir.path().join("dest");
    let url = m.url("");
    let (d, u) = (dest.clone(), url.clone());
    let (ok, _, err) = tokio::task::spawn_blocking(move || {
        cli(&[
            "backup",
            "create",
            p(&d),
            "--url",
            &u,
            "--token",
            "look-token",
        ])
    })
    .await
    .unwrap();
    assert!(!ok && err.contains("403"), "a viewer made a backup: {err}");
    let (d, u) = (dest.clone(), url.clone());
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        cli(&[
            "backup",
            "create",
            p(&d),
            "--url",
            &u,
            "--token",
            "root-token",
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{out}{err}");
    let (ok, out, _) = cli(&["backup", "verify", p(&dest)]);
    assert!(ok, "{out}");
    // Without a token nothing is served, not even a file of a snapshot that exists.
    let c = client();
    let r = c
        .post(m.url("/api/v1/medic/backup/snapshots"))
        .bearer_auth("root-token")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let snap: Value = r.json().await.unwrap();
    let id = snap["data"]["id"].as_str().unwrap();
    let file = snap["data"]["files"][0]["path"].as_str().unwrap();
    let url = m.url(&format!("/api/v1/medic/backup/snapshots/{id}/file"));
    let r = c.get(&url).query(&[("path", file)]).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Only listed files: a path outside the snapshot is not found.
    let r = c
        .get(&url)
        .bearer_auth("root-token")
        .query(&[("path", "state/../../medic.yml")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Every file under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
