//! The heal engine end to end within one process: real commands, real PromQL over an
//! in-memory store, the journal in memory (the SQLite journal is tested in `medic-state` and
//! across real restarts in the CLI's tests).

mod engine;
mod guards;
mod hostile;
mod machine;
mod support;
