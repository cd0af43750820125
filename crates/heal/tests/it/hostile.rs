//! Hostile label values through every place a playbook template reaches: command arguments,
//! PromQL in collectors and verification. Each once changed what medic did.

use medic_heal::{Options, Status};

use crate::support::*;

/// The demo's unmodified `clean-log-dir.yml`, fed `log_dir="-delete"`, once ran
/// `find -delete …` in medic's working directory. Its parameter pattern now refuses the value
/// before anything runs, and the refusal is recorded as a veto.
#[tokio::test]
async fn the_demo_log_cleaner_refuses_a_label_that_is_an_option() {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/demo/playbooks/clean-log-dir.yml"
    ))
    .unwrap();
    let rig = Rig::new(&[&yaml], Options::default());
    let e = rig
        .trigger(
            "clean-log-dir",
            &[
                ("alertname", "LogDirFilling"),
                ("job", "web"),
                ("log_dir", "-delete"),
            ],
        )
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Vetoed, "{e:#?}");
    let veto = e.veto.as_ref().unwrap();
    assert_eq!(veto.guard, "params");
    assert!(
        veto.reason.contains("\"-delete\" does not match"),
        "{}",
        veto.reason
    );
    assert!(
        e.steps.iter().all(|s| s.kind == "guard"),
        "nothing ran: {:#?}",
        e.steps
    );
    // `..` cannot climb out either.
    let e = rig
        .trigger(
            "clean-log-dir",
            &[
                ("alertname", "LogDirFilling"),
                ("job", "web"),
                ("log_dir", "/var/log/../../etc"),
            ],
        )
        .await;
    assert_eq!(rig.settle(&e.id).await.status, Status::Vetoed);
}

fn find_playbook(dashdash: bool) -> String {
    let sep = if dashdash { "'--', " } else { "" };
    format!(
        r#"
name: lister
trigger:
  alert: '{{alertname="Full"}}'
target: 'x'
actions:
  list:
    exec:
      command: [python3, -c, 'import sys; open(sys.argv[1], "a").write(" ".join(sys.argv[2:]) + "\n")', '$DIR/ran', {sep}'{{{{ $labels.dir }}}}']
diagnose:
  - cause: any
    when: 'true'
    actions: [list]
verify:
  exec:
    command: ['true']
  within: 1s
"#
    )
}

/// Without a pattern, a templated argument that would start with `-` is still refused by
/// construction — unless it follows a literal `--`, where nothing is an option.
#[tokio::test]
async fn a_templated_argument_never_becomes_an_option() {
    let rig = Rig::new(&[&find_playbook(false)], Options::default());
    let e = rig
        .trigger("lister", &[("alertname", "Full"), ("dir", "--delete")])
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Failed, "{e:#?}");
    let act = e.steps.iter().find(|s| s.kind == "action").unwrap();
    assert!(
        act.message.contains("would read it as an option"),
        "{act:#?}"
    );
    assert!(
        !std::path::Path::new(&rig.path("ran")).exists(),
        "nothing ran"
    );

    let rig = Rig::new(&[&find_playbook(true)], Options::default());
    let e = rig
        .trigger("lister", &[("alertname", "Full"), ("dir", "--delete")])
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    assert_eq!(
        std::fs::read_to_string(rig.path("ran")).unwrap(),
        "-- --delete\n"
    );
}

fn query_playbook() -> &'static str {
    r#"
name: checker
trigger:
  alert: '{alertname="Down"}'
target: '{{ $labels.instance }}'
collect:
  - name: restarts
    query: 'app_restarts{instance="{{ $labels.instance }}"}'
  - name: by_regex
    query: 'count(app_restarts{instance=~"{{ $labels.instance }}"})'
diagnose:
  - cause: any
    when: 'true'
    actions: [noop]
actions:
  noop:
    exec:
      command: ['true']
verify:
  query: 'count(up{instance="{{ $labels.instance }}"}) == 1'
  within: 300ms
  interval: 50ms
"#
}

