//! The daemon's counters as operators see them: each described once
//! (`describe`, `model`), read by `Node::snapshot`, and rendered as
//! `--json` (serde), as Prometheus metrics (`exposition`) and, by
//! `docgen`, as the tables of docs/json.md and docs/metrics.md.

pub mod describe;
pub mod exposition;
pub mod model;
pub mod stats_text;
