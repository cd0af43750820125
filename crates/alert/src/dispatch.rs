//! Aggregation groups: alerts routed to the same route with the same group labels are sent
//! together, first after `group_wait`, then at most every `group_interval` (Alertmanager's
//! dispatcher). A deterministic core: time is passed in, and [`Dispatcher::due`] hands out the
//! groups to flush; the caller runs the notification pipeline and reports back with
//! [`Dispatcher::flushed`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use medic_model::Labels;

use crate::route::{labels_string, Route};
use crate::types::{Alert, Fingerprint};

/// Identifies a group: its route and its group labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId {
    pub route: usize,
    pub labels: u64,
}

/// One aggregation group.
#[derive(Debug)]
pub struct Group {
    pub id: GroupId,
    /// Alertmanager's group key: `route key:group labels`.
    pub key: String,
    pub receiver: String,
    pub labels: Labels,
    pub alerts: HashMap<Fingerprint, Arc<Alert>>,
    pub next_flush: i64,
    pub has_flushed: bool,
    pub in_flight: bool,
}

/// A group's alerts as of one flush, for the notification pipeline.
#[derive(Debug, Clone)]
pub struct Flush {
    pub id: GroupId,
    pub key: String,
    pub receiver: String,
    pub group_labels: Labels,
    /// The route (its index in the tree), for its options.
    pub route: usize,
    /// Sorted as Alertmanager sorts them (job, instance, labels); firing alerts have
    /// `ends_at == 0`, so they do not resolve while the message is on its way.
    pub alerts: Vec<Alert>,
    /// When the flush was taken.
    pub at: i64,
    /// The dispatcher it came from (see [`Dispatcher::generation`]).
    pub generation: u64,
}

/// The groups and their timers.
pub struct Dispatcher {
    generation: u64,
    root: Arc<Route>,
    routes: Vec<Route>,
    groups: HashMap<GroupId, Group>,
    timers: BinaryHeap<Reverse<(i64, GroupId)>>,
}

impl Dispatcher {
    pub fn new(root: Arc<Route>) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        // Each node without its children: flushes need a route's options, not its subtree.
        let routes = root
            .walk()
            .into_iter()
            .map(|r| Route {
                matchers: r.matchers.clone(),
                continue_matching: r.continue_matching,
                opts: r.opts.clone(),
                routes: Vec::new(),
                key: r.key.clone(),
                id: r.id.clone(),
                index: r.index,
            })
            .collect();
        Dispatcher {
            generation: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            root,
            routes,
            groups: HashMap::new(),
            timers: BinaryHeap::new(),
        }
    }

    /// Identifies this dispatcher among those of the process: a reload builds a new one, and
    /// flushes taken from the old one are then dropped rather than applied to the new tree.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The route with this index.
    pub fn route(&self, index: usize) -> &Route {
        &self.routes[index]
    }

    /// Routes an alert (new or updated) into its groups.
    pub fn insert(&mut self, alert: Arc<Alert>, now: i64) {
        let fp = alert.fingerprint();
        for r in self.root.matches(&alert.labels) {
            let labels = r.group_labels(&alert.labels);
            let id = GroupId {
                route: r.index,
                labels: Fingerprint::of(&labels).0,
            };
            let group = self.groups.entry(id).or_insert_with(|| {
                let next = now + r.opts.group_wait;
                self.timers.push(Reverse((next, id)));
                Group {
                    id,
                    key: format!("{}:{}", r.key, labels_string(&labels)),
                    receiver: r.opts.receiver.clone(),
                    labels,
                    alerts: HashMap::new(),
                    next_flush: next,
                    has_flushed: false,
                    in_flight: false,
                }
            });
            // An alert that started longer than group_wait ago is sent at once.
            if !group.has_flushed
                && alert.starts_at + r.opts.group_wait < now
                && group.next_flush > now
            {
                group.next_flush = now;
                self.timers.push(Reverse((now, id)));
            }
            group.alerts.insert(fp, alert.clone());
        }
    }

    /// When the next group is due, if any (groups in flight are re-armed by
    /// [`Dispatcher::flushed`]).
    pub fn next_due(&mut self) -> Option<i64> {
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            match self.groups.get(&id) {
                Some(g) if g.next_flush == t && !g.in_flight => return Some(t),
                _ => {
                    self.timers.pop();
                }
            }
        }
        None
    }

    /// Takes the groups due at `now`, marks them in flight and schedules their next flush.
    pub fn due(&mut self, now: i64) -> Vec<Flush> {
        let mut out = Vec::new();
        while let Some(Reverse((t, id))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(g) = self.groups.get_mut(&id) else {
                continue;
            };
            if g.next_flush != t || g.in_flight {
                continue;
            }
            let interval = self.routes[id.route].opts.group_interval;
            let mut alerts: Vec<Alert> = g
                .alerts
                .values()
                .map(|a| {
                    let mut a = Alert::clone(a);
                    if !a.resolved_at(now) {
                        a.ends_at = 0;
                    }
                    a
                })
                .collect();
            sort_alerts(&mut alerts);
            g.next_flush = now + interval;
            g.has_flushed = true;
            g.in_flight = true;
            self.timers.push(Reverse((g.next_flush, id)));
            out.push(Flush {
                id,
                key: g.key.clone(),
                receiver: g.receiver.clone(),
                group_labels: g.labels.clone(),
                route: id.route,
                alerts,
                at: now,
                generation: self.generation,
            });
        }
        out
    }

    /// Reports a flush's outcome. After a successful one, resolved alerts that have not
    /// changed since are dropped from the group, and an empty group is deleted.
    pub fn flushed(&mut self, flush: &Flush, ok: bool) {
        if flush.generation != self.generation {
            return;
        }
        let Some(g) = self.groups.get_mut(&flush.id) else {
            return;
        };
        g.in_flight = false;
        // Timers that came due while the flush was in flight were dropped; re-arm.
        self.timers.push(Reverse((g.next_flush, flush.id)));
        if ok {
            for a in &flush.alerts {
                if a.ends_at == 0 {
                    continue;
                }
                let fp = a.fingerprint();
                if g.alerts
                    .get(&fp)
                    .is_some_and(|cur| cur.updated_at == a.updated_at)
                {
                    g.alerts.remove(&fp);
                }
            }
        }
        if g.alerts.is_empty() {
            self.groups.remove(&flush.id);
        }
    }

    /// All groups.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// The group with this group key, if any.
    pub fn group_by_key(&self, key: &str) -> Option<&Group> {
        self.groups.values().find(|g| g.key == key)
    }
}

