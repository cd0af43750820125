//! The execution state machine on simulated time, driven by the text cases in
//! `crates/heal/testdata/machine/` (the raft-rs `datadriven` shape). Each case is a series of
//! blocks:
//!
//! ```text
//! command arg k=v "quoted value"
//! optional input lines (a playbook's YAML, a collector's JSON value)
//! ----
//! expected output
//! ```
//!
//! Blocks end at a blank line. Commands that take a time accept `@<duration>` (the simulated
//! clock only moves forward); commands on an execution take `#<n>` (default: the latest).
//! No process runs and nothing sleeps. `MEDIC_REWRITE=1` rewrites the expected output from
//! what the machine does, for review in the diff.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use medic_heal::evidence::{action_plan, plan_text};
use medic_heal::guard::{GuardConfig, Guards, MaintenanceWindow};
use medic_heal::journal::{Decision, Execution, Outcome, Pause, Step, TriggerInfo, TrustChange};
use medic_heal::kinds::TriggerKind;
use medic_heal::machine::admit::{self, blast_limit, group_size, Admission, GroupSize};
use medic_heal::machine::{self, scope_of, Count, Effect, Event, World};
use medic_heal::playbook::{Dur, Playbook, RateLimit};
use medic_heal::trust::{Trust, TrustConfig};
use medic_heal::Status;
use medic_model::{MatchType, Matcher};
use serde_json::Value as Json;

fn parse_ms(s: &str) -> i64 {
    medic_model::parse_duration(s)
        .unwrap_or_else(|e| panic!("bad duration {s:?}: {e}"))
        .as_millis() as i64
}

/// Splits on spaces, keeping "quoted strings" (with \" inside) whole.
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars();
    let mut any = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => cur.extend(chars.next()),
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

struct Block {
    line: usize,
    command: String,
    input: Vec<String>,
    expected: Vec<String>,
}

fn parse_blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.trim().is_empty() || l.starts_with('#') {
            i += 1;
            continue;
        }
        let line = i + 1;
        let command = l.to_string();
        i += 1;
        let mut input = Vec::new();
        while i < lines.len() && lines[i] != "----" {
            input.push(lines[i].to_string());
            i += 1;
        }
        assert!(i < lines.len(), "line {line}: no ---- after the command");
        i += 1;
        let mut expected = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() {
            expected.push(lines[i].to_string());
            i += 1;
        }
        blocks.push(Block {
            line,
            command,
            input,
            expected,
        });
    }
    blocks
}

/// The engine around the machine, played by the test.
struct Sim {
    file: PathBuf,
    now: i64,
    playbooks: BTreeMap<String, Arc<Playbook>>,
    last_playbook: String,
    guards: Guards,
    trust: Trust,
    trust_config: TrustConfig,
    approval_timeout: i64,
    cfg: GuardConfig,
    dry_run: bool,
    executions: Vec<Execution>,
    /// Each execution as last journaled (what a restart finds).
    journaled: Vec<Option<Execution>>,
    outcomes: Vec<Outcome>,
    changes: Vec<TrustChange>,
}

impl Sim {
    fn new(file: &Path) -> Sim {
        Sim {
            file: file.to_path_buf(),
            now: 0,
            playbooks: BTreeMap::new(),
            last_playbook: String::new(),
            guards: Guards::new(),
            trust: Trust::default(),
            trust_config: TrustConfig::default(),
            approval_timeout: 30 * 60_000,
            cfg: GuardConfig::default(),
            dry_run: false,
            executions: Vec::new(),
            journaled: Vec::new(),
            outcomes: Vec::new(),
            changes: Vec::new(),
        }
    }

