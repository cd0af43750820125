//! `medic replay` (docs/replay.md): rules run over stored history at their own interval, with
//! the same groups, evaluator and alert state machine as live; their alerts pass through a
//! simulated alert manager (routing, grouping, inhibition, silences, time intervals; nothing
//! delivered) and the heal engine's admission and state machine in dry run (`medic_heal::replay`).
//! What would have fired, been notified, and which repairs would have been admitted or vetoed,
//! and when.

mod output;
pub mod store;

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use medic_alert::{Alert, Fingerprint};
use medic_model::{Labels, Queryable};
use medic_rules::group::Group;
use medic_rules::AlertState;
use serde::Serialize;

pub use output::{html, table};

use crate::config::Config;

/// What to replay.
pub struct ReplaySpec {
    /// The config (its rule files, playbooks, alerting, heal and query settings).
    pub config: Config,
    /// Its directory: relative paths are taken from it, as by `medic run`.
    pub base: PathBuf,
    /// Start and end (ms, inclusive).
    pub from: i64,
    pub to: i64,
    /// Rule files instead of the config's (`--rules`).
    pub rule_files: Option<Vec<String>>,
    /// Playbook files instead of the config's (`--playbooks`).
    pub playbooks: Option<Vec<String>>,
    /// Silences to apply (as stored by the medic that recorded the history).
    pub silences: Vec<medic_alert::silence::Silence>,
}

/// A change of an alert's state, from the rules.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertEvent {
    pub at: i64,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    pub labels: BTreeMap<String, String>,
    pub group: String,
}

/// A message the alert manager would have sent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MessageEvent {
    pub at: i64,
    pub receiver: String,
    pub integration: String,
    /// `alertname{labels}` and whether each is `firing` or `resolved`.
    pub alerts: Vec<(BTreeMap<String, String>, String)>,
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    pub from: i64,
    pub to: i64,
    /// Group evaluations run.
    pub evaluations: u64,
    pub alerts: Vec<AlertEvent>,
    pub notifications: Vec<MessageEvent>,
    pub repairs: Vec<medic_heal::replay::Decision>,
    /// Series and samples the recording rules produced (what `--backfill` writes).
    pub recorded_series: usize,
    pub recorded_samples: usize,
    /// Rule evaluation errors, first of each rule.
    pub errors: Vec<String>,
    #[serde(skip)]
    pub recorded: Vec<(Labels, Vec<medic_model::Sample>)>,
}

fn labels_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

