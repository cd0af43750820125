//! The adapters between medic's crates in `medic run`, in one place: rules' alerts to the
//! alert manager (`rules`), the alert manager and PromQL to the heal engine (`heal`), anomaly
//! detectors to disk (`anomaly`). HTTP handlers never hold these.

pub mod anomaly;
pub mod heal;
pub mod rules;

pub use heal::{alert_input, observe, AlertHooks, PromQuery};
pub use rules::RulesNotifier;