    fn run(&mut self, b: &Block) -> String {
        let mut args = tokens(&b.command);
        let command = args.remove(0);
        let mut target = self.executions.len().max(1) - 1;
        let mut rest = Vec::new();
        for a in args {
            if let Some(t) = a.strip_prefix('@') {
                let t = parse_ms(t);
                assert!(t >= self.now, "line {}: time goes back", b.line);
                self.now = t;
            } else if let Some(n) = a.strip_prefix('#').and_then(|n| n.parse::<usize>().ok()) {
                target = n - 1;
            } else {
                rest.push(a);
            }
        }
        match command.as_str() {
            "playbook" => self.load(&b.input.join("\n")),
            "options" => self.options(&rest),
            "outcomes" => self.seed_outcomes(&rest),
            "alert" | "manual" | "condition" => self.trigger(&command, &rest),
            "storm" => self.storm(&rest),
            "pause" => self.pause(&rest),
            "unpause" => self.unpause(&rest),
            "unload" => match self.playbooks.remove(&rest[0]) {
                Some(_) => format!("unloaded {}", rest[0]),
                None => format!("no playbook {}", rest[0]),
            },
            "restart" => self.restart(),
            "show" => show(&self.executions[target]),
            _ => {
                let event = self.event(&command, &rest, &b.input);
                self.step(target, event)
            }
        }
    }

    fn load(&mut self, yaml: &str) -> String {
        match Playbook::parse(&self.file, yaml) {
            Ok(pb) => {
                let name = pb.name.clone();
                self.last_playbook = name.clone();
                self.playbooks.insert(name.clone(), Arc::new(pb));
                format!("loaded {name}")
            }
            Err(e) => format!("error: {e}"),
        }
    }

    fn options(&mut self, args: &[String]) -> String {
        for a in args {
            let (k, v) = a.split_once('=').unwrap_or((a, ""));
            match k {
                "dry_run" => self.dry_run = true,
                "disabled" => self.cfg.disabled = true,
                "approval_timeout" => self.approval_timeout = parse_ms(v),
                "rate_limit" => {
                    let (max, per) = v.split_once('/').expect("rate_limit=N/dur");
                    self.cfg.rate_limit = Some(RateLimit {
                        max: max.parse().unwrap(),
                        per: Dur(parse_ms(per)),
                    });
                }
                "maintenance" => {
                    // maintenance=name:from:to[:matcher]
                    let p: Vec<&str> = v.splitn(4, ':').collect();
                    self.cfg.maintenance.push(MaintenanceWindow {
                        name: p[0].into(),
                        starts_at: parse_ms(p[1]),
                        ends_at: parse_ms(p[2]),
                        matchers: p
                            .get(3)
                            .map(|m| {
                                let (k, v) = m.split_once('=').expect("matcher k=v");
                                vec![Matcher::new(MatchType::Equal, k, v).unwrap()]
                            })
                            .unwrap_or_default(),
                    });
                }
                other => panic!("unknown option {other}"),
            }
        }
        "ok".into()
    }

    /// `outcomes <playbook> <cause> <action> <ok|fail>...`: verified outcomes in the past,
    /// recorded as the engine records them (moving the trust ladder).
    fn seed_outcomes(&mut self, args: &[String]) -> String {
        let policy = self
            .playbooks
            .get(&args[0])
            .and_then(|p| p.actions.get(&args[2]))
            .map(|a| a.approval)
            .unwrap_or_default();
        let mut moves = Vec::new();
        for r in &args[3..] {
            let o = Outcome {
                playbook: args[0].clone(),
                cause: args[1].clone(),
                action: args[2].clone(),
                success: r == "ok",
                at: self.now,
                execution: "earlier".into(),
            };
            if let Some(c) = self.trust.record(&self.trust_config, &o, policy) {
                moves.push(format!("{} → {}", c.from, c.to));
                self.changes.push(c);
            }
            self.outcomes.push(o);
        }
        let (s, n) = self.trust.stats(&args[0], &args[1], &args[2]);
        let mut out = format!("{s} of {n} succeeded");
        if !moves.is_empty() {
            out += &format!("; {}", moves.join(", "));
        }
        out
    }

