/*
 * C test firmware for Cortex-M3 (QEMU lm3s6965evb): includes include/tollgate.h and links
 * libtollgate.a built for thumbv7m-none-eabi (no_std, the firmware's atomics choice:
 * unsafe-assume-single-core). The same kind of checks as the Rust firmware (common/checks.rs):
 * limiters in statics, a wrapping 32-bit SysTick counter extended by tg_wrapping_clock, exact
 * expected values, and SysTick deciding on the same bucket as the main loop with an exact total.
 * Prints over semihosting; exits 0, or 1 on any mismatch.
 *
 * Build with -DTG_WRONG_EXPECTATION to make one expectation wrong (the harness checks that the
 * run then fails).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tollgate.h"

/* ---- semihosting ------------------------------------------------------------------------- */

#define SYS_WRITE0 0x04
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUNTIME_ERROR 0x20023

static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void sh_exit(bool ok) {
    /* On 32-bit ARM the reason is passed directly; QEMU exits 0 for ApplicationExit, else 1. */
    semihost(SYS_EXIT, (const void *)(uintptr_t)(ok ? ADP_STOPPED_APPLICATION_EXIT
                                                    : ADP_STOPPED_RUNTIME_ERROR));
    for (;;) {
    }
}

/* A line under construction, written with SYS_WRITE0. */
static char line[160];
static size_t line_len;

static void put_str(const char *s) {
    while (*s != '\0' && line_len < sizeof line - 2) {
        line[line_len++] = *s++;
    }
}

static void put_u64(uint64_t v) {
    char digits[21];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        char one[2] = {digits[--n], '\0'};
        put_str(one);
    }
}

static void end_line(void) {
    line[line_len++] = '\n';
    line[line_len] = '\0';
    semihost(SYS_WRITE0, line);
    line_len = 0;
}

/* ---- checks ------------------------------------------------------------------------------ */

static uint32_t passed, failed;

static void check_u64(const char *name, uint64_t got, uint64_t expected) {
    if (got == expected) {
        passed++;
    } else {
        failed++;
        put_str("FAIL ");
        put_str(name);
        put_str(": got ");
        put_u64(got);
        put_str(", expected ");
        put_u64(expected);
        end_line();
    }
}

static void group(const char *name, uint32_t failed_before) {
    put_str(failed == failed_before ? "ok " : "FAILED ");
    put_str(name);
    end_line();
}

/* Checks every number of a decision at once. */
static void check_decision(const char *name, tg_status st, const tg_decision *d, uint32_t outcome,
                           uint64_t used, uint64_t remaining, uint64_t retry_after,
                           uint64_t reset_after) {
    check_u64(name, st, TG_STATUS_OK);
    check_u64(name, d->outcome, outcome);
    check_u64(name, d->used, used);
    check_u64(name, d->remaining, remaining);
    check_u64(name, d->retry_after, retry_after);
    check_u64(name, d->reset_after, reset_after);
}

#ifdef TG_WRONG_EXPECTATION
#define EXPECTED_RETRY 501
#else
#define EXPECTED_RETRY 500
#endif

/* ---- limiters in statics ------------------------------------------------------------------ */

/* ShopBase (30, draining 2 per 1 000 ticks) and TikTok Shop (50 per 1 000 ticks). */
static tg_bucket shopbase = TG_BUCKET_INIT;
static tg_window tiktok = TG_WINDOW_INIT;
/* Shared by the main loop and SysTick: burst 64 draining 3 per 2 ticks. */
static tg_bucket shared = TG_BUCKET_INIT;

/* The hardware counter: SysTick interrupts, wrapping, 300 ticks before the wrap at reset. */
static volatile uint32_t ticks = UINT32_MAX - 300;
static tg_wrapping_clock clock = TG_WRAPPING_CLOCK_INIT;
/* A simulated counter for the scripted checks (exact times), and its clock. */
static uint32_t sim_counter = UINT32_MAX - 99;
static tg_wrapping_clock sim_clock = TG_WRAPPING_CLOCK_INIT;

static uint32_t read_counter(void *context) {
    return *(volatile const uint32_t *)context;
}

