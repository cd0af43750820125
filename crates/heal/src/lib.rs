//! medic's self-healing engine: the seven steps of the auto-repair manual done by software —
//! take the alert, collect evidence, diagnose, choose the action, execute it, verify the fix,
//! tell people — under guards strong enough to let it act alone at night.
//!
//! - [`playbook`]: the YAML format, checked whole at load (see `docs/playbooks.md`);
//! - [`expr`]: diagnosis conditions in CEL;
//! - [`guard`]: the safety guards, a deterministic core with time passed in;
//! - [`trust`]: success rates, ranking and the trust ladder;
//! - [`journal`]: execution records and the [`journal::HealStore`] trait;
//! - [`action`]: commands (never through a shell) and HTTP requests;
//! - [`machine`]: the execution state machine, a deterministic core (events in, effects out;
//!   cases in `crates/heal/testdata/machine/`);
//! - [`engine`]: the async shell that performs the machine's effects;
//! - [`evidence`]: query evidence, diagnosis and action plans (the engine and dry-run share
//!   them); [`report`]: reports for people; [`kinds`]: the names as enums;
//! - [`plan`]: what a playbook would do for an alert, for `medic heal dry-run`.

pub mod action;
pub mod engine;
pub mod escape;
pub mod evidence;
pub mod expr;
pub mod guard;
pub mod hooks;
pub mod journal;
pub mod kinds;
pub mod machine;
pub mod metrics;
pub mod plan;
pub mod playbook;
pub mod replay;
pub mod report;
pub mod trust;

use std::path::PathBuf;

pub use engine::{AlertInput, Engine, Hooks, NoHooks, Notification, Options};
pub use journal::{Execution, ExecutionQuery, HealStore, MemStore, Status};
pub use playbook::Playbook;

/// The heal engine's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A playbook is invalid; the message names the field and line.
    #[error("{}: {message}", file.display())]
    Playbook { file: PathBuf, message: String },
    /// A request is invalid.
    #[error("{0}")]
    Invalid(String),
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The journal could not be read or written.
    #[error("{0}")]
    State(String),
}
