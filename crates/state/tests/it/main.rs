//! The state suite: every case runs on SQLite and on a real PostgreSQL (Debian package
//! `postgresql`, started by the test), through the same store traits medic uses.

mod alert_state;
mod audit_log;
mod backends;
mod heal_journal;
mod postgres_only;
mod records;
