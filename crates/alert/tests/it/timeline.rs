//! Timelines in the style of Alertmanager's acceptance tests: alerts arrive at given times,
//! the dispatcher and pipeline run on a simulated clock (`medic_alert::sim`), and the test asserts
//! which messages went to which receiver at which time. Deliveries succeed at once here (the
//! receivers themselves are tested against real servers elsewhere).

use std::path::Path;

use medic_alert::ack::Ack;
use medic_alert::config::Config;
use medic_alert::pipeline::{EscalationStep, IntegrationInfo};
use medic_alert::silence::Silence;
use medic_alert::sim::Simulation;
use medic_alert::{Alert, Annotations};
use medic_model::Labels;

const S: i64 = 1000;
const T0: i64 = 1_700_000_000_000;

/// One message as a receiver saw it: when (seconds after T0), to whom, and which alerts
/// (`alertname/instance`, with `!` for resolved), sorted.
type Msg = (i64, String, Vec<String>);

/// The library's [`Simulation`] with the tests' shorthand: alerts by name at seconds after T0,
/// messages as `(seconds, receiver, alerts)`.
struct Sim {
    sim: Simulation,
}

impl std::ops::Deref for Sim {
    type Target = Simulation;
    fn deref(&self) -> &Simulation {
        &self.sim
    }
}

impl std::ops::DerefMut for Sim {
    fn deref_mut(&mut self) -> &mut Simulation {
        &mut self.sim
    }
}

impl Sim {
    fn new(yaml: &str) -> Sim {
        Sim::with_escalations(yaml, Vec::new())
    }

    fn with_escalations(yaml: &str, escalations: Vec<EscalationStep>) -> Sim {
        let c = Config::parse(yaml, Path::new("timeline.yml")).unwrap();
        let infos = c
            .receivers
            .iter()
            .map(|r| {
                let mut v = Vec::new();
                for (i, w) in r.webhook_configs.iter().enumerate() {
                    v.push(IntegrationInfo {
                        name: format!("webhook[{i}]"),
                        send_resolved: w.send_resolved,
                    });
                }
                (r.name.clone(), v)
            })
            .collect();
        Sim {
            sim: Simulation::new(&c, infos, escalations, T0),
        }
    }

    /// An alert as Prometheus sends it at the current time: firing until `ends` seconds from
    /// now (a resend deadline), or resolved at `ends` when `resolved`.
    fn put(&mut self, name: &str, extra: &[(&str, &str)], started: i64, ends_at: i64) {
        let mut pairs = vec![("alertname", name)];
        pairs.extend_from_slice(extra);
        let now = self.sim.now();
        self.sim.put(Alert {
            labels: Labels::from_pairs(pairs),
            annotations: Annotations::new(),
            starts_at: T0 + started * S,
            ends_at: T0 + ends_at * S,
            generator_url: String::new(),
            updated_at: now,
            timeout: false,
            value: None,
            source: Default::default(),
        });
    }

    fn firing(&mut self, name: &str, extra: &[(&str, &str)]) {
        let started = (self.sim.now() - T0) / S;
        self.put(name, extra, started, started + 86_400);
    }

    fn resolve(&mut self, name: &str, extra: &[(&str, &str)], started: i64) {
        let at = (self.sim.now() - T0) / S;
        self.put(name, extra, started, at);
    }

    /// Runs the clock to `secs` after T0.
    fn run_until(&mut self, secs: i64) {
        self.sim.run_until(T0 + secs * S);
    }

    fn take(&mut self) -> Vec<Msg> {
        self.sim
            .take()
            .into_iter()
            .map(|m| {
                let mut names: Vec<String> = m
                    .alerts
                    .iter()
                    .map(|(a, resolved)| {
                        let mut s = format!(
                            "{}/{}",
                            a.labels.get("alertname").unwrap_or(""),
                            a.labels.get("instance").unwrap_or("")
                        );
                        if *resolved {
                            s.push('!');
                        }
                        s
                    })
                    .collect();
                names.sort();
                ((m.at - T0) / S, m.receiver, names)
            })
            .collect()
    }
}

