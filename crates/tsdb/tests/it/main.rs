//! Integration tests of the store as a whole: restarts, damage on disk, blocks, retention.

mod db;
mod histograms;
