//! The counters' descriptions, as the daemon declares them (the same
//! files, included).

#[path = "../../conntrackd/src/counters/describe.rs"]
pub mod describe;
#[path = "../../conntrackd/src/counters/model.rs"]
pub mod model;
