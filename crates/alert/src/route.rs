//! The routing tree: which route (and so which receiver and grouping) an alert takes, with
//! options inherited from parent routes, exactly as Alertmanager walks it (depth first, the
//! first matching child wins unless it says `continue`).

use medic_model::{Labels, Matcher};

use crate::config::RouteConfig;
use crate::matchers::{format_matchers, matches_all};

/// How a route groups alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// `group_by: ['...']`: every label.
    All,
    /// These labels (those an alert has).
    Labels(Vec<String>),
}

/// A route's effective options, after inheritance.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteOpts {
    pub receiver: String,
    pub group_by: GroupBy,
    pub group_wait: i64,
    pub group_interval: i64,
    pub repeat_interval: i64,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
}

/// A node of the tree.
#[derive(Debug, Clone)]
pub struct Route {
    pub matchers: Vec<Matcher>,
    pub continue_matching: bool,
    pub opts: RouteOpts,
    pub routes: Vec<Route>,
    /// Alertmanager's `Route.Key()`: the matchers of this node and its ancestors.
    pub key: String,
    /// Unique among routes (the key with each node's position).
    pub id: String,
    /// Position in a depth-first walk of the tree (0 = root).
    pub index: usize,
}

/// Alertmanager's defaults for the root route.
const DEFAULT_GROUP_WAIT: i64 = 30_000;
const DEFAULT_GROUP_INTERVAL: i64 = 5 * 60_000;
const DEFAULT_REPEAT_INTERVAL: i64 = 4 * 3_600_000;

impl Route {
    /// Builds the tree from a validated config (matchers compile; receivers exist).
    pub fn new(root: &RouteConfig) -> Route {
        let mut r = Route::build(root, None, 0);
        let mut next = 0;
        r.number(&mut next);
        r
    }

    fn number(&mut self, next: &mut usize) {
        self.index = *next;
        *next += 1;
        for c in &mut self.routes {
            c.number(next);
        }
    }

    fn build(c: &RouteConfig, parent: Option<&Route>, idx: usize) -> Route {
        let mut opts = match parent {
            Some(p) => p.opts.clone(),
            None => RouteOpts {
                receiver: String::new(),
                group_by: GroupBy::Labels(Vec::new()),
                group_wait: DEFAULT_GROUP_WAIT,
                group_interval: DEFAULT_GROUP_INTERVAL,
                repeat_interval: DEFAULT_REPEAT_INTERVAL,
                mute_time_intervals: Vec::new(),
                active_time_intervals: Vec::new(),
            },
        };
        if let Some(r) = &c.receiver {
            opts.receiver = r.clone();
        }
        // An empty `group_by: []` is unset, as in Alertmanager: the parent's grouping holds.
        if let Some(gb) = c.group_by.as_ref().filter(|gb| !gb.is_empty()) {
            opts.group_by = if gb.iter().any(|l| l == "...") {
                GroupBy::All
            } else {
                GroupBy::Labels(gb.clone())
            };
        }
        if let Some(d) = c.group_wait {
            opts.group_wait = d.0;
        }
        if let Some(d) = c.group_interval {
            opts.group_interval = d.0;
        }
        if let Some(d) = c.repeat_interval {
            opts.repeat_interval = d.0;
        }
        // Time intervals are not inherited (as in Alertmanager).
        opts.mute_time_intervals = c.mute_time_intervals.clone();
        opts.active_time_intervals = c.active_time_intervals.clone();
        let matchers = c.all_matchers().unwrap_or_default();
        let own = format_matchers(&matchers);
        let (key, id) = match parent {
            Some(p) => (format!("{}/{own}", p.key), format!("{}/{own}/{idx}", p.id)),
            None => (own.clone(), own),
        };
        let mut route = Route {
            matchers,
            continue_matching: c.continue_matching,
            opts,
            routes: Vec::new(),
            key,
            id,
            index: 0,
        };
        route.routes = c
            .routes
            .iter()
            .enumerate()
            .map(|(i, child)| Route::build(child, Some(&route), i))
            .collect();
        route
    }

    /// The routes an alert with `labels` takes (Alertmanager's `Route.Match`).
    pub fn matches(&self, labels: &Labels) -> Vec<&Route> {
        if !matches_all(&self.matchers, labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let m = child.matches(labels);
            let hit = !m.is_empty();
            all.extend(m);
            if hit && !child.continue_matching {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// Every route of the tree, depth first.
    pub fn walk(&self) -> Vec<&Route> {
        let mut out = vec![self];
        for c in &self.routes {
            out.extend(c.walk());
        }
        out
    }

    /// The labels of `labels` this route groups by.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match &self.opts.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => {
                let mut b = medic_model::LabelsBuilder::new();
                for n in names {
                    if let Some(v) = labels.get(n) {
                        b.set(n.as_str(), v);
                    }
                }
                b.build()
            }
        }
    }
}

/// A label set as Go's `model.LabelSet.String()` prints it: `{a="1", b="2"}`.
pub fn labels_string(labels: &Labels) -> String {
    let mut s = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&l.name);
        s.push('=');
        s.push_str(&medic_template::fmt::quote(&l.value));
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn tree(yaml: &str) -> Route {
        let c = Config::parse(yaml, Path::new("t.yml")).unwrap();
        Route::new(c.route.as_ref().unwrap())
    }

    fn receivers(r: &Route, pairs: &[(&str, &str)]) -> Vec<String> {
        r.matches(&Labels::from_pairs(pairs.iter().copied()))
            .iter()
            .map(|r| r.opts.receiver.clone())
            .collect()
    }

    const TREE: &str = r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 10s
  routes:
    - matchers: [severity="critical"]
      receiver: pager
      continue: true
      group_wait: 1s
    - matchers: [team="db"]
      receiver: db
      routes:
        - match_re: {service: "pg.*"}
          receiver: pg
          group_by: ['...']
    - matchers: [team="db"]
      receiver: never
receivers: [{name: default}, {name: pager}, {name: db}, {name: pg}, {name: never}]
"#;

    #[test]
    fn walks_the_tree_like_alertmanager() {
        let r = tree(TREE);
        assert_eq!(receivers(&r, &[("alertname", "x")]), ["default"]);
        assert_eq!(receivers(&r, &[("team", "db")]), ["db"]);
        assert_eq!(
            receivers(&r, &[("team", "db"), ("service", "pgbouncer")]),
            ["pg"]
        );
        // `continue` on the first route lets the alert go on to the next match.
        assert_eq!(
            receivers(&r, &[("severity", "critical"), ("team", "db")]),
            ["pager", "db"]
        );
        assert_eq!(receivers(&r, &[("severity", "critical")]), ["pager"]);
    }

    #[test]
    fn options_inherit_and_keys_follow_alertmanager() {
        let r = tree(TREE);
        let l = Labels::from_pairs([("team", "db"), ("service", "pg1"), ("alertname", "A")]);
        let m = r.matches(&l);
        let pg = m[0];
        assert_eq!(pg.opts.group_wait, 10_000); // inherited from the root
        assert_eq!(pg.opts.group_by, GroupBy::All);
        // `match_re` in Alertmanager's anchored form, as its group keys show it.
        assert_eq!(pg.key, r#"{}/{team="db"}/{service=~"^(?:pg.*)$"}"#);
        assert_eq!(r.routes[0].opts.group_wait, 1_000);
        assert_eq!(labels_string(&r.group_labels(&l)), r#"{alertname="A"}"#);
        // Two routes with the same matchers have the same key but different ids.
        assert_eq!(r.routes[1].key, r.routes[2].key);
        assert_ne!(r.routes[1].id, r.routes[2].id);
    }
}
