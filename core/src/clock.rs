//! Clocks.
/// Placeholder.
#[derive(Debug)]
pub struct WrappingClock;
