//! Integration tests of the alert crate: timelines with a deterministic clock, and receivers
//! against real HTTP and SMTP servers.

mod restart;
mod timeline;
