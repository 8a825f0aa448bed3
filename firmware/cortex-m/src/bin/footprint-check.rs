//! Footprint probe: one outcome-only leaky-bucket decision (`check`) in a minimal firmware. Its size minus
//! `footprint-baseline`'s is the code and data the decision path adds (docs/firmware.md).
//! Never run; only measured.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use tollgate::{LeakyBucket, Quota};

static BUCKET: LeakyBucket = LeakyBucket::new(match Quota::new(30, 2, 1_000) {
    Ok(q) => q,
    Err(_) => panic!("invalid quota"),
});

#[entry]
fn main() -> ! {
    loop {
        // A time and a cost the optimiser cannot know, and a bucket whose quota it must read
        // from memory (without `black_box` it would fold the constant quota into the code,
        // which measures smaller: see docs/firmware.md).
        let now = u64::from(cortex_m::peripheral::SYST::get_current());
        let cost = black_box(1);
        let bucket: &LeakyBucket = black_box(&BUCKET);
        let _ = black_box(bucket.check(now, cost));
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