static uint64_t now_of(tg_wrapping_clock *c, volatile uint32_t *counter) {
    uint64_t t = 0;
    if (tg_wrapping_clock_now(c, read_counter, (void *)counter, &t) != TG_STATUS_OK) {
        failed++;
    }
    return t;
}

static uint64_t now(void) {
    return now_of(&clock, &ticks);
}

static uint64_t sim_advance(uint32_t by) {
    sim_counter += by;
    return now_of(&sim_clock, &sim_counter);
}

/* ---- SysTick ------------------------------------------------------------------------------ */

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define CYCLES_PER_TICK 2000u

static volatile bool isr_active;
static volatile bool main_deciding;
static volatile uint32_t isr_admitted, isr_decisions, isr_errors, interrupted_main;

void SysTick_Handler(void) {
    uint32_t raw = ticks + 1;
    ticks = raw;
    if (!isr_active || raw % 2 == 0) {
        return;
    }
    if (main_deciding) {
        interrupted_main++;
    }
    uint64_t t = now();
    for (int i = 0; i < 2; i++) {
        tg_decision d;
        isr_decisions++;
        if (tg_bucket_decide(&shared, t, 1, &d) != TG_STATUS_OK) {
            isr_errors++;
        } else if (d.outcome == TG_OUTCOME_ALLOWED) {
            isr_admitted++;
        }
    }
}

void HardFault_Handler(void) {
    put_str("tollgate firmware C thumbv7m-none-eabi: FAIL (hard fault)");
    end_line();
    sh_exit(false);
}

/* The library's panic handler calls this (never expected: the core is panic-free). */
void tg_panic_handler(void) {
    put_str("tollgate firmware C thumbv7m-none-eabi: FAIL (panic in libtollgate)");
    end_line();
    sh_exit(false);
}

/* ---- the checks --------------------------------------------------------------------------- */

static void bucket_scripted(void) {
    uint32_t before = failed;
    tg_decision d;
    check_u64("bucket: init", tg_bucket_init(&shopbase, 30, 2, 1000), TG_STATUS_OK);
    check_u64("clock: init", tg_wrapping_clock_init(&sim_clock), TG_STATUS_OK);
    uint64_t t0 = sim_advance(0);
    check_u64("bucket: first reading is the raw counter", t0, UINT32_MAX - 99);
    for (uint64_t i = 1; i <= 30; i++) {
        tg_status st = tg_bucket_decide(&shopbase, t0, 1, &d);
        check_decision("bucket: burst admitted", st, &d, TG_OUTCOME_ALLOWED, i, 30 - i, 0, i * 500);
    }
    tg_status st = tg_bucket_decide(&shopbase, t0, 1, &d);
    check_decision("bucket: 31st denied, retry after 500", st, &d, TG_OUTCOME_LIMITED, 30, 0,
                   EXPECTED_RETRY, 15000);
    uint64_t t = sim_advance(499);
    st = tg_bucket_peek(&shopbase, t, 1, &d);
    check_u64("bucket: one tick early", d.outcome, TG_OUTCOME_LIMITED);
    t = sim_advance(1);
    check_u64("bucket: counter wrapped", sim_counter < 1000 && t > UINT32_MAX, 1);
    check_u64("bucket: time across the wrap", t - t0, 500);
    st = tg_bucket_decide(&shopbase, t, 1, &d);
    check_decision("bucket: admitted on time", st, &d, TG_OUTCOME_ALLOWED, 30, 0, 0, 15000);
    t = sim_advance(10000);
    st = tg_bucket_peek(&shopbase, t, 1, &d);
    check_u64("bucket: 10 s later, used", d.used, 10);
    check_u64("bucket: 10 s later, remaining", d.remaining, 20);
    st = tg_bucket_decide(&shopbase, t, 31, &d);
    check_u64("bucket: cost above burst is never", d.outcome, TG_OUTCOME_NEVER);
    check_u64("bucket: never retries", d.retry_after, TG_RETRY_NEVER);
    check_u64("bucket: zero cost", tg_bucket_decide(&shopbase, t, 0, &d), TG_STATUS_ZERO_COST);
    check_u64("bucket: null", tg_bucket_decide(NULL, t, 1, &d), TG_STATUS_NULL_POINTER);
    static tg_bucket never_initialised = TG_BUCKET_INIT;
    check_u64("bucket: uninitialised", tg_bucket_decide(&never_initialised, t, 1, &d),
              TG_STATUS_UNINITIALIZED);
    group("leaky bucket (scripted, across a 32-bit wrap)", before);
}