/// Runs the replay over `history`.
pub fn run(history: Arc<dyn Queryable>, spec: ReplaySpec) -> Result<Replay, String> {
    let ReplaySpec {
        config,
        base,
        from,
        to,
        rule_files,
        playbooks,
        silences,
    } = spec;
    if to < from {
        return Err("--to is before --from".into());
    }
    let store = Arc::new(store::Overlay::new(history));
    let engine = medic_promql::Engine::new(config.query.engine_options());
    let files = medic_rules::manager::expand_globs(
        rule_files.as_ref().unwrap_or(&config.rule_files),
        &base,
    )?;
    let opts = crate::reload::group_options(&config, "http://medic-replay");
    let mut groups =
        medic_rules::manager::load_groups(&files, &[], &opts, None).map_err(|errs| {
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })?;
    for g in &mut groups {
        // A clean start at `from`: nothing restored from the history's ALERTS_FOR_STATE.
        g.mark_restored();
    }
    let record_names: Vec<String> = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .filter_map(|r| match r {
            medic_rules::rule::Rule::Recording(r) => Some(r.name.clone()),
            _ => None,
        })
        .collect();

    let loaded = crate::reload::load_alerting(&config, &base)?;
    let mut sim = loaded.simulation(from);
    sim.silences = medic_alert::silence::Silences::from_saved(silences);
    sim.flap_hold = config.alerting.flap_hold.as_millis();

    let heal_opts = config.heal.options("http://medic-replay")?;
    let patterns = playbooks.unwrap_or_else(|| config.heal.playbooks.clone());
    let pbs = medic_heal::playbook::load_all(&patterns, &base).map_err(|e| e.to_string())?;
    let query = Arc::new(crate::bridge::PromQuery {
        engine: engine.clone(),
        store: store.clone(),
        logs: None,
        // Replay reads the embedded store's history.
        backend: None,
    });
    let mut heal = medic_heal::replay::Replayer::new(pbs, heal_opts, query);

    let mut out = Replay {
        from,
        to,
        evaluations: 0,
        alerts: Vec::new(),
        notifications: Vec::new(),
        repairs: Vec::new(),
        recorded_series: 0,
        recorded_samples: 0,
        errors: Vec::new(),
        recorded: Vec::new(),
    };
    evaluate(&mut groups, &engine, &store, &mut sim, &mut heal, &mut out);
    sim.run_until(to);
    // Retries still due ask whether their alert is still firing; past the end nobody knows.
    heal.run_until(to, &|_| None);
    out.notifications
        .extend(sim.take().into_iter().map(message));
    out.repairs = std::mem::take(&mut heal.decisions);
    out.recorded = recorded(&store, &record_names, from, to);
    out.recorded_series = out.recorded.len();
    out.recorded_samples = out.recorded.iter().map(|(_, s)| s.len()).sum();
    Ok(out)
}

/// Every group at each of its slots in `[from, to]`, in time order, as the live manager
/// schedules them (`Group::next_eval`: the same phase for the same file and group name).
fn evaluate(
    groups: &mut [Group],
    engine: &medic_promql::Engine,
    store: &Arc<store::Overlay>,
    sim: &mut medic_alert::sim::Simulation,
    heal: &mut medic_heal::replay::Replayer,
    out: &mut Replay,
) {
    let (from, to) = (out.from, out.to);
    let mut due: BinaryHeap<std::cmp::Reverse<(i64, usize)>> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| std::cmp::Reverse((g.next_eval(from - 1), i)))
        .collect();
    let storage: Arc<dyn medic_rules::group::Storage> = store.clone();
    let mut states: HashMap<(usize, Labels), AlertState> = HashMap::new();
    // When each alert the alert manager holds ends (0: firing with no end), by fingerprint.
    let mut ends: HashMap<Fingerprint, i64> = HashMap::new();
    let mut seen_errors = std::collections::HashSet::new();
    while let Some(std::cmp::Reverse((t, i))) = due.pop() {
        if t > to {
            break;
        }
        sim.run_until(t);
        out.notifications
            .extend(sim.take().into_iter().map(message));
        let g = &mut groups[i];
        g.eval(engine, &storage, t);
        out.evaluations += 1;
        for (r, h) in g.rules.iter().zip(&g.health) {
            if let Some(e) = &h.last_error {
                if seen_errors.insert((i, r.name().to_string())) {
                    out.errors.push(format!("{}: {}: {e}", g.name, r.name()));
                }
            }
        }
        track_states(i, g, t, &mut states, &mut out.alerts);
        let sent: Vec<Alert> = g
            .alerts_to_send(t)
            .iter()
            .map(|(q, a, anomaly)| {
                crate::bridge::rules::rule_alert(medic_rules::manager::to_notification(
                    q, a, *anomaly, g,
                ))
            })
            .collect();
        let inputs: Vec<medic_heal::AlertInput> =
            sent.iter().map(crate::bridge::alert_input).collect();
        for a in sent {
            ends.insert(a.fingerprint(), a.ends_at);
            sim.put(a);
        }
        let resolved = |l: &BTreeMap<String, String>| resolved_in(&ends, l, t);
        heal.run_until(t, &resolved);
        heal.on_alerts(&inputs, t, &resolved);
        due.push(std::cmp::Reverse((g.next_eval(t), i)));
    }
}

