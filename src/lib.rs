//! mailha: high availability for two-node mail servers on Corosync and
//! Pacemaker. Everything lives in this library; `main.rs` only parses argv
//! and dispatches. See ARCHITECTURE.md for the map.

pub mod agents;
pub mod alert;
pub mod cib;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod configsync;
pub mod corosync;
pub mod exec;
pub mod exporter;
pub mod faces;
pub mod fence;
pub mod files;
pub mod host;
pub mod install;
pub mod lease;
pub mod legacy;
pub mod live;
pub mod mounts;
pub mod ocf;
pub mod ops;
pub mod procs;
pub mod profiles;
pub mod removal;
pub mod setup;
pub mod shellvars;
pub mod status;
pub mod switchover;
pub mod watch;
