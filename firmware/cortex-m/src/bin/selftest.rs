//! Test firmware for Cortex-M3 (thumbv7m-none-eabi, QEMU lm3s6965evb) and Cortex-M0
//! (thumbv6m-none-eabi, QEMU microbit): runs `common/checks.rs` with SysTick as the hardware
//! timer, prints over semihosting and exits 0, or 1 on any mismatch.
#![no_std]
#![no_main]

use core::fmt::{self, Write as _};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hio};

#[path = "../../../common/checks.rs"]
mod checks;

#[cfg(target_arch = "arm")]
#[cfg(not(any(
    feature = "atomics-single-core",
    feature = "atomics-critical-section",
    feature = "atomics-lock-fallback"
)))]
compile_error!(
    "choose how atomics are updated: --features atomics-single-core or atomics-critical-section"
);

/// The target this firmware was built for, for the verdict line.
#[cfg(target_feature = "v7")]
const TARGET: &str = "thumbv7m-none-eabi";
#[cfg(not(target_feature = "v7"))]
const TARGET: &str = "thumbv6m-none-eabi";

/// Core clock cycles per SysTick interrupt (one tick of the hardware counter).
const CYCLES_PER_TICK: u32 = 2_000;

/// Ticks the main loop and the handler share the bucket for.
const SHARED_TICKS: u64 = 1_500;

fn print(args: fmt::Arguments<'_>) {
    if let Ok(mut out) = hio::hstdout() {
        // Nothing to do if the host does not take the line; the exit status still tells.
        let _ = out.write_fmt(args);
        let _ = out.write_str("\n");
    }
}

#[entry]
fn main() -> ! {
    let mut report = checks::Report::new(print);
    report.line(format_args!("tollgate firmware {TARGET}: start"));
    checks::leaky_bucket_scripted(&mut report);
    checks::fixed_window_scripted(&mut report);
    checks::key_table_scripted(&mut report);

    // The hardware timer: SysTick on the core clock, one interrupt per tick.
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        report.line(format_args!("FAIL: peripherals already taken"));
        debug::exit(debug::EXIT_FAILURE);
        loop {}
    };
    let mut syst = peripherals.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CYCLES_PER_TICK - 1);
    syst.clear_current();
    syst.enable_counter();
    syst.enable_interrupt();

    checks::clock_across_hardware_wrap(&mut report);
    checks::bucket_shared_with_interrupt(&mut report, checks::Shared::Bucket, SHARED_TICKS);
    checks::bucket_shared_with_interrupt(&mut report, checks::Shared::TableKey, SHARED_TICKS);
    checks::window_shared_with_interrupt(&mut report);

    syst.disable_interrupt();
    let ok = report.finish(TARGET);
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {}
}

#[exception]
fn SysTick() {
    checks::on_timer_tick();
}

#[exception]
unsafe fn HardFault(_frame: &cortex_m_rt::ExceptionFrame) -> ! {
    print(format_args!(
        "tollgate firmware {TARGET}: FAIL (hard fault)"
    ));
    debug::exit(debug::EXIT_FAILURE);
    loop {}
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    print(format_args!(
        "tollgate firmware {TARGET}: FAIL (panic: {info})"
    ));
    debug::exit(debug::EXIT_FAILURE);
    loop {}
}