/// Alertmanager's alert order in a message (`types.AlertSlice.Less`): by `job`, then
/// `instance` — an alert without the label after one with it — then by label set
/// (`LabelSet.Before`: fewer labels first, then by the values of the sorted names).
pub fn sort_alerts(alerts: &mut [Alert]) {
    alerts.sort_by(|a, b| alert_order(&a.labels, &b.labels));
}

pub(crate) fn alert_order(a: &medic_model::Labels, b: &medic_model::Labels) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for k in ["job", "instance"] {
        match (a.get(k), b.get(k)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    labels_order(a, b)
}

/// Go's `model.LabelSet.Before`: fewer labels first, then by the values of the sorted names.
pub fn labels_order(a: &medic_model::Labels, b: &medic_model::Labels) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let mut names: Vec<&str> = a.iter().chain(b.iter()).map(|l| &*l.name).collect();
    names.sort_unstable();
    names.dedup();
    for n in names {
        match (a.get(n), b.get(n)) {
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Annotations;

    #[test]
    fn alerts_are_ordered_as_alertmanager_orders_them() {
        let l = |pairs: &[(&str, &str)]| medic_model::Labels::from_pairs(pairs.iter().copied());
        let mut alerts: Vec<Alert> = [
            l(&[("alertname", "A"), ("zone", "z")]),
            l(&[("alertname", "A"), ("job", "b")]),
            l(&[("alertname", "A"), ("instance", "i2"), ("job", "a")]),
            l(&[("alertname", "A"), ("instance", "i1"), ("job", "a")]),
            l(&[("alertname", "A"), ("job", "a")]),
            l(&[("alertname", "B")]),
            l(&[("alertname", "A"), ("b", "1"), ("c", "1")]),
        ]
        .into_iter()
        .map(|labels| Alert {
            labels,
            annotations: Annotations::default(),
            starts_at: 0,
            ends_at: 0,
            generator_url: String::new(),
            updated_at: 0,
            timeout: false,
            value: None,
            source: Default::default(),
        })
        .collect();
        sort_alerts(&mut alerts);
        let got: Vec<String> = alerts.iter().map(|a| a.labels.to_string()).collect();
        // job first (missing last), then instance (missing last), then fewer labels first,
        // then by value of the sorted names.
        assert_eq!(
            got,
            [
                r#"{alertname="A", instance="i1", job="a"}"#,
                r#"{alertname="A", instance="i2", job="a"}"#,
                r#"{alertname="A", job="a"}"#,
                r#"{alertname="A", job="b"}"#,
                r#"{alertname="B"}"#,
                r#"{alertname="A", zone="z"}"#,
                r#"{alertname="A", b="1", c="1"}"#,
            ]
        );
    }

    #[test]
    fn flushes_from_a_replaced_dispatcher_are_ignored() {
        let c = crate::config::Config::parse(
            "route: {receiver: a, group_wait: 1s}\nreceivers: [{name: a}]\n",
            std::path::Path::new("t.yml"),
        )
        .unwrap();
        let root = Arc::new(Route::new(c.route.as_ref().unwrap()));
        let mut old = Dispatcher::new(root.clone());
        let mut new = Dispatcher::new(root);
        assert_ne!(old.generation(), new.generation());
        let a = Arc::new(Alert {
            labels: Labels::from_pairs([("alertname", "x")]),
            annotations: Annotations::new(),
            starts_at: 0,
            ends_at: 10,
            generator_url: String::new(),
            updated_at: 0,
            timeout: false,
            value: None,
            source: Default::default(),
        });
        old.insert(a.clone(), 5_000);
        new.insert(a, 5_000);
        let f = old.due(5_000);
        assert_eq!(f.len(), 1);
        let mine = new.due(5_000);
        // The old flush (its alert resolved) does not touch the new dispatcher's group.
        new.flushed(&f[0], true);
        assert_eq!(new.groups().count(), 1);
        assert!(new.groups().next().unwrap().in_flight);
        new.flushed(&mine[0], true);
        assert_eq!(new.groups().count(), 0);
    }
}
