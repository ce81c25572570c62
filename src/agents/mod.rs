//! mailha's OCF resource agents. Each is a face of the one binary,
//! selected by argv[0] (see `faces::FACES`), and built on `crate::ocf`.

pub mod lease;
pub mod sender;
pub mod service;
pub mod storage;
