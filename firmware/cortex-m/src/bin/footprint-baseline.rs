//! Footprint baseline: `footprint` without the decision (docs/firmware.md). Never run.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;

#[entry]
fn main() -> ! {
    loop {
        let now = u64::from(cortex_m::peripheral::SYST::get_current());
        let cost = black_box(1u64);
        let _ = black_box((now, cost));
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