    fn world(&mut self) -> World<'_> {
        World {
            guards: &mut self.guards,
            trust: &mut self.trust,
            trust_config: self.trust_config,
            approval_timeout: self.approval_timeout,
            external_url: "",
        }
    }

    /// `alert|manual|condition [pb=] [resolved] [deferred] [group_size=N|error] k=v...`
    fn admit_one(&mut self, kind: &str, args: &[String]) -> Result<(usize, Vec<Effect>), String> {
        let mut pb_name = self.last_playbook.clone();
        let mut labels = BTreeMap::new();
        let mut resolved = false;
        let mut deferred = false;
        let mut size: Option<Result<Option<f64>, String>> = None;
        for a in args {
            match a.split_once('=') {
                Some(("pb", v)) => pb_name = v.into(),
                Some(("group_size", "error")) => size = Some(Err("no data source".into())),
                Some(("group_size", "none")) => size = Some(Ok(None)),
                Some(("group_size", v)) => size = Some(Ok(Some(v.parse().unwrap()))),
                Some((k, v)) => {
                    labels.insert(k.to_string(), v.to_string());
                }
                None if a == "resolved" => resolved = true,
                None if a == "deferred" => deferred = true,
                None => panic!("unknown argument {a}"),
            }
        }
        let Some(pb) = self.playbooks.get(&pb_name).cloned() else {
            return Err(format!("no playbook {pb_name:?}"));
        };
        let trigger = TriggerInfo {
            kind: TriggerKind::parse(kind).expect("a trigger kind"),
            fingerprint: (kind == "alert").then(|| "f".into()),
            labels,
            annotations: BTreeMap::new(),
            starts_at: self.now,
            received_at: self.now,
            by: (kind == "manual").then(|| "alice".into()),
        };
        let id = format!("x{}", self.executions.len() + 1);
        let mut e = admit::new_execution(&pb, trigger, id, self.dry_run, self.now);
        let now = self.now;
        let effects = match admit::expand(&pb, &mut e, now) {
            Err(effects) => effects,
            Ok(scope) => {
                let blast_max = match group_size(&pb, &scope) {
                    GroupSize::Known(max) => Ok(max),
                    GroupSize::Invalid(err) => Err(err),
                    GroupSize::Query { query, percent } => {
                        let answer = size.clone().expect("give group_size=");
                        blast_limit(&query, percent, answer)
                    }
                };
                let facts = Admission {
                    blast_max,
                    resolved,
                    deferred,
                };
                let cfg = self.cfg.clone();
                let mut world = self.world();
                admit::admit(&mut world, &cfg, &pb, &mut e, &facts, now)
            }
        };
        self.executions.push(e);
        self.journaled.push(None);
        Ok((self.executions.len() - 1, effects))
    }

    fn trigger(&mut self, kind: &str, args: &[String]) -> String {
        let (i, effects) = match self.admit_one(kind, args) {
            Ok(r) => r,
            Err(e) => return e,
        };
        let mut out = format!("#{}\n", i + 1);
        out += &self.perform(i, Vec::new(), effects);
        out
    }

    /// `storm n=N k=v...`: N alerts for distinct instances at once; counts what started.
    fn storm(&mut self, args: &[String]) -> String {
        let n: usize = args[0].strip_prefix("n=").unwrap().parse().unwrap();
        let mut started = 0;
        let mut vetoes: BTreeMap<String, usize> = BTreeMap::new();
        for k in 0..n {
            let mut a = args[1..].to_vec();
            a.push(format!("instance=i{k}"));
            let (i, _) = self.admit_one("alert", &a).expect("storm");
            match &self.executions[i].veto {
                Some(v) => *vetoes.entry(v.guard.to_string()).or_default() += 1,
                None => started += 1,
            }
        }
        let v: Vec<String> = vetoes.iter().map(|(g, n)| format!("{g} {n}")).collect();
        format!("started {started}; vetoed {}", v.join(", "))
    }

    fn pause(&mut self, args: &[String]) -> String {
        let until = args
            .iter()
            .find_map(|a| a.strip_prefix("until="))
            .map(parse_ms);
        self.guards.set_pause(Pause {
            scope: args[0].clone(),
            reason: "test".into(),
            by: "alice".into(),
            at: self.now,
            until,
        });
        "ok".into()
    }

    fn unpause(&mut self, args: &[String]) -> String {
        if let Some(name) = args[0].strip_prefix("playbook:") {
            self.guards.reset_failures(name);
        }
        match self.guards.clear_pause(&args[0]) {
            Some(p) => format!("lifted {} (by {})", p.scope, p.by),
            None => format!("{} is not paused", args[0]),
        }
    }

    /// medic stops and starts: the guards and trust are rebuilt, every unfinished execution
    /// is read back from the journal and resumed.
    fn restart(&mut self) -> String {
        self.guards = Guards::new();
        self.trust = Trust::from_history(&self.trust_config, &self.outcomes, &self.changes);
        let mut out = String::new();
        for i in 0..self.executions.len() {
            let Some(e) = self.journaled[i].clone() else {
                continue;
            };
            if e.status.is_final() {
                continue;
            }
            self.executions[i] = e;
            let pb = self.playbooks.get(&self.executions[i].playbook).cloned();
            let before = self.executions[i].steps.clone();
            let now = self.now;
            let mut e = self.executions[i].clone();
            let effects = machine::resume(&mut self.world(), pb.as_deref(), &mut e, now);
            self.executions[i] = e;
            let _ = writeln!(out, "#{} resumed", i + 1);
            out += &self.perform(i, before, effects);
        }
        out
    }

    fn event(&self, command: &str, args: &[String], input: &[String]) -> Event {
        let ok = || args.first().map(String::as_str) == Some("ok");
        let message = || args.get(1..).unwrap_or_default().join(" ");
        match command {
            "advance" => Event::Advance,
            "timer" => Event::Timer,
            "resolved" => Event::Resolved(match args[0].as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            }),
            "collected" => Event::Collected {
                ok: ok(),
                message: message(),
                value: if input.is_empty() {
                    Json::Null
                } else {
                    serde_json::from_str(&input.join("\n")).expect("collected: JSON input")
                },
            },
            "ran" => Event::Ran {
                ok: ok(),
                message: message(),
                detail: Json::Null,
            },
            "checked" => Event::Checked {
                ok: ok(),
                message: message(),
            },
            "decided" => Event::Decided(Decision {
                approved: args[0] == "approve",
                by: args[1].clone(),
                comment: args.get(2..).unwrap_or_default().join(" "),
                at: self.now,
            }),
            other => panic!("unknown command {other}"),
        }
    }

    fn step(&mut self, i: usize, event: Event) -> String {
        let before = self.executions[i].steps.clone();
        let pb = self.playbooks[&self.executions[i].playbook].clone();
        let now = self.now;
        let mut e = self.executions[i].clone();
        let effects = machine::step(&mut self.world(), &pb, &mut e, event, now);
        self.executions[i] = e;
        self.perform(i, before, effects)
    }

    /// Renders the effects; a start is followed by the first advance, as the engine does.
    fn perform(&mut self, i: usize, before: Vec<Step>, effects: Vec<Effect>) -> String {
        let mut out = String::new();
        let mut start = false;
        for effect in &effects {
            if matches!(effect, Effect::Journal) {
                self.journaled[i] = Some(self.executions[i].clone());
            }
            if matches!(effect, Effect::Start) {
                start = true;
            }
            if let Effect::Outcome(o) = effect {
                self.outcomes.push(o.clone());
            }
            if let Effect::TrustChanged(c) = effect {
                self.changes.push(c.clone());
            }
            let _ = writeln!(out, "{}", render(&self.executions[i], effect));
        }
        out += &changed_steps(&before, &self.executions[i].steps);
        let e = &self.executions[i];
        let _ = writeln!(out, "= {} ({})", e.status.as_str(), e.current_step());
        if start {
            out += "> advance\n";
            out += &self.step(i, Event::Advance);
        }
        out
    }
}