fn msg(t: i64, r: &str, alerts: &[&str]) -> Msg {
    (
        t,
        r.to_string(),
        alerts.iter().map(|s| s.to_string()).collect(),
    )
}

const BASIC: &str = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:1/"}]
"#;

#[test]
fn grouping_waits_then_batches_by_interval() {
    let mut s = Sim::new(BASIC);
    s.firing("Down", &[("instance", "a")]);
    s.run_until(10);
    s.firing("Down", &[("instance", "b")]);
    s.run_until(60);
    // One message at group_wait with both alerts.
    assert_eq!(s.take(), vec![msg(30, "team", &["Down/a", "Down/b"])]);
    s.firing("Down", &[("instance", "c")]);
    s.run_until(400);
    // The newcomer waits for the next group_interval tick (30s + 5m).
    assert_eq!(
        s.take(),
        vec![msg(330, "team", &["Down/a", "Down/b", "Down/c"])]
    );
    // Another group is independent.
    s.firing("Slow", &[("instance", "a")]);
    s.run_until(500);
    assert_eq!(s.take(), vec![msg(430, "team", &["Slow/a"])]);
}

#[test]
fn repeats_after_the_repeat_interval_only() {
    let mut s = Sim::new(BASIC);
    s.firing("Down", &[("instance", "a")]);
    s.run_until(3700);
    // group_wait at 30s; the flushes every 5m after that find nothing new until
    // 30s + 1h has passed, which the tick at 30s + 12×5m = 3630s reaches.
    assert_eq!(
        s.take(),
        vec![msg(30, "team", &["Down/a"]), msg(3630, "team", &["Down/a"])]
    );
}

#[test]
fn resolved_alerts_are_sent_with_send_resolved_and_logged_without() {
    let mut s = Sim::new(BASIC);
    s.firing("Down", &[("instance", "a")]);
    s.firing("Down", &[("instance", "b")]);
    s.run_until(60);
    s.resolve("Down", &[("instance", "a")], 0);
    s.run_until(400);
    assert_eq!(
        s.take(),
        vec![
            msg(30, "team", &["Down/a", "Down/b"]),
            msg(330, "team", &["Down/a!", "Down/b"]),
        ]
    );
    let quiet = BASIC.replace(
        "webhook_configs: [{url: \"http://127.0.0.1:1/\"}]",
        "webhook_configs: [{url: \"http://127.0.0.1:1/\", send_resolved: false}]",
    );
    let mut s = Sim::new(&quiet);
    s.firing("Down", &[("instance", "a")]);
    s.firing("Down", &[("instance", "b")]);
    s.run_until(60);
    s.resolve("Down", &[("instance", "a")], 0);
    s.run_until(400);
    // A subset still firing is not news without send_resolved.
    assert_eq!(s.take(), vec![msg(30, "team", &["Down/a", "Down/b"])]);
    s.resolve("Down", &[("instance", "b")], 0);
    s.run_until(700);
    // All resolved (flush at 630): nothing is sent, but the log is cleared and the empty
    // group deleted, so the alert firing again is news after a fresh group_wait.
    assert_eq!(s.take(), vec![]);
    s.firing("Down", &[("instance", "b")]);
    s.run_until(1000);
    assert_eq!(s.take(), vec![msg(700 + 30, "team", &["Down/b"])]);
}

