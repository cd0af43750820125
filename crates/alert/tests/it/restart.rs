//! The alert manager restarted over the same state: what is held, and until when.

use std::path::Path;
use std::sync::Arc;

use medic_alert::manager::{AlertFilter, AlertManager, Loaded, Options};
use medic_alert::metrics::AlertMetrics;
use medic_alert::state::{MemState, StateStore};
use medic_alert::Alert;
use medic_model::{Labels, ManualClock};

const CONFIG: &str =
    "global: {resolve_timeout: 5m}\nroute: {receiver: r}\nreceivers: [{name: r}]\n";
const MIN: i64 = 60_000;

fn start(state: &Arc<MemState>, clock: &Arc<ManualClock>) -> Arc<AlertManager> {
    let loaded = Loaded::parse(CONFIG, Path::new("am.yml"), &[]).unwrap();
    AlertManager::new(
        loaded,
        state.clone() as Arc<dyn StateStore>,
        clock.clone(),
        Arc::new(AlertMetrics::default()),
        Options::default(),
    )
    .unwrap()
}

fn firing(am: &AlertManager, now: i64) -> usize {
    am.alerts(&AlertFilter {
        active: true,
        resolved: true,
        ..AlertFilter::default()
    })
    .iter()
    .filter(|v| v.alert.status(now) == medic_alert::Status::Firing)
    .count()
}

/// An alert posted without `endsAt` ends `resolve_timeout` after it was last received, whatever
/// restarts happen in between: restarting every 2 minutes (shorter than the 5-minute timeout)
/// once kept it firing for ever.
#[test]
fn an_implicit_end_survives_restarts() {
    let state = Arc::new(MemState::default());
    let t0 = 1_700_000_000_000;
    let clock = Arc::new(ManualClock::new(t0));
    let am = start(&state, &clock);
    let labels = Labels::from_pairs([("alertname", "Down"), ("instance", "a")]);
    am.put(vec![Alert {
        labels,
        annotations: Default::default(),
        starts_at: t0,
        ends_at: t0 + 5 * MIN,
        generator_url: String::new(),
        updated_at: t0,
        timeout: true,
        value: None,
        source: Default::default(),
    }])
    .unwrap();
    assert_eq!(firing(&am, t0), 1);
    drop(am);
    // Crash loop: a restart every 2 minutes, nobody re-sends.
    for k in 1..=4 {
        let now = t0 + 2 * k * MIN;
        clock.set(now);
        let am = start(&state, &clock);
        let expect = if now < t0 + 5 * MIN { 1 } else { 0 };
        assert_eq!(
            firing(&am, now),
            expect,
            "{} min after it was posted",
            2 * k
        );
    }
}