fn at(ms: i64) -> String {
    format!("@{}", Dur(ms))
}

fn render(e: &Execution, effect: &Effect) -> String {
    match effect {
        Effect::Journal => "journal".into(),
        Effect::Mark => "mark".into(),
        Effect::AskResolved => "ask resolved".into(),
        Effect::Collect(name) => format!("collect {name}"),
        Effect::Run { name, action } => {
            format!(
                "run {name}: {}",
                plan_text(&action_plan(action, &scope_of(e)))
            )
        }
        Effect::Check => "check".into(),
        Effect::WakeAt(t) => format!("wake {}", at(*t)),
        Effect::AwaitDecision { until } => format!("await decision until {}", at(*until)),
        Effect::Notify(n) => format!(
            "notify {} to {}: {}",
            n.event,
            n.receivers.join(","),
            n.title
        ),
        Effect::Outcome(o) => format!(
            "outcome {} {} (cause {})",
            o.action,
            if o.success { "success" } else { "failure" },
            o.cause
        ),
        Effect::TrustChanged(c) => format!("trust {}: {} → {}", c.action, c.from, c.to),
        Effect::Pause(p) => format!("pause {} by {}: {}", p.scope, p.by, p.reason),
        Effect::Count(c) => match c {
            Count::Veto { guard } => format!("count veto {guard}"),
            Count::Action { action, result } => format!("count action {action} {result}"),
            Count::Verification { success } => format!(
                "count verification {}",
                if *success { "success" } else { "failure" }
            ),
            Count::Reaction { ms } => format!("count reaction {}", Dur(*ms)),
            Count::TrustChange { level } => format!("count trust_change {level}"),
        },
        Effect::Start => "start".into(),
        Effect::RetryAt(t) => format!("retry {}", at(*t)),
        Effect::Finished => "finished".into(),
        Effect::NotStarted => "not started".into(),
    }
}

