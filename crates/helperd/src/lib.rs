//! The user-space helper runtime (`docs/helpers.md`): from the
//! configuration's `Helper` section to queues bound, helper stubs
//! registered, packets read and given their verdicts, and expectations
//! created through ctnetlink. The protocol work is `cthelpers`' (sans
//! IO); this crate owns the sockets. The daemon drives a [`QueueRunner`]
//! from its event loop; tests and the bench drive it directly.

pub mod plan;
pub mod probe;
pub mod runner;

pub use plan::{PlanError, PlannedHelper, plan};
pub use probe::{KernelSupport, probe_cthelper};
pub use runner::{QueueRunner, RunnerOptions, RunnerStats, StartError};
