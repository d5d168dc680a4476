//! The pieces every running part shares, whatever produced them: the clock, what cloud discovery
//! learned for the probes, and the schedule loops run on.

mod clock;
mod discovered;
mod schedule;
mod tasks;

pub use clock::{system_clock, Clock};
pub use discovered::{
    Discovered, HealthCheck, LbFacts, Listener, SkippedTarget, TargetFacts, TargetGroupFacts,
};
pub use schedule::Schedule;
pub use tasks::TaskGroup;