#[test]
fn inhibition_mutes_warnings_while_the_critical_alert_fires() {
    let yaml = format!(
        "{BASIC}inhibit_rules:\n  - source_matchers: [severity=critical]\n    target_matchers: [severity=warning]\n    equal: [cluster]\n"
    )
    .replace("group_by: [alertname]", "group_by: [cluster]");
    let mut s = Sim::new(&yaml);
    s.firing(
        "Down",
        &[
            ("severity", "critical"),
            ("cluster", "x"),
            ("instance", "a"),
        ],
    );
    s.firing(
        "Slow",
        &[("severity", "warning"), ("cluster", "x"), ("instance", "a")],
    );
    s.firing(
        "Slow",
        &[("severity", "warning"), ("cluster", "y"), ("instance", "b")],
    );
    s.run_until(60);
    let mut got = s.take();
    got.sort();
    assert_eq!(
        got,
        vec![msg(30, "team", &["Down/a"]), msg(30, "team", &["Slow/b"])]
    );
    // The critical alert resolves: the warning is no longer inhibited.
    s.resolve(
        "Down",
        &[
            ("severity", "critical"),
            ("cluster", "x"),
            ("instance", "a"),
        ],
        0,
    );
    s.run_until(400);
    assert_eq!(s.take(), vec![msg(330, "team", &["Down/a!", "Slow/a"])]);
}

#[test]
fn silences_mute_until_they_expire() {
    let mut s = Sim::new(BASIC);
    let m = medic_alert::matchers::parse_matchers("instance=a").unwrap();
    s.silences
        .set(
            Silence {
                id: String::new(),
                matchers: m,
                starts_at: T0,
                ends_at: T0 + 200 * S,
                updated_at: 0,
                created_by: "ops".into(),
                comment: "maintenance".into(),
                expire_on_resolve: false,
            },
            T0,
        )
        .unwrap();
    s.firing("Down", &[("instance", "a")]);
    s.firing("Down", &[("instance", "b")]);
    s.run_until(100);
    assert_eq!(s.take(), vec![msg(30, "team", &["Down/b"])]);
    s.run_until(400);
    // After the silence ends, the next tick reports the newly visible alert.
    assert_eq!(s.take(), vec![msg(330, "team", &["Down/a", "Down/b"])]);
}

#[test]
fn routes_split_alerts_and_continue_sends_to_both() {
    let yaml = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 10s
  routes:
    - matchers: [severity="page"]
      receiver: pager
      group_wait: 1s
      continue: true
    - matchers: [team="db"]
      receiver: db
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:1/"}]
  - name: pager
    webhook_configs: [{url: "http://127.0.0.1:1/"}]
  - name: db
    webhook_configs: [{url: "http://127.0.0.1:1/"}]
"#;
    let mut s = Sim::new(yaml);
    s.firing(
        "A",
        &[("severity", "page"), ("team", "db"), ("instance", "1")],
    );
    s.firing("B", &[("team", "web"), ("instance", "1")]);
    s.run_until(20);
    let mut got = s.take();
    got.sort();
    assert_eq!(
        got,
        vec![
            msg(1, "pager", &["A/1"]),
            msg(10, "db", &["A/1"]),
            msg(10, "team", &["B/1"])
        ]
    );
}

#[test]
fn mute_and_active_time_intervals_hold_the_group() {
    // T0 is 2023-11-14T22:13:20Z, a Tuesday.
    let yaml = r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  routes:
    - matchers: [team="night"]
      receiver: team
      mute_time_intervals: [late]
    - matchers: [team="day"]
      receiver: team
      active_time_intervals: [late]
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1:1/"}]
time_intervals:
  - name: late
    time_intervals:
      - times: [{start_time: "22:00", end_time: "22:15"}]
"#;
    let mut s = Sim::new(yaml);
    s.firing("N", &[("team", "night"), ("instance", "1")]);
    s.firing("D", &[("team", "day"), ("instance", "1")]);
    s.run_until(200);
    // Until 22:15 (100 s after T0) N is muted and D active; after it, the other way round.
    assert_eq!(
        s.take(),
        vec![msg(10, "team", &["D/1"]), msg(130, "team", &["N/1"])]
    );
}

fn escalation(after: i64) -> Vec<EscalationStep> {
    vec![EscalationStep {
        policy: "critical".into(),
        matchers: medic_alert::matchers::parse_matchers("severity=critical").unwrap(),
        after: after * S,
        receiver: "lead".into(),
    }]
}

