//! The proptest strategy the core's bucket and window proptests share (feature `proptest`).

use proptest::prelude::*;

/// One random call for the bucket and window proptests: (peek?, time-step selector, raw time,
/// cost selector, raw cost); each test file maps the selectors to its own time and cost shapes.
pub type Op = (bool, u8, u64, u8, u64);

/// A random sequence of up to `max` calls, a quarter of them peeks.
///
/// Its shape is fixed: the seeds in the core's proptest regression files replay through it.
pub fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (
            prop::bool::weighted(0.25),
            0..100u8,
            any::<u64>(),
            0..100u8,
            any::<u64>(),
        ),
        1..max,
    )
}
