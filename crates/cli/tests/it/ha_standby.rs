//! Every replica serves: a standby forwards what it receives to the leader, so alerts,
//! silences, acks and approvals sent to either replica are written once, by the leader, to
//! PostgreSQL, and read back the same through both at once.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ha::replica_on;
use crate::support::*;

/// Waits until `url` answers 200; its body.
async fn until_ok(c: &reqwest::Client, url: &str, log: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = c.get(url).send().await {
            if r.status() == 200 {
                return r.text().await.unwrap();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url} not ready in 60 s:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn post(c: &reqwest::Client, url: String, body: Value) -> Value {
    let r = c.post(&url).json(&body).send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "POST {url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_serves_reads_and_writes_through_the_leader_and_both_agree_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pg = medic_testkit::Postgres::start(dir.path(), 40);
    let url_file = dir.path().join("pg-url");
    std::fs::write(&url_file, pg.database("medic")).unwrap();
    let log = dir.path().join("actions.log");
    let c = client();
    let act = format!("echo act >> {}", log.display());
    let playbook = (act.as_str(), "true", "always");

    let a_port = free_port();
    let mut a = replica_on(
        dir.path(),
        &url_file,
        "A",
        playbook,
        &format!("127.0.0.1:{a_port}"),
    );
    let a_url = a
        .listening
        .recv_timeout(Duration::from_secs(60))
        .expect("A leads and listens");
    let b_port = free_port();
    let b = replica_on(
        dir.path(),
        &url_file,
        "B",
        playbook,
        &format!("127.0.0.1:{b_port}"),
    );
    let b_url = format!("http://127.0.0.1:{b_port}");
    // B is a standby, and ready: it names the leader it forwards to.
    let ready = until_ok(&c, &format!("{b_url}/-/ready"), &b.stderr).await;
    assert!(
        ready.contains("standby") && ready.contains("leader A"),
        "{ready}"
    );
    assert!(b.listening.try_recv().is_err(), "B does not lead");

    // An alert posted to the standby starts a repair on the leader, which waits for approval.
    post(
        &c,
        format!("{b_url}/api/v2/alerts"),
        json!([{"labels": {"alertname": "Broken", "instance": "i1"}}]),
    )
    .await;
    let mut waiting = None;
    for _ in 0..100 {
        let v = get_json(&c, &format!("{b_url}/api/v1/medic/heal/executions")).await;
        waiting = v["data"].as_array().and_then(|a| {
            a.iter()
                .find(|e| e["status"] == "awaiting_approval")
                .cloned()
        });
        if waiting.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = waiting.expect("an execution awaiting approval, read through B")["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Approved through the standby, it runs on the leader; both see it end.
    post(
        &c,
        format!("{b_url}/api/v1/medic/heal/executions/{id}/approve"),
        json!({"by": "bob", "comment": "go"}),
    )
    .await;
    let mut status = Value::Null;
    for _ in 0..150 {
        let e = get_json(&c, &format!("{a_url}/api/v1/medic/heal/executions/{id}")).await;
        status = e["data"]["status"].clone();
        if status == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "succeeded");
    let via_b = get_json(&c, &format!("{b_url}/api/v1/medic/heal/executions/{id}")).await;
    assert_eq!(via_b["data"]["status"], "succeeded", "{via_b}");
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);

    // A silence and an ack written through one replica are read through the other at once.
    let written = Instant::now();
    let sil = post(
        &c,
        format!("{b_url}/api/v2/silences"),
        json!({"matchers": [{"name": "instance", "value": "i1", "isRegex": false}],
               "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
               "createdBy": "bob", "comment": "through the standby"}),
    )
    .await;
    let sid = sil["silenceID"].as_str().expect("silence id").to_string();
    let seen = get_json(&c, &format!("{a_url}/api/v2/silence/{sid}")).await;
    assert_eq!(seen["status"]["state"], "active", "{seen}");
    let groups = get_json(&c, &format!("{a_url}/api/v1/medic/alerts/groups")).await;
    let gid = groups["data"][0]["id"].as_str().unwrap().to_string();
    post(
        &c,
        format!("{a_url}/api/v1/medic/alerts/ack"),
        json!({"group": gid, "author": "alice", "comment": "mine", "duration": "1h"}),
    )
    .await;
    let groups = get_json(&c, &format!("{b_url}/api/v1/medic/alerts/groups")).await;
    assert!(
        groups.to_string().contains("alice"),
        "the ack, read through B: {groups}"
    );
    let alerts = get_json(&c, &format!("{b_url}/api/v2/alerts")).await;
    assert_eq!(alerts[0]["status"]["silencedBy"][0], sid, "{alerts}");
    let took = written.elapsed();
    eprintln!("writes through one replica visible through the other: all within {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // A request a standby already relayed is not relayed again (two replicas advertising one
    // URL would pass it back and forth).
    let r = c
        .get(format!("{b_url}/api/v2/alerts"))
        .header("x-medic-relayed-by", "C")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 508);

    // The leader dies: B takes over, with the same state.
    let _ = a.child.kill();
    let _ = a.child.wait();
    let b_led = b
        .listening
        .recv_timeout(Duration::from_secs(30))
        .expect("B takes over");
    assert_eq!(b_led, b_url);
    let silence = get_json(&c, &format!("{b_url}/api/v2/silence/{sid}")).await;
    assert_eq!(silence["status"]["state"], "active", "{silence}");
    let ready = until_ok(&c, &format!("{b_url}/-/ready"), &b.stderr).await;
    assert!(!ready.contains("standby"), "{ready}");
}
