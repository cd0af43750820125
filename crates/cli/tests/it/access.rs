//! Who may call what, against the real binary: every registered route and method × no
//! credentials and every built-in role → 401, 403 or through; no method a route does not
//! declare is reachable; the audit log names who did it.

use std::time::Duration;

use medic_server::auth::Permission;
use reqwest::Method;
use sha2::Digest;

use crate::support::*;

/// The roles and what each may do, as docs/security.md states them (written out here, not
/// taken from the code under test).
fn may(role: &str, p: Permission) -> bool {
    use Permission::*;
    match p {
        Public => true,
        Read => ["admin", "sre", "developer", "viewer"].contains(&role),
        Ingest => ["admin", "sre", "ingest"].contains(&role),
        Silence | Ack | HealTrigger => ["admin", "sre", "developer"].contains(&role),
        HealDecide | HealPause | Audit => ["admin", "sre"].contains(&role),
        Admin => role == "admin",
    }
}

/// A few routes whose permission is part of the contract.
const SPOT: &[(&str, &str, Permission)] = &[
    ("GET", "/-/ready", Permission::Public),
    ("GET", "/metrics", Permission::Public),
    ("POST", "/api/v1/write", Permission::Ingest),
    ("POST", "/api/v2/alerts", Permission::Ingest),
    ("GET", "/api/v2/alerts", Permission::Read),
    ("POST", "/api/v1/query", Permission::Read),
    ("POST", "/api/v2/silences", Permission::Silence),
    ("DELETE", "/api/v2/silence/{id}", Permission::Silence),
    ("POST", "/api/v1/medic/alerts/ack", Permission::Ack),
    (
        "POST",
        "/api/v1/medic/heal/trigger",
        Permission::HealTrigger,
    ),
    (
        "POST",
        "/api/v1/medic/heal/executions/{id}/approve",
        Permission::HealDecide,
    ),
    ("POST", "/api/v1/medic/heal/pause", Permission::HealPause),
    ("GET", "/api/v1/medic/audit", Permission::Audit),
    ("POST", "/-/reload", Permission::Admin),
    ("POST", "/api/v1/admin/tsdb/flush", Permission::Admin),
    ("POST", "/api/v1/medic/backup/snapshots", Permission::Admin),
    (
        "GET",
        "/api/v1/medic/backup/snapshots/{id}/file",
        Permission::Admin,
    ),
];

const ROLES: [&str; 5] = ["admin", "sre", "developer", "viewer", "ingest"];

fn config() -> String {
    let mut s = String::from("auth:\n  users:\n");
    for r in &ROLES[..4] {
        let hash = bcrypt::hash(format!("{r}-pw"), 4).unwrap();
        let scope = if *r == "developer" {
            ", scope: '{service=\"checkout\"}'"
        } else {
            ""
        };
        s += &format!("    {r}: {{password_hash: '{hash}', role: {r}{scope}}}\n");
    }
    let token: String = sha2::Sha256::digest(b"ingest-token")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    s += &format!("  tokens:\n    ingest: {{sha256: '{token}', role: ingest}}\n");
    s
}

fn request(
    c: &reqwest::Client,
    base: &str,
    m: &Method,
    path: &str,
    role: Option<&str>,
) -> reqwest::RequestBuilder {
    let url = format!(
        "{base}{}",
        path.replace("{id}", "x").replace("{name}", "job")
    );
    let mut r = c.request(m.clone(), url);
    if *m != Method::GET {
        r = r.header("content-type", "application/json").body("{}");
    }
    match role {
        None => r,
        Some("ingest") => r.bearer_auth("ingest-token"),
        Some(role) => r.basic_auth(role, Some(format!("{role}-pw"))),
    }
}

#[tokio::test]
async fn every_route_and_role_gets_what_it_may() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(&cfg, config()).unwrap();
    let m = Medic::start(&dir.path().join("data"), Some(&cfg), &[]);
    let c = client();
    let base = format!("http://{}", m.addr);
    let routes = medic_server::http::declared_routes();
    assert!(routes.len() > 50, "{} routes", routes.len());
    for (method, path, p) in SPOT {
        let m: Method = method.parse().unwrap();
        let got = routes.iter().find(|(rp, rm, _)| rp == path && *rm == m);
        assert_eq!(got.map(|r| r.2), Some(*p), "{method} {path}");
    }
    let mut failures = Vec::new();
    for (path, method, p) in &routes {
        for role in std::iter::once(None).chain(ROLES.iter().map(|r| Some(*r))) {
            let status = request(&c, &base, method, path, role)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            let ok = match role {
                None if *p == Permission::Public => ![401, 403].contains(&status),
                None => status == 401,
                Some(r) if may(r, *p) => ![401, 403, 405].contains(&status),
                Some(_) => status == 403,
            };
            if !ok {
                failures.push(format!(
                    "{method} {path} as {role:?} ({}): {status}",
                    p.as_str()
                ));
            }
        }
        // Methods the route does not declare are never reachable.
        for other in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            if routes.iter().any(|(rp, rm, _)| rp == path && *rm == other) {
                continue;
            }
            let status = request(&c, &base, &other, path, Some("admin"))
                .send()
                .await
                .unwrap()
                .status();
            if status != 405 {
                failures.push(format!("undeclared {other} {path}: {status}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Wrong credentials are no credentials; the challenge says how to authenticate.
    let r = c
        .get(format!("{base}/api/v1/alerts"))
        .basic_auth("viewer", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"medic\"");
    // The audit log names who did what.
    let r = request(&c, &base, &Method::POST, "/api/v2/silences", Some("sre"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "an empty silence is refused by the handler, not by access control"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit: serde_json::Value = request(
        &c,
        &base,
        &Method::GET,
        "/api/v1/medic/audit?action=POST%20/api/v2/silences&limit=1000",
        Some("admin"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let rows = audit["data"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["actor"] == "sre" && r["result"] == "400"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r["actor"] == "viewer" && r["result"] == "403"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r["actor"] == "unauthenticated" && r["result"] == "401"),
        "{rows:?}"
    );
    // The CLI authenticates with --user or --token (or MEDIC_USER / MEDIC_TOKEN).
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(args)
            .env_remove("MEDIC_USER")
            .env_remove("MEDIC_TOKEN")
            .output()
            .unwrap()
    };
    let out = cli(&["audit", "--url", &base]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("401"), "{err}");
    let out = cli(&["audit", "--url", &base, "--user", "sre:sre-pw"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["audit", "--url", &base, "--token", "ingest-token"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("403"), "{err}");
}
