//! Integration tests of the server's components against real HTTP targets.

mod scrape;