/// Whether the alert with these labels has ended by `now` (`None`: never seen).
fn resolved_in(
    ends: &HashMap<Fingerprint, i64>,
    labels: &BTreeMap<String, String>,
    now: i64,
) -> Option<bool> {
    let l = Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    ends.get(&Fingerprint::of(&l))
        .map(|&end| end != 0 && end <= now)
}

/// Records each alert's moves between pending, firing and resolved after an evaluation.
fn track_states(
    i: usize,
    g: &Group,
    t: i64,
    states: &mut HashMap<(usize, Labels), AlertState>,
    events: &mut Vec<AlertEvent>,
) {
    let mut now: HashMap<(usize, Labels), AlertState> = HashMap::new();
    for (_, a) in g.active_alerts() {
        if a.resolved_at != 0 {
            continue;
        }
        now.insert((i, a.labels.clone()), a.state);
    }
    for (key, state) in &now {
        if states.get(key) != Some(state) {
            let name = match state {
                AlertState::Pending => "pending",
                AlertState::Firing => "firing",
                AlertState::Inactive => continue,
            };
            events.push(AlertEvent {
                at: t,
                state: name.into(),
                labels: labels_map(&key.1),
                group: g.name.clone(),
            });
        }
    }
    let gone: Vec<(usize, Labels)> = states
        .keys()
        .filter(|k| k.0 == i && !now.contains_key(*k))
        .cloned()
        .collect();
    for key in gone {
        if states.remove(&key) == Some(AlertState::Firing) {
            events.push(AlertEvent {
                at: t,
                state: "resolved".into(),
                labels: labels_map(&key.1),
                group: g.name.clone(),
            });
        }
    }
    states.extend(now);
    events.sort_by(|a, b| (a.at, &a.labels).cmp(&(b.at, &b.labels)));
}

fn message(m: medic_alert::sim::SimMessage) -> MessageEvent {
    MessageEvent {
        at: m.at,
        receiver: m.receiver,
        integration: m.integration,
        alerts: m
            .alerts
            .iter()
            .map(|(a, resolved)| {
                let state = if *resolved { "resolved" } else { "firing" };
                (labels_map(&a.labels), state.to_string())
            })
            .collect(),
    }
}

/// The series the recording rules wrote in `[from, to]`.
fn recorded(
    store: &store::Overlay,
    names: &[String],
    from: i64,
    to: i64,
) -> Vec<(Labels, Vec<medic_model::Sample>)> {
    let Ok(q) = store.written.querier(from, to) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in names {
        let m = [medic_model::Matcher::equal("__name__", n.as_str())];
        if let Ok(set) = q.select(&m) {
            out.extend(set.flatten().map(|s| (s.labels, s.samples)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// Writes what the recording rules produced as TSDB blocks into `dir` (one per block range),
/// as `promtool tsdb create-blocks-from rules` does; returns the block directories.
pub fn backfill(replay: &Replay, dir: &Path, block_range_ms: i64) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let mut start = replay.from.div_euclid(block_range_ms) * block_range_ms;
    while start <= replay.to {
        let end = start + block_range_ms;
        let series = replay.recorded.iter().filter_map(|(l, s)| {
            let part: Vec<_> = s
                .iter()
                .filter(|x| x.t >= start && x.t < end)
                .copied()
                .collect();
            (!part.is_empty()).then(|| (l.clone(), part))
        });
        let spec = medic_tsdb::block::BlockSpec {
            min_time: start,
            max_time: end,
            codec: medic_tsdb::BlockCodec::default(),
            chunk_samples: 960,
            level: 1,
            parents: Vec::new(),
            resolution_ms: 0,
        };
        if let Some((path, _)) =
            medic_tsdb::block::write_block(dir, spec, series, &[]).map_err(|e| e.to_string())?
        {
            written.push(path);
        }
        start = end;
    }
    Ok(written)
}