static void window_scripted(void) {
    uint32_t before = failed;
    tg_decision d;
    check_u64("window: init", tg_window_init(&tiktok, 50, 1000, 0), TG_STATUS_OK);
    uint64_t t = sim_advance(0);
    t = sim_advance((uint32_t)(1000 - t % 1000 + 250));
    check_u64("window: 250 ticks into a window", t % 1000, 250);
    for (uint64_t i = 1; i <= 50; i++) {
        tg_status st = tg_window_decide(&tiktok, t, 1, &d);
        check_decision("window: 50 admitted", st, &d, TG_OUTCOME_ALLOWED, i, 50 - i, 0, 750);
    }
    t = sim_advance(100);
    tg_status st = tg_window_decide(&tiktok, t, 1, &d);
    check_decision("window: 51st denied until the window ends", st, &d, TG_OUTCOME_LIMITED, 50, 0,
                   650, 650);
    t = sim_advance(650);
    st = tg_window_decide(&tiktok, t, 1, &d);
    check_decision("window: next window admits", st, &d, TG_OUTCOME_ALLOWED, 1, 49, 0, 1000);
    group("fixed window (scripted)", before);
}

/* A small key table in static memory: 15 slots (three groups of five), one tier (ShopBase). */
#define TABLE_SLOTS 15
static _Alignas(TG_TABLE_ALIGN) unsigned char table_memory[TG_TABLE_SIZE(TABLE_SLOTS, 1)];

static void table_scripted(void) {
    uint32_t before = failed;
    tg_decision d;
    tg_quota tiers[1] = {TG_QUOTA_INIT};
    tg_table *table = NULL;
    check_u64("table: tier", tg_quota_init(&tiers[0], 30, 2, 1000), TG_STATUS_OK);
    check_u64("table: init",
              tg_table_init_buckets(table_memory, sizeof table_memory, TABLE_SLOTS, tiers, 1,
                                    TG_FULL_POLICY_FAIL_CLOSED, 0x5eed0001u, 0xcafe0002u, &table),
              TG_STATUS_OK);
    check_u64("table: memory too small",
              tg_table_init_buckets(table_memory, sizeof table_memory - 1, TABLE_SLOTS, tiers, 1,
                                    TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &table),
              TG_STATUS_BUFFER_TOO_SMALL);
    uint64_t t = sim_advance(0);
    tg_key shop = tg_key_pair(7, 42);
    for (uint64_t i = 1; i <= 30; i++) {
        tg_status st = tg_table_decide(table, shop, 0, t, 1, &d);
        check_decision("table: burst admitted", st, &d, TG_OUTCOME_ALLOWED, i, 30 - i, 0, i * 500);
    }
    tg_status st = tg_table_decide(table, shop, 0, t, 1, &d);
    check_decision("table: 31st denied", st, &d, TG_OUTCOME_LIMITED, 30, 0, 500, 15000);
    uint64_t admitted = 0;
    for (uint64_t k = 0; k < TABLE_SLOTS - 1; k++) {
        if (tg_table_decide(table, tg_key_pair(100, k), 0, t, 1, &d) == TG_STATUS_OK &&
            d.outcome == TG_OUTCOME_ALLOWED) {
            admitted++;
        }
    }
    check_u64("table: 15 keys fit 15 slots", admitted, TABLE_SLOTS - 1);
    st = tg_table_decide(table, tg_key_pair(200, 0), 0, t, 1, &d);
    check_u64("table: a 16th key fails closed", d.outcome, TG_OUTCOME_OVERLOADED);
    tg_table_stats stats;
    check_u64("table: stats", tg_table_get_stats(table, &stats), TG_STATUS_OK);
    check_u64("table: occupied", stats.occupied, TABLE_SLOTS);
    check_u64("table: rejected", stats.rejected, 1);
    t = sim_advance(16000);
    st = tg_table_decide(table, tg_key_pair(200, 0), 0, t, 1, &d);
    check_decision("table: a drained slot is reclaimed", st, &d, TG_OUTCOME_ALLOWED, 1, 29, 0, 500);
    group("key table (scripted, 15 slots in static memory)", before);
}