/// `count(up{instance="{{ $labels.instance }}"}) == 1` with the value
/// `nope"} or vector(42) or up{instance="x` once became a verification that always held, so a
/// repair was reported verified when it was not. Values now stay inside their string, and
/// ordinary values with quotes and backslashes no longer break collection.
#[tokio::test]
async fn label_values_stay_values_inside_promql() {
    let rig = Rig::new(&[query_playbook()], Options::default());
    rig.prom.set(r#"app_restarts{instance="other"}"#, 1.0);
    let hostile = r#"nope"} or vector(42) or up{instance="x"#;
    let e = rig
        .trigger("checker", &[("alertname", "Down"), ("instance", hostile)])
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Failed, "not verified: {e:#?}");
    let collect: Vec<_> = e.steps.iter().filter(|s| s.kind == "collect").collect();
    assert!(
        collect
            .iter()
            .all(|s| s.state == medic_heal::journal::StepState::Succeeded),
        "{collect:#?}"
    );

    // A regex matcher matches the value literally: `.*` is not every instance.
    let e = rig
        .trigger("checker", &[("alertname", "Down"), ("instance", ".*")])
        .await;
    let e = rig.settle(&e.id).await;
    let ev = &e.evidence["by_regex"];
    assert!(
        ev["value"].is_null(),
        "`.*` matched nothing literally: {ev}"
    );

    // Windows paths and quotes are ordinary values.
    rig.prom
        .set(r#"app_restarts{instance="C:\\data\\new \"x\""}"#, 7.0);
    rig.prom.set(r#"up{instance="C:\\data\\new \"x\""}"#, 1.0);
    let e = rig
        .trigger(
            "checker",
            &[("alertname", "Down"), ("instance", r#"C:\data\new "x""#)],
        )
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
    assert_eq!(e.evidence["restarts"]["value"], 7.0, "{:#?}", e.evidence);
}

/// Credentials given to actions (`env`, headers) are never shown: not in the journal the
/// executions API serves, not in a dry run.
#[tokio::test]
async fn secrets_of_actions_are_masked_in_the_record() {
    let yaml = r#"
name: secretive
trigger:
  alert: '{alertname="Db"}'
target: 'db'
actions:
  query_db:
    exec:
      command: ['true']
      env: {PGPASSWORD: hunter2-pg-secret}
  call_api:
    http:
      url: 'http://127.0.0.1:9/restart'
      headers: {Authorization: 'Bearer tok-api-secret', Content-Type: application/json}
      body: '{"x": 1}'
diagnose:
  - cause: any
    when: 'true'
    actions: [call_api, query_db]
verify:
  exec:
    command: ['false']
  within: 100ms
  interval: 50ms
"#;
    let rig = Rig::new(&[yaml], Options::default());
    let e = rig.trigger("secretive", &[("alertname", "Db")]).await;
    let e = rig.settle(&e.id).await;
    let text = serde_json::to_string(&e).unwrap();
    assert!(
        text.contains("PGPASSWORD") && text.contains("Authorization"),
        "{text}"
    );
    assert!(!text.contains("hunter2-pg-secret"), "{text}");
    assert!(!text.contains("tok-api-secret"), "{text}");
    assert!(
        text.contains("application/json"),
        "harmless headers stay: {text}"
    );
}

fn api_playbook(hosts: &str) -> String {
    format!(
        r#"
name: api
trigger:
  alert: '{{alertname="Down"}}'
target: '{{{{ $labels.instance }}}}'
actions:
  restart:
    http:
      method: POST
      url: 'http://{{{{ $labels.instance }}}}/restart'
      headers: {{Authorization: 'Bearer tok-api-secret'}}
{hosts}
diagnose:
  - cause: any
    when: 'true'
    actions: [restart]
verify:
  exec:
    command: ['true']
  within: 1s
"#
    )
}

/// Whether anything connects to `listener` within `wait`; answers 200 to what does.
async fn contacted(listener: &tokio::net::TcpListener, wait: std::time::Duration) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    match tokio::time::timeout(wait, listener.accept()).await {
        Ok(Ok((mut s, _))) => {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            true
        }
        _ => false,
    }
}

/// `url: http://{{ $labels.instance }}/restart` with an `Authorization` header once sent the
/// token to whatever host a crafted label named. A templated host now gets no credentials unless
/// the playbook lists it.
#[tokio::test]
async fn credentials_go_only_to_hosts_the_playbook_allows() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let rig = Rig::new(&[&api_playbook("")], Options::default());
    let e = rig
        .trigger("api", &[("alertname", "Down"), ("instance", &addr)])
        .await;
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Failed, "{e:#?}");
    let act = e.steps.iter().find(|s| s.kind == "action").unwrap();
    assert!(
        act.message.contains("not among the playbook's `hosts`"),
        "{act:#?}"
    );
    assert!(
        !contacted(&listener, std::time::Duration::from_millis(300)).await,
        "nothing was sent to the attacker's host"
    );

    // Listed, the host gets the request.
    let hosts = format!("      hosts: ['{}']", regex::escape(&addr));
    let rig = Rig::new(&[&api_playbook(&hosts)], Options::default());
    let e = rig
        .trigger("api", &[("alertname", "Down"), ("instance", &addr)])
        .await;
    assert!(contacted(&listener, std::time::Duration::from_secs(5)).await);
    let e = rig.settle(&e.id).await;
    assert_eq!(e.status, Status::Succeeded, "{e:#?}");
}

/// `env` and header values may come from a file (relative to the playbook) or medic's
/// environment: they reach the command as they are (never expanded as templates) and are
/// masked like any other; a missing file or variable is an error naming the field, not a value.
#[tokio::test]
async fn secrets_come_from_files_and_the_environment() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("pg");
    std::fs::write(&file, "file-{{ $labels.x }}-secret\n").unwrap();
    std::env::set_var("MEDIC_TEST_API_SECRET", "env-api-secret");
    let yaml = format!(
        r#"
name: fromfile
trigger:
  alert: '{{alertname="Db"}}'
target: 'db'
actions:
  show:
    exec:
      command: ['sh', '-c', 'printf "%s %s" "$PGPASSWORD" "$TOKEN" > $DIR/out']
      env:
        PGPASSWORD: {{file: '{}'}}
        TOKEN: {{env: MEDIC_TEST_API_SECRET}}
verify:
  exec:
    command: ['true']
  within: 1s
  interval: 50ms
"#,
        file.display()
    );
    let rig = Rig::new(&[&yaml], Options::default());
    let e = rig
        .trigger("fromfile", &[("alertname", "Db"), ("x", "y")])
        .await;
    let e = rig.settle(&e.id).await;
    let out = std::fs::read_to_string(rig.path("out")).unwrap();
    assert_eq!(out, "file-{{ $labels.x }}-secret env-api-secret");
    let text = serde_json::to_string(&e).unwrap();
    assert!(
        !text.contains("file-{{") && !text.contains("env-api-secret"),
        "{text}"
    );

    // Relative to the playbook; errors say which field and which file or variable.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tok"), "rel-secret").unwrap();
    let relative = yaml.replace(&file.display().to_string(), "tok");
    let pb = playbook(dir.path(), &relative);
    assert_eq!(pb.name, "fromfile");
    for (from, to, want) in [
        (
            file.display().to_string(),
            "missing".to_string(),
            "env.PGPASSWORD.file: cannot read",
        ),
        (
            "env: MEDIC_TEST_API_SECRET".to_string(),
            "env: MEDIC_TEST_UNSET_VARIABLE".to_string(),
            "the environment variable MEDIC_TEST_UNSET_VARIABLE is not set",
        ),
        (
            "env: MEDIC_TEST_API_SECRET".to_string(),
            "env: A, file: b".to_string(),
            "exactly one of `file`",
        ),
    ] {
        let path = dir.path().join("bad.yml");
        std::fs::write(&path, yaml.replace(&from, &to)).unwrap();
        let e = medic_heal::playbook::Playbook::load(&path)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
    }
}
