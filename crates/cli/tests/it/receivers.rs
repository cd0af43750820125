//! The receivers beyond webhook, Slack, PagerDuty and e-mail, each delivering to a local HTTP
//! server (`testdata/receivers/recorder.py`) that records the request, checked against what the
//! service's API documents: method, path, authentication and body. Amazon SNS, which medic does
//! not deliver to, fails `medic check config`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

const RECORDER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/receivers/recorder.py"
);

fn config(base: &str) -> String {
    format!(
        r#"
global:
  opsgenie_api_key: genie-key
  telegram_api_url: {base}
route:
  receiver: all
  group_by: [alertname]
  group_wait: 200ms
  group_interval: 1s
receivers:
  - name: all
    discord_configs: [{{webhook_url: "{base}/discord/hook"}}]
    msteams_configs: [{{webhook_url: "{base}/teams/hook"}}]
    telegram_configs: [{{bot_token: "bot-token-1", chat_id: -1001234}}]
    webex_configs:
      - {{api_url: "{base}/v1/messages", room_id: room-1, http_config: {{authorization: {{credentials: webex-token}}}}}}
    opsgenie_configs: [{{api_url: "{base}/", priority: P2, tags: "db,prod"}}]
    victorops_configs:
      - {{api_url: "{base}/victorops/", api_key: vo-key, routing_key: team-db}}
    pushover_configs:
      - {{api_url: "{base}/1/messages.json", user_key: po-user, token: po-token}}
    wechat_configs:
      - {{api_url: "{base}/cgi-bin/", api_secret: wx-secret, corp_id: wx-corp, agent_id: "1000002", to_user: ops}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receiver_sends_what_its_service_documents() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = dir.path().join("requests.jsonl");
    let mut rec = std::process::Command::new("python3")
        .arg(RECORDER)
        .arg(port.to_string())
        .arg(&out)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let medic = medic_with_alerting(dir.path(), &config(&base), "");
    let c = client();
    let alert = json!([{
        "labels": {"alertname": "DiskFull", "instance": "db1", "severity": "critical"},
        "annotations": {"summary": "disk full on db1"},
    }]);
    let r = c
        .post(medic.url("/api/v2/alerts"))
        .json(&alert)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let reqs: Vec<Value> = eventually(
        "nine requests (WeChat asks for a token first)",
        &medic,
        || {
            let out = out.clone();
            async move {
                let text = std::fs::read_to_string(&out).ok()?;
                let v: Vec<Value> = text
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                (v.len() >= 9).then_some(v)
            }
        },
    )
    .await;
    let _ = rec.kill();
    let _ = rec.wait();
    let find = |path: &str| {
        reqs.iter()
            .find(|r| r["path"].as_str().unwrap().starts_with(path))
            .unwrap_or_else(|| panic!("no request to {path}: {reqs:#?}"))
            .clone()
    };
    let body = |r: &Value| -> Value { serde_json::from_str(r["body"].as_str().unwrap()).unwrap() };

    // Discord: an embed, red while firing.
    let d = find("/discord/hook");
    assert_eq!(d["method"], "POST");
    let b = body(&d);
    assert!(
        b["embeds"][0]["title"].as_str().unwrap().contains("FIRING"),
        "{b}"
    );
    assert!(b["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .contains("disk full on db1"));
    assert_eq!(b["embeds"][0]["color"], 0x992D22);
    // Teams: an Office 365 connector MessageCard.
    let b = body(&find("/teams/hook"));
    assert_eq!(b["type"], "MessageCard");
    assert_eq!(b["@context"], "http://schema.org/extensions");
    assert_eq!(b["themeColor"], "8C1A1A");
    assert!(b["text"].as_str().unwrap().contains("disk full on db1"));
    // Telegram: Bot API sendMessage, token in the path.
    let b = body(&find("/botbot-token-1/sendMessage"));
    assert_eq!(b["chat_id"], -1001234);
    assert_eq!(b["parse_mode"], "HTML");
    assert!(b["text"].as_str().unwrap().contains("disk full on db1"));
    // Webex: messages API with the bot's token.
    let w = find("/v1/messages");
    assert_eq!(w["headers"]["authorization"], "Bearer webex-token");
    let b = body(&w);
    assert_eq!(b["roomId"], "room-1");
    assert!(b["markdown"].as_str().unwrap().contains("disk full on db1"));
    // Opsgenie: Alert API v2, GenieKey auth, alias from the group key.
    let o = find("/v2/alerts");
    assert_eq!(o["headers"]["authorization"], "GenieKey genie-key");
    let b = body(&o);
    assert_eq!(b["alias"].as_str().unwrap().len(), 64);
    assert!(b["message"].as_str().unwrap().chars().count() <= 130);
    assert_eq!(b["priority"], "P2");
    assert_eq!(b["tags"], json!(["db", "prod"]));
    // VictorOps: REST endpoint …/<api key>/<routing key>.
    let b = body(&find("/victorops/vo-key/team-db"));
    assert_eq!(b["message_type"], "CRITICAL");
    assert_eq!(b["monitoring_tool"], "medic");
    assert_eq!(b["entity_id"].as_str().unwrap().len(), 64);
    // Pushover: a form with token and user.
    let p = find("/1/messages.json");
    assert!(p["headers"]["content-type"]
        .as_str()
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(p["body"].as_str().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(form["token"], "po-token");
    assert_eq!(form["user"], "po-user");
    assert_eq!(form["priority"], "2");
    // WeChat: gettoken with the corp id and secret, then message/send with the token.
    let t = find("/cgi-bin/gettoken");
    assert_eq!(t["method"], "GET");
    assert_eq!(t["query"]["corpid"], json!(["wx-corp"]));
    assert_eq!(t["query"]["corpsecret"], json!(["wx-secret"]));
    let m = find("/cgi-bin/message/send");
    assert_eq!(m["query"]["access_token"], json!(["wechat-token"]));
    let b = body(&m);
    assert_eq!(b["agentid"], "1000002");
    assert_eq!(b["touser"], "ops");
    assert!(b["text"]["content"]
        .as_str()
        .unwrap()
        .contains("disk full on db1"));
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[test]
fn check_config_fails_for_receivers_medic_does_not_deliver_to() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("am.yml"),
        "route: {receiver: aws}\nreceivers:\n  - name: aws\n    sns_configs: [{topic_arn: 'arn:aws:sns:eu-west-1:123:alerts'}]\n",
    )
    .unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(&cfg, "alerting:\n  config_file: am.yml\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["check", "config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("sns_configs are not delivered by medic"),
        "{err}"
    );
}
