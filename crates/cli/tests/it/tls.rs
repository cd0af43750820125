//! `--web.config.file` with real clients: a real Prometheus remote-writing and sending alerts
//! over TLS with a client certificate and basic auth, amtool with `--http.config.file`,
//! promtool over TLS, and clients without the right certificate refused. Certificates are made
//! in the test with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{require_binary, Medic, Prometheus};

/// A CA, a server certificate for 127.0.0.1 and localhost, a client certificate the CA signed
/// (SAN `prometheus`), and a client certificate from another CA.
pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn make(dir: &Path) -> Certs {
        medic_testkit::make_certs(dir);
        Certs {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A client trusting the test CA, presenting `identity` (`client`, `stranger`) if given.
    pub fn client(&self, identity: Option<&str>) -> reqwest::Client {
        let ca = std::fs::read(self.dir.join("ca.crt")).unwrap();
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .use_rustls_tls()
            .timeout(Duration::from_secs(20))
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
        if let Some(who) = identity {
            let mut pem = std::fs::read(self.dir.join(format!("{who}.crt"))).unwrap();
            pem.extend(std::fs::read(self.dir.join(format!("{who}.key"))).unwrap());
            b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        b.build().unwrap()
    }
}

fn web_config(certs: &Certs, client_auth: &str, users: &[(&str, &str)]) -> String {
    let mut s = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {client_auth}\n  client_ca_file: {}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n",
        certs.path("ca.crt")
    );
    for (user, pass) in users {
        s.push_str(&format!("  {user}: '{}'\n", bcrypt::hash(pass, 4).unwrap()));
    }
    s
}

async fn wait_for(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_amtool_and_promtool_reach_medic_over_tls_with_certificates() {
    require_binary("/usr/bin/amtool", "prometheus-alertmanager");
    require_binary("/usr/bin/promtool", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::make(dir.path());
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        web_config(
            &certs,
            "RequireAndVerifyClientCert",
            &[("prom", "prom-pw"), ("ops", "ops-pw")],
        ),
    )
    .unwrap();
    // The web config holds the passwords; medic.yml gives `prom` a narrower role than admin.
    let cfg = dir.path().join("medic.yml");
    std::fs::write(&cfg, "auth:\n  users:\n    prom: {role: ingest}\n").unwrap();
    let web_arg = web.display().to_string();
    let medic = Medic::start(
        &dir.path().join("data"),
        Some(&cfg),
        &["--web.config.file", &web_arg],
    );
    assert_eq!(medic.scheme, "https");
    let ready = medic.url("/-/ready");

    // No certificate, or one from another CA: the handshake fails.
    assert!(certs.client(None).get(&ready).send().await.is_err());
    assert!(certs
        .client(Some("stranger"))
        .get(&ready)
        .send()
        .await
        .is_err());
    let c = certs.client(Some("client"));
    let r = c.get(&ready).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "deny");
    // The certificate alone is not an identity: reading needs a user.
    let q = medic.url("/api/v1/query?query=up");
    assert_eq!(c.get(&q).send().await.unwrap().status(), 401);
    let r = c
        .get(&q)
        .basic_auth("ops", Some("ops-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(&q)
        .basic_auth("prom", Some("prom-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "prom is ingest-only");

    // A real Prometheus remote-writes and sends alerts with its own http_config.
    std::fs::write(
        dir.path().join("prom-rules.yml"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: OverTls\n    expr: vector(1)\n",
    )
    .unwrap();
    let http_config = format!(
        "basic_auth: {{username: prom, password: prom-pw}}\n    tls_config: {{ca_file: {}, cert_file: {}, key_file: {}}}",
        certs.path("ca.crt"),
        certs.path("client.crt"),
        certs.path("client.key")
    );
    let (addr, rules) = (medic.addr.clone(), dir.path().join("prom-rules.yml"));
    let _prom = Prometheus::start(
        dir.path(),
        |port| {
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: ['{}']\nscrape_configs:\n  - job_name: prom\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\nremote_write:\n  - url: https://{addr}/api/v1/write\n    {http_config}\nalerting:\n  alertmanagers:\n  - scheme: https\n    {http_config}\n    static_configs: [{{targets: ['{addr}']}}]\n",
                rules.display()
            )
        },
        &["--rules.alert.resend-delay=1s"],
    );
    wait_for(
        "remote-written samples",
        Duration::from_secs(60),
        async || {
            let r = c
                .get(medic.url("/api/v1/query?query=up{job=\"prom\"}"))
                .basic_auth("ops", Some("ops-pw"))
                .send()
                .await;
            let Ok(r) = r else { return false };
            let v: Value = r.json().await.unwrap_or_default();
            v["data"]["result"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        },
    )
    .await;
    wait_for("Prometheus's alert", Duration::from_secs(60), async || {
        let r = c
            .get(medic.url("/api/v2/alerts"))
            .basic_auth("ops", Some("ops-pw"))
            .send()
            .await;
        let Ok(r) = r else { return false };
        let v: Value = r.json().await.unwrap_or_default();
        v.as_array()
            .is_some_and(|a| a.iter().any(|x| x["labels"]["alertname"] == "OverTls"))
    })
    .await;

    // amtool with --http.config.file: certificate and basic auth.
    let amtool_cfg = dir.path().join("amtool-http.yml");
    std::fs::write(
        &amtool_cfg,
        format!(
            "basic_auth: {{username: ops, password: ops-pw}}\ntls_config: {{ca_file: {}, cert_file: {}, key_file: {}}}\n",
            certs.path("ca.crt"),
            certs.path("client.crt"),
            certs.path("client.key")
        ),
    )
    .unwrap();
    let amtool = |args: &[&str]| {
        let out = Command::new("/usr/bin/amtool")
            .arg(format!("--alertmanager.url={}", medic.url("")))
            .arg(format!("--http.config.file={}", amtool_cfg.display()))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = amtool(&["alert", "query", "alertname=OverTls"]);
    assert!(ok && out.contains("OverTls"), "{out}");
    let (ok, out) = amtool(&[
        "silence",
        "add",
        "alertname=OverTls",
        "-c",
        "over tls",
        "-a",
        "ops",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = amtool(&["silence", "query"]);
    assert!(ok && out.contains("over tls"), "{out}");

    // The web config is re-read when it changes: client certificates become optional, and
    // promtool (2.42 has no --http.config.file: it trusts the CA through SSL_CERT_FILE and
    // sends the user from the URL) can query.
    std::fs::write(
        &web,
        web_config(&certs, "VerifyClientCertIfGiven", &[("ops", "ops-pw")]),
    )
    .unwrap();
    let plain = certs.client(None);
    wait_for(
        "the web config to be re-read",
        Duration::from_secs(10),
        async || plain.get(&ready).send().await.is_ok(),
    )
    .await;
    let out = Command::new("/usr/bin/promtool")
        .args([
            "query",
            "instant",
            &format!("https://ops:ops-pw@{}", medic.addr),
            "up{job=\"prom\"}",
        ])
        .env("SSL_CERT_FILE", certs.path("ca.crt"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("up{"), "{text}");
    // prom is gone from basic_auth_users now.
    let r = plain
        .get(&q)
        .basic_auth("prom", Some("prom-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let metrics = plain
        .get(medic.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("medic_web_config_last_reload_successful 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_web_config_stops_the_start_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["run", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .arg("--web.config.file")
        .arg(&web)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("web.yml")
            && err.contains("tls_server_config.cert_file")
            && err.contains("missing.crt"),
        "{err}"
    );
}
