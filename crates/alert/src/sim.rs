//! A simulated alert manager: the dispatcher, inhibition, silences, time intervals and the
//! notification log driven on a clock the caller moves, delivering nothing. What `medic replay`
//! passes alerts through, and what the timeline tests drive: the same [`pipeline::plan_flush`]
//! the live manager calls.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ack::Ack;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::inhibit::Inhibitor;
use crate::nflog::Nflog;
use crate::pipeline::{self, EscalationStep, IntegrationInfo, Stages};
use crate::route::Route;
use crate::silence::Silences;
use crate::timeinterval::TimeInterval;
use crate::Alert;

/// A message the simulation would have sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SimMessage {
    /// When (ms).
    pub at: i64,
    /// To which receiver.
    pub receiver: String,
    /// The integration (`webhook[0]`, `email[0]`, …).
    pub integration: String,
    /// The escalation policy it comes from, if any.
    pub escalation: Option<String>,
    /// Its alerts, and whether each was resolved at that time.
    pub alerts: Vec<(Alert, bool)>,
}

/// The alert manager's decisions on a simulated clock.
pub struct Simulation {
    dispatcher: Dispatcher,
    inhibitor: Inhibitor,
    /// Silences in force (their own times decide when each applies).
    pub silences: Silences,
    nflog: Nflog,
    /// Acknowledgements by group key.
    pub acks: HashMap<String, Ack>,
    intervals: HashMap<String, Vec<TimeInterval>>,
    infos: HashMap<String, Vec<IntegrationInfo>>,
    escalations: Vec<EscalationStep>,
    /// As the manager's `flap_hold` (0: off).
    pub flap_hold: i64,
    now: i64,
    sent: Vec<SimMessage>,
}

impl Simulation {
    /// A simulation of `config` starting at `now`, with escalation steps and what each
    /// receiver's integrations are called and whether they send resolved alerts.
    pub fn new(
        config: &Config,
        infos: HashMap<String, Vec<IntegrationInfo>>,
        escalations: Vec<EscalationStep>,
        now: i64,
    ) -> Simulation {
        let route = Arc::new(Route::new(config.route.as_ref().expect("validated config")));
        Simulation {
            dispatcher: Dispatcher::new(route),
            inhibitor: Inhibitor::new(&config.inhibit_rules),
            silences: Silences::default(),
            nflog: Nflog::default(),
            acks: HashMap::new(),
            intervals: config
                .named_intervals()
                .map(|n| (n.name.clone(), n.time_intervals.clone()))
                .collect(),
            infos,
            escalations,
            flap_hold: 0,
            now,
            sent: Vec::new(),
        }
    }

    /// The aggregation groups as they stand.
    pub fn groups(&self) -> impl Iterator<Item = &crate::dispatch::Group> {
        self.dispatcher.groups()
    }

    /// The simulated time (ms).
    pub fn now(&self) -> i64 {
        self.now
    }

    /// An alert arrives now (Alertmanager's `PUT`): inhibition sees it, the dispatcher groups it.
    pub fn put(&mut self, alert: Alert) {
        let a = Arc::new(alert);
        self.inhibitor.observe(&a);
        self.dispatcher.insert(a, self.now);
    }

    /// Runs the clock to `until` (ms), flushing every group that comes due on the way, at the
    /// time it comes due.
    pub fn run_until(&mut self, until: i64) {
        loop {
            let due = self.dispatcher.next_due().filter(|&t| t <= until);
            let Some(at) = due else { break };
            self.now = self.now.max(at);
            self.flush_due();
        }
        self.now = self.now.max(until);
    }

    fn flush_due(&mut self) {
        let flushes = self.dispatcher.due(self.now);
        for mut f in flushes {
            let route = self.dispatcher.route(f.route).clone();
            let stages = Stages {
                inhibitor: &self.inhibitor,
                silences: &self.silences,
                intervals: &self.intervals,
                nflog: &self.nflog,
                acks: &self.acks,
                receivers: &self.infos,
                escalations: &self.escalations,
                repairs: &Default::default(),
            };
            let flaps = HashMap::new();
            let out =
                pipeline::plan_flush(&mut f, &route, &flaps, self.flap_hold, &stages, self.now)
                    .unwrap_or_default();
            for d in out {
                if d.send {
                    self.sent.push(SimMessage {
                        at: self.now,
                        receiver: d.receiver.clone(),
                        integration: d.integration_name.clone(),
                        escalation: d.escalation.clone(),
                        alerts: d
                            .alerts
                            .iter()
                            .map(|a| (a.clone(), a.resolved_at(self.now)))
                            .collect(),
                    });
                }
                self.nflog.log(pipeline::log_entry(&d, self.now));
            }
            self.dispatcher.flushed(&f, true);
        }
    }

    /// The messages sent since the last call.
    pub fn take(&mut self) -> Vec<SimMessage> {
        std::mem::take(&mut self.sent)
    }
}
