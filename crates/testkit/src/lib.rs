//! Real servers for medic's tests. A test that needs a binary which is not installed fails
//! naming the Debian package; it never passes silently.

mod certs;
mod postgres;

pub use certs::make_certs;
pub use postgres::Postgres;

/// A loopback port free at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a loopback port")
}

/// Fails with the Debian package to install when a binary the test needs is missing.
pub fn require_binary(path: &str, package: &str) {
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: install the Debian package `{package}` (scripts/test.sh does)"
    );
}
