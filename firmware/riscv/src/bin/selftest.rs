//! Test firmware for RISC-V (riscv32imac-unknown-none-elf, QEMU `virt`, machine mode): runs
//! `common/checks.rs` with the CLINT machine timer as the hardware timer, prints over
//! semihosting and exits 0, or 1 on any mismatch.
#![no_std]
#![no_main]

use core::fmt::{self, Write as _};
use core::ptr::{read_volatile, write_volatile};

use riscv::interrupt::Interrupt;
use riscv_rt::{core_interrupt, entry};
use riscv_semihosting::{debug, hio};

#[path = "../../../common/checks.rs"]
mod checks;

#[cfg(not(feature = "atomics-single-core"))]
compile_error!("choose how atomics are updated: --features atomics-single-core");

const TARGET: &str = "riscv32imac-unknown-none-elf";

/// The CLINT of QEMU `virt` (10 MHz): `mtime` and hart 0's `mtimecmp`, each 64-bit.
const MTIME: usize = 0x0200_bff8;
const MTIMECMP: usize = 0x0200_4000;
/// `mtime` ticks per interrupt (one tick of the hardware counter): 100 µs.
const MTIME_PER_TICK: u64 = 1_000;

/// Ticks the main loop and the handler share the bucket for.
const SHARED_TICKS: u64 = 1_500;

fn print(args: fmt::Arguments<'_>) {
    if let Ok(mut out) = hio::hstdout() {
        let _ = out.write_fmt(args);
        let _ = out.write_str("\n");
    }
}

fn mtime() -> u64 {
    let (lo, hi) = (MTIME as *const u32, (MTIME + 4) as *const u32);
    loop {
        // SAFETY: the CLINT's mtime registers exist on QEMU virt; reads have no side effect.
        let (h1, l, h2) = unsafe { (read_volatile(hi), read_volatile(lo), read_volatile(hi)) };
        if h1 == h2 {
            return (u64::from(h1) << 32) | u64::from(l);
        }
    }
}

fn set_mtimecmp(at: u64) {
    let (lo, hi) = (MTIMECMP as *mut u32, (MTIMECMP + 4) as *mut u32);
    // SAFETY: hart 0's mtimecmp on QEMU virt. The low word is parked at its maximum first so
    // no spurious interrupt fires between the two 32-bit writes.
    #[allow(clippy::cast_possible_truncation)]
    unsafe {
        write_volatile(lo, u32::MAX);
        write_volatile(hi, (at >> 32) as u32);
        write_volatile(lo, at as u32);
    }
}

#[entry]
fn main() -> ! {
    let mut report = checks::Report::new(print);
    report.line(format_args!("tollgate firmware {TARGET}: start"));
    checks::leaky_bucket_scripted(&mut report);
    checks::fixed_window_scripted(&mut report);
    checks::key_table_scripted(&mut report);

    // The hardware timer: the machine timer interrupt, once per tick.
    set_mtimecmp(mtime() + MTIME_PER_TICK);
    // SAFETY: the handler below touches only what `checks` shares through atomics.
    unsafe {
        riscv::register::mie::set_mtimer();
        riscv::interrupt::enable();
    }

    checks::clock_across_hardware_wrap(&mut report);
    checks::bucket_shared_with_interrupt(&mut report, checks::Shared::Bucket, SHARED_TICKS);
    checks::bucket_shared_with_interrupt(&mut report, checks::Shared::TableKey, SHARED_TICKS);
    checks::window_shared_with_interrupt(&mut report);

    riscv::interrupt::disable();
    let ok = report.finish(TARGET);
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {}
}

#[core_interrupt(Interrupt::MachineTimer)]
fn machine_timer() {
    set_mtimecmp(mtime() + MTIME_PER_TICK);
    checks::on_timer_tick();
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    print(format_args!(
        "tollgate firmware {TARGET}: FAIL (panic: {info})"
    ));
    debug::exit(debug::EXIT_FAILURE);
    loop {}
}