fn step_line(s: &Step) -> String {
    let mut l = format!("{} {} {}", s.kind, s.name, s.state.as_str());
    if !s.message.is_empty() {
        l += ": ";
        l += &s.message;
    }
    l
}

/// Steps added or changed, as `+ kind name state: message`.
fn changed_steps(before: &[Step], after: &[Step]) -> String {
    let mut out = String::new();
    for (i, s) in after.iter().enumerate() {
        let changed = before
            .get(i)
            .is_none_or(|b| b.state != s.state || b.message != s.message);
        if changed {
            let _ = writeln!(out, "+ {}", step_line(s));
        }
    }
    out
}

fn show(e: &Execution) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {} for {}", e.id, e.playbook, e.target);
    for s in &e.steps {
        let _ = writeln!(out, "  {}", step_line(s));
    }
    if !e.summary.is_empty() {
        let _ = writeln!(out, "summary: {}", e.summary);
    }
    let _ = writeln!(out, "= {} ({})", e.status.as_str(), e.current_step());
    out
}

fn run_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut sim = Sim::new(path);
    let mut rewritten = String::new();
    let mut failures = Vec::new();
    let blocks = parse_blocks(&text);
    assert!(!blocks.is_empty(), "{}: no blocks", path.display());
    let mut last = 0;
    let lines: Vec<&str> = text.lines().collect();
    for b in &blocks {
        let got = sim.run(b);
        let got: Vec<String> = got.lines().map(str::to_string).collect();
        if got != b.expected {
            failures.push(format!(
                "{}:{}: {}\n--- expected\n{}\n--- got\n{}",
                path.display(),
                b.line,
                b.command,
                b.expected.join("\n"),
                got.join("\n")
            ));
        }
        // Everything before the block (comments, blank lines) is kept as it is.
        for l in &lines[last..b.line - 1] {
            rewritten += l;
            rewritten.push('\n');
        }
        rewritten += &b.command;
        rewritten.push('\n');
        for l in &b.input {
            rewritten += l;
            rewritten.push('\n');
        }
        rewritten += "----\n";
        for l in &got {
            rewritten += l;
            rewritten.push('\n');
        }
        last = b.line + b.input.len() + 1 + b.expected.len();
    }
    if std::env::var_os("MEDIC_REWRITE").is_some() {
        std::fs::write(path, rewritten).unwrap();
        return Ok(());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}

#[test]
fn the_execution_state_machine_on_simulated_time() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/machine");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "only {} cases", files.len());
    let started = std::time::Instant::now();
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let t = std::time::Instant::now();
            let r = run_file(f).err();
            println!("{}: {:?}", f.display(), t.elapsed());
            r
        })
        .collect();
    println!("{} cases in {:?}", files.len(), started.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Every status an execution can end in is reached by some case.
    let all = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<String>();
    for s in [
        Status::Succeeded,
        Status::Failed,
        Status::Vetoed,
        Status::Rejected,
        Status::Resolved,
        Status::DryRun,
    ] {
        assert!(
            all.contains(&format!("= {} (", s.as_str())),
            "no case ends {}",
            s.as_str()
        );
    }
}