static void clock_across_hardware_wrap(void) {
    uint32_t before = failed;
    uint64_t first = now(), last = first;
    uint32_t steps_back = 0;
    check_u64("clock: starts at the raw counter",
              first >= UINT32_MAX - 300 && first < (uint64_t)UINT32_MAX, 1);
    while (last <= (uint64_t)UINT32_MAX + 20) {
        uint64_t t = now();
        if (t < last) {
            steps_back++;
        }
        last = t;
    }
    check_u64("clock: never steps back", steps_back, 0);
    check_u64("clock: raw counter wrapped", ticks < 1000, 1);
    group("wrapping clock on the hardware tick counter", before);
}

static void bucket_shared_with_interrupt(uint64_t span) {
    uint32_t before = failed;
    tg_decision d;
    check_u64("shared: init", tg_bucket_init(&shared, 64, 3, 2), TG_STATUS_OK);
    /* Fill at t_first, before the handler joins; from then on the bucket never empties. */
    uint64_t t_first = now(), main_admitted = 0, errors = 0;
    while (tg_bucket_decide(&shared, t_first, 1, &d) == TG_STATUS_OK &&
           d.outcome == TG_OUTCOME_ALLOWED) {
        main_admitted++;
    }
    check_u64("shared: filled at the start", main_admitted, 64);
    isr_active = true;
    for (;;) {
        uint64_t t = now();
        if (t >= t_first + span) {
            break;
        }
        main_deciding = true;
        tg_status st = tg_bucket_decide(&shared, t, 1, &d);
        main_deciding = false;
        if (st != TG_STATUS_OK) {
            errors++;
        } else if (d.outcome == TG_OUTCOME_ALLOWED) {
            main_admitted++;
        }
    }
    isr_active = false;
    uint64_t stop = now();
    while (now() < stop + 2) {
    }
    uint64_t t_end = now();
    while (tg_bucket_decide(&shared, t_end, 1, &d) == TG_STATUS_OK &&
           d.outcome == TG_OUTCOME_ALLOWED) {
        main_admitted++;
    }
    uint64_t bound = 64 + (t_end - t_first) * 3 / 2;
    check_u64("shared: main + interrupt = exact bound", main_admitted + isr_admitted, bound);
    check_u64("shared: no errors in main", errors, 0);
    check_u64("shared: no errors in the handler", isr_errors, 0);
    check_u64("shared: the handler got some", isr_admitted > 0, 1);
    check_u64("shared: the handler interrupted main mid-decision", interrupted_main > 0, 1);
    put_str("  shared bucket: main ");
    put_u64(main_admitted);
    put_str(" + handler ");
    put_u64(isr_admitted);
    put_str(" = bound ");
    put_u64(bound);
    put_str("; ");
    put_u64(interrupted_main);
    put_str(" handler runs inside a main decision");
    end_line();
    group("leaky bucket shared by main loop and SysTick handler", before);
}

int main(void) {
    put_str("tollgate firmware C thumbv7m-none-eabi: start, libtollgate ");
    put_u64(tg_version_number());
    end_line();
    check_u64("header and library versions agree", tg_version_number(), TG_VERSION_NUMBER);
    bucket_scripted();
    window_scripted();
    table_scripted();

    check_u64("clock: init", tg_wrapping_clock_init(&clock), TG_STATUS_OK);
    SYST_RVR = CYCLES_PER_TICK - 1;
    SYST_CVR = 0;
    SYST_CSR = 7; /* enable, interrupt, core clock */
    clock_across_hardware_wrap();
    bucket_shared_with_interrupt(1500);
    SYST_CSR = 0;

    put_str("tollgate firmware C thumbv7m-none-eabi: ");
    if (failed == 0) {
        put_str("PASS (");
        put_u64(passed);
        put_str(" checks)");
    } else {
        put_str("FAIL (");
        put_u64(failed);
        put_str(" of ");
        put_u64(passed + failed);
        put_str(" checks failed)");
    }
    end_line();
    sh_exit(failed == 0);
    return 0;
}