const ESCALATING: &str = r#"
route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 10m
receivers:
  - name: oncall
    webhook_configs: [{url: "http://127.0.0.1:1/"}]
  - name: lead
    webhook_configs: [{url: "http://127.0.0.1:1/"}]
"#;

#[test]
fn unacknowledged_critical_groups_escalate_after_the_deadline() {
    let mut s = Sim::with_escalations(ESCALATING, escalation(300));
    s.firing("DbDown", &[("severity", "critical"), ("instance", "a")]);
    s.firing("Disk", &[("severity", "warning"), ("instance", "a")]);
    s.run_until(400);
    let mut got = s.take();
    got.sort();
    // The first group_interval tick past 300 s pages the lead, for the critical group only.
    assert_eq!(
        got,
        vec![
            msg(10, "oncall", &["DbDown/a"]),
            msg(10, "oncall", &["Disk/a"]),
            msg(310, "lead", &["DbDown/a"]),
        ]
    );
    // Resolution reaches the lead too.
    s.resolve("DbDown", &[("severity", "critical"), ("instance", "a")], 0);
    s.run_until(500);
    let mut got = s.take();
    got.sort();
    assert_eq!(
        got,
        vec![
            msg(430, "lead", &["DbDown/a!"]),
            msg(430, "oncall", &["DbDown/a!"])
        ]
    );
}

#[test]
fn an_ack_stops_repeats_and_escalation_until_the_group_changes() {
    let mut s = Sim::with_escalations(ESCALATING, escalation(300));
    s.firing("DbDown", &[("severity", "critical"), ("instance", "a")]);
    s.run_until(60);
    assert_eq!(s.take(), vec![msg(10, "oncall", &["DbDown/a"])]);
    let key = s.groups().next().unwrap().key.clone();
    let fp = medic_alert::Fingerprint::of(&Labels::from_pairs([
        ("alertname", "DbDown"),
        ("instance", "a"),
        ("severity", "critical"),
    ]));
    let now = s.now();
    s.acks.insert(
        key.clone(),
        Ack {
            group_key: key.clone(),
            author: "alice".into(),
            comment: "on it".into(),
            at: now,
            expires_at: now + 3600 * S,
            firing: vec![fp],
        },
    );
    // Past the repeat interval (10 m) and the escalation deadline (5 m): silence.
    s.run_until(1300);
    assert_eq!(s.take(), vec![]);
    // A new alert in the group is news: it goes out, and the escalation resumes.
    s.firing("DbDown", &[("severity", "critical"), ("instance", "b")]);
    s.run_until(1400);
    let mut got = s.take();
    got.sort();
    assert_eq!(
        got,
        vec![
            msg(1330, "lead", &["DbDown/a", "DbDown/b"]),
            msg(1330, "oncall", &["DbDown/a", "DbDown/b"])
        ]
    );
}

#[test]
fn flapping_alerts_are_held_instead_of_sent_at_every_flip() {
    let flapping = [("instance", "a"), ("flapping", "true")];
    let run = |hold: i64| {
        let mut s = Sim::new(BASIC);
        s.flap_hold = hold * S;
        s.firing("Link", &flapping);
        s.run_until(60);
        s.resolve("Link", &flapping, 0);
        s.run_until(400);
        s.firing("Link", &flapping);
        s.run_until(700);
        s.resolve("Link", &flapping, 400);
        s.run_until(2000);
        s.take()
    };
    // Without a hold every flip is a message (the group empties when all is resolved, so the
    // next firing waits a fresh group_wait).
    assert_eq!(
        run(0),
        vec![
            msg(30, "team", &["Link/a"]),
            msg(330, "team", &["Link/a!"]),
            msg(430, "team", &["Link/a"]),
            msg(730, "team", &["Link/a!"]),
        ]
    );
    // With a 10-minute hold: the first firing, then the resolution once it stayed resolved
    // (from 700 s) past the hold, at the next flush.
    assert_eq!(
        run(600),
        vec![
            msg(30, "team", &["Link/a"]),
            msg(1530, "team", &["Link/a!"])
        ]
    );
}
