/*
 * The client toolkit's C API (docs/semantics.md#client-toolkit): pacers over a leaky-bucket and a sliding-log mirror,
 * the header parsers, backoff, the retry budget, the retry classification and decision, and the
 * request queue — every function, with its success paths and every error path (NULL, misaligned
 * and uninitialised objects, NULL and misaligned out-parameters, bad arguments, malformed
 * headers). scripts/test-c.sh builds it like test_api.c (C99, -Wall -Wextra -Wpedantic -Werror,
 * ASan+UBSan) and counts the functions it calls in its "every function is called" check.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#define STATIC_ASSERT(cond, name) typedef char static_assert_##name[(cond) ? 1 : -1]

/* The layout C sees is the one Rust writes (Rust asserts its side at compile time). */
STATIC_ASSERT(sizeof(tg_bucket_pacer) == 8 * TG_BUCKET_PACER_WORDS, bucket_pacer_size);
STATIC_ASSERT(sizeof(tg_log_pacer) == 8 * TG_LOG_PACER_WORDS, log_pacer_size);
STATIC_ASSERT(sizeof(tg_backoff) == 8 * TG_BACKOFF_WORDS, backoff_size);
STATIC_ASSERT(sizeof(tg_retry_budget) == 8 * TG_RETRY_BUDGET_WORDS, budget_size);
STATIC_ASSERT(sizeof(tg_request_queue) == 8 * TG_REQUEST_QUEUE_WORDS, queue_size);
STATIC_ASSERT(sizeof(tg_pace) == 16 && offsetof(tg_pace, at) == 8, pace_layout);
STATIC_ASSERT(sizeof(tg_call_limit) == 16, call_limit_layout);
STATIC_ASSERT(sizeof(tg_next) == 16 && offsetof(tg_next, at) == 8, next_layout);
STATIC_ASSERT(sizeof(tg_release) == 24 && offsetof(tg_release, at) == 16, release_layout);
STATIC_ASSERT(TG_LOG_PACER_WORDS > TG_REQUEST_QUEUE_WORDS, scratch_fits_all);

#define MS 1000u /* a millisecond clock: 1000 ticks per second */
#define S(lit) (lit), (sizeof(lit) - 1) /* a string literal as (pointer, length) */

/* Memory used only through misaligned pointers: large enough for any object here. */
static union {
    uint64_t words[TG_LOG_PACER_WORDS + 2];
    unsigned char bytes[8 * (TG_LOG_PACER_WORDS + 2)];
} scratch;
#define MISALIGNED(type) ((type *)(void *)(scratch.bytes + 1))

/* Objects that are never initialised: a C static is zeroed, exactly TG_*_INIT. */
static tg_bucket_pacer zero_bucket_pacer = TG_BUCKET_PACER_INIT;
static tg_log_pacer zero_log_pacer = TG_LOG_PACER_INIT;
static tg_backoff zero_backoff = TG_BACKOFF_INIT;
static tg_retry_budget zero_budget = TG_RETRY_BUDGET_INIT;
static tg_request_queue zero_queue = TG_REQUEST_QUEUE_INIT;

static tg_bucket_pacer bp = TG_BUCKET_PACER_INIT;
static tg_log_pacer lp = TG_LOG_PACER_INIT;
static tg_request_queue queue = TG_REQUEST_QUEUE_INIT;

/* Sends at `now` until the pacer says wait; returns how many were sent. */
static unsigned send_all_bucket(tg_bucket_pacer *p, uint64_t now) {
    tg_pace pace;
    unsigned sent = 0;
    while (tg_bucket_pacer_acquire(p, now, 1, &pace) == TG_STATUS_OK &&
           pace.action == TG_PACE_ACTION_SEND && sent < 1000) {
        sent++;
    }
    return sent;
}

static unsigned send_all_log(tg_log_pacer *p, uint64_t now) {
    tg_pace pace;
    unsigned sent = 0;
    while (tg_log_pacer_acquire(p, now, 1, &pace) == TG_STATUS_OK &&
           pace.action == TG_PACE_ACTION_SEND && sent < 1000) {
        sent++;
    }
    return sent;
}

static void test_bucket_pacer(void) {
    tg_pace pace = {9, 9, 9};
    tg_release pace_release;
    tg_request_queue short_queue = TG_REQUEST_QUEUE_INIT;
    uint64_t t = 7, id = 0;
    bool found = false;

    /* init: every error, nothing written. */
    CHECK_STATUS(tg_bucket_pacer_init(NULL, 30, 2, MS, 0), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_pacer_init(MISALIGNED(tg_bucket_pacer), 30, 2, MS, 0),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_pacer_init(&bp, 0, 2, MS, 0), TG_STATUS_ZERO_BURST);
    CHECK_STATUS(tg_bucket_pacer_init(&bp, 30, 0, MS, 0), TG_STATUS_ZERO_COUNT);
    CHECK_STATUS(tg_bucket_pacer_init(&bp, 30, 2, 0, 0), TG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(tg_bucket_pacer_init(&bp, UINT64_MAX, 1, 2, 0), TG_STATUS_QUOTA_OVERFLOW);
    /* 15 s of jitter at 2/s is a margin of 30: nothing of the burst is left. */
    CHECK_STATUS(tg_bucket_pacer_init(&bp, 30, 2, MS, 15 * MS), TG_STATUS_CAPACITY_EXCEEDED);
    CHECK_STATUS(tg_bucket_pacer_acquire(&bp, 0, 1, &pace), TG_STATUS_UNINITIALIZED);

    /* ShopBase, no margin: 30 at once, then one every 500 ms. */
    CHECK_OK(tg_bucket_pacer_init(&bp, 30, 2, MS, 0));
    CHECK_OK(tg_bucket_pacer_next_send(&bp, 0, 1, &t));
    CHECK(t == 0);
    CHECK(send_all_bucket(&bp, 0) == 30);
    CHECK_OK(tg_bucket_pacer_acquire(&bp, 0, 1, &pace));
    CHECK(pace.action == TG_PACE_ACTION_WAIT && pace.at == 500 && pace.reserved == 0);
    CHECK_OK(tg_bucket_pacer_next_send(&bp, 0, 1, &t));
    CHECK(t == 500);
    CHECK_OK(tg_bucket_pacer_next_send(&bp, 0, 31, &t));
    CHECK(t == TG_RETRY_NEVER);
    CHECK_OK(tg_bucket_pacer_acquire(&bp, 0, 31, &pace));
    CHECK(pace.action == TG_PACE_ACTION_NEVER && pace.at == TG_RETRY_NEVER);
    /* reserve books successive slots. */
    CHECK_OK(tg_bucket_pacer_reserve(&bp, 0, 1, &t));
    CHECK(t == 500);
    CHECK_OK(tg_bucket_pacer_reserve(&bp, 0, 1, &t));
    CHECK(t == 1000);
    CHECK_OK(tg_bucket_pacer_reserve(&bp, 0, 31, &t));
    CHECK(t == TG_RETRY_NEVER);
    CHECK_OK(tg_bucket_pacer_acquire(&bp, 1500, 1, &pace));
    CHECK(pace.action == TG_PACE_ACTION_SEND && pace.at == 1500);
    /* A 429's Retry-After blocks every send until then; a shorter block does not shorten it. */
    CHECK_OK(tg_bucket_pacer_block_until(&bp, 5 * MS));
    CHECK_OK(tg_bucket_pacer_block_until(&bp, 4 * MS));
    CHECK_OK(tg_bucket_pacer_next_send(&bp, 2 * MS, 1, &t));
    CHECK(t == 5 * MS);
    CHECK_OK(tg_bucket_pacer_acquire(&bp, 2 * MS, 1, &pace));
    CHECK(pace.action == TG_PACE_ACTION_WAIT && pace.at == 5 * MS);
    CHECK_OK(tg_bucket_pacer_acquire(&bp, 5 * MS, 1, &pace));
    CHECK(pace.action == TG_PACE_ACTION_SEND);

    /* A margin for 200 ms of jitter: a mirror of 29. */
    CHECK_OK(tg_bucket_pacer_init(&bp, 30, 2, MS, 200));
    CHECK(send_all_bucket(&bp, 0) == 29);

    /* The server's count raises the mirror: "22/30" leaves 8. */
    CHECK_OK(tg_bucket_pacer_init(&bp, 30, 2, MS, 0));
    CHECK_OK(tg_bucket_pacer_observe_call_limit(&bp, 0, 22, 30));
    CHECK(send_all_bucket(&bp, 0) == 8);
    /* ... and never lowers it. */
    CHECK_OK(tg_bucket_pacer_observe_call_limit(&bp, 0, 0, 30));
    CHECK(send_all_bucket(&bp, 0) == 0);
    CHECK_STATUS(tg_bucket_pacer_observe_call_limit(&bp, 0, 31, 30), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_bucket_pacer_observe_call_limit(&bp, 0, 0, 0), TG_STATUS_INVALID_ARGUMENT);

    /* sync: "30/30" for a request sent at 0, "Retry-After: 2" received at 100. */
    CHECK_OK(tg_bucket_pacer_init(&bp, 30, 2, MS, 0));
    CHECK_OK(tg_bucket_pacer_sync(&bp, 0, 100, 1700000000u, MS, S("30/30"), S("2")));
    CHECK_OK(tg_bucket_pacer_next_send(&bp, 100, 1, &t));
    CHECK(t == 2100);
    /* Absent headers (NULL, 0) change nothing. */
    CHECK_OK(tg_bucket_pacer_sync(&bp, 0, 100, 1700000000u, MS, NULL, 0, NULL, 0));
    CHECK_OK(tg_bucket_pacer_next_send(&bp, 100, 1, &t));
    CHECK(t == 2100);
    /* An HTTP-date: 1994-11-06 08:49:37 UTC is Unix time 784111777; 30 s from now. */
    CHECK_OK(tg_bucket_pacer_init(&bp, 30, 2, MS, 0));
    CHECK_OK(tg_bucket_pacer_sync(&bp, 0, 0, 784111777u - 30, MS, NULL, 0,
                                  S("Sun, 06 Nov 1994 08:49:37 GMT")));
    CHECK_OK(tg_bucket_pacer_next_send(&bp, 0, 1, &t));
    CHECK(t == 30 * MS);
    /* A malformed count is reported, and the well-formed Retry-After still applied. */
    CHECK_OK(tg_bucket_pacer_init(&bp, 30, 2, MS, 0));
    CHECK_STATUS(tg_bucket_pacer_sync(&bp, 0, 0, 0, MS, S("x/30"), S("5")), TG_STATUS_MALFORMED);
    CHECK_OK(tg_bucket_pacer_next_send(&bp, 0, 1, &t));
    CHECK(t == 5 * MS);
    CHECK(send_all_bucket(&bp, 5 * MS) == 30); /* the garbled count was not trusted */
    /* A malformed Retry-After is reported, and the well-formed count still applied. */
    CHECK_OK(tg_bucket_pacer_init(&bp, 30, 2, MS, 0));
    CHECK_STATUS(tg_bucket_pacer_sync(&bp, 0, 0, 0, MS, S("25/30"), S("soon")),
                 TG_STATUS_MALFORMED);
    CHECK(send_all_bucket(&bp, 0) == 5);
    CHECK_STATUS(tg_bucket_pacer_sync(&bp, 0, 0, 0, MS, S("31/30"), NULL, 0),
                 TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_bucket_pacer_sync(&bp, 0, 0, 0, MS, "", 0, NULL, 0), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_bucket_pacer_sync(&bp, 0, 0, 0, 0, S("1/30"), NULL, 0),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_bucket_pacer_sync(&bp, 0, 0, 0, MS, NULL, 5, NULL, 0),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_pacer_sync(&bp, 0, 0, 0, MS, NULL, 0, NULL, 1),
                 TG_STATUS_NULL_POINTER);

    /* A quota whose exact span is short (999 983 per second on nanoseconds: ~5 hours): a time
     * beyond it is refused, never answered wrongly. */
    CHECK_OK(tg_bucket_pacer_init(&bp, 1, 999983, 1000000000u, 0));
    CHECK_STATUS(tg_bucket_pacer_next_send(&bp, UINT64_MAX / 2, 1, &t),
                 TG_STATUS_CLOCK_OUT_OF_RANGE);
    CHECK_STATUS(tg_bucket_pacer_acquire(&bp, UINT64_MAX / 2, 1, &pace),
                 TG_STATUS_CLOCK_OUT_OF_RANGE);
    CHECK_STATUS(tg_bucket_pacer_reserve(&bp, UINT64_MAX / 2, 1, &t),
                 TG_STATUS_CLOCK_OUT_OF_RANGE);
    CHECK_STATUS(tg_bucket_pacer_observe_call_limit(&bp, UINT64_MAX / 2, 1, 1),
                 TG_STATUS_CLOCK_OUT_OF_RANGE);
    CHECK_STATUS(tg_bucket_pacer_sync(&bp, UINT64_MAX / 2, 0, 0, MS, S("1/1"), NULL, 0),
                 TG_STATUS_CLOCK_OUT_OF_RANGE);
    CHECK_OK(tg_request_queue_init(&short_queue));
    CHECK_OK(tg_request_queue_push(&short_queue, 5));
    CHECK_STATUS(tg_request_queue_release_bucket(&short_queue, &bp, UINT64_MAX / 2, &pace_release),
                 TG_STATUS_CLOCK_OUT_OF_RANGE);
    CHECK_OK(tg_request_queue_pop(&short_queue, &found, &id)); /* the error lost no id */
    CHECK(found && id == 5);

    /* Zero cost. */
    CHECK_STATUS(tg_bucket_pacer_next_send(&bp, 0, 0, &t), TG_STATUS_ZERO_COST);
    CHECK_STATUS(tg_bucket_pacer_acquire(&bp, 0, 0, &pace), TG_STATUS_ZERO_COST);
    CHECK_STATUS(tg_bucket_pacer_reserve(&bp, 0, 0, &t), TG_STATUS_ZERO_COST);

    /* NULL, misaligned and uninitialised pacers; NULL and misaligned outs spend nothing. */
    CHECK_OK(tg_bucket_pacer_init(&bp, 1, 1, MS, 0));
    CHECK_STATUS(tg_bucket_pacer_acquire(&bp, 0, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_pacer_acquire(&bp, 0, 1, MISALIGNED(tg_pace)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_pacer_reserve(&bp, 0, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_pacer_reserve(&bp, 0, 1, MISALIGNED(uint64_t)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_pacer_next_send(&bp, 0, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_pacer_next_send(&bp, 0, 1, MISALIGNED(uint64_t)),
                 TG_STATUS_MISALIGNED);
    CHECK(send_all_bucket(&bp, 0) == 1); /* the one unit is still there */

    CHECK_STATUS(tg_bucket_pacer_next_send(NULL, 0, 1, &t), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_pacer_next_send(MISALIGNED(tg_bucket_pacer), 0, 1, &t),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_pacer_next_send(&zero_bucket_pacer, 0, 1, &t),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_bucket_pacer_acquire(NULL, 0, 1, &pace), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_pacer_acquire(MISALIGNED(tg_bucket_pacer), 0, 1, &pace),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_pacer_acquire(&zero_bucket_pacer, 0, 1, &pace),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_bucket_pacer_reserve(NULL, 0, 1, &t), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_pacer_reserve(MISALIGNED(tg_bucket_pacer), 0, 1, &t),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_pacer_reserve(&zero_bucket_pacer, 0, 1, &t), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_bucket_pacer_observe_call_limit(NULL, 0, 1, 30), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_pacer_observe_call_limit(MISALIGNED(tg_bucket_pacer), 0, 1, 30),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_pacer_observe_call_limit(&zero_bucket_pacer, 0, 1, 30),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_bucket_pacer_block_until(NULL, 1), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_pacer_block_until(MISALIGNED(tg_bucket_pacer), 1),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_pacer_block_until(&zero_bucket_pacer, 1), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_bucket_pacer_sync(NULL, 0, 0, 0, MS, NULL, 0, NULL, 0),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_pacer_sync(MISALIGNED(tg_bucket_pacer), 0, 0, 0, MS, NULL, 0, NULL, 0),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_pacer_sync(&zero_bucket_pacer, 0, 0, 0, MS, NULL, 0, NULL, 0),
                 TG_STATUS_UNINITIALIZED);
}

static void test_log_pacer(void) {
    tg_pace pace = {9, 9, 9};
    uint64_t t = 7;
    unsigned i;

    CHECK_STATUS(tg_log_pacer_init(NULL, 50, MS, 0), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_log_pacer_init(MISALIGNED(tg_log_pacer), 50, MS, 0), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_log_pacer_init(&lp, 0, MS, 0), TG_STATUS_ZERO_BURST);
    CHECK_STATUS(tg_log_pacer_init(&lp, 50, 0, 0), TG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(tg_log_pacer_init(&lp, TG_SLIDING_LOG_CAPACITY + 1, MS, 0),
                 TG_STATUS_CAPACITY_EXCEEDED);
    CHECK_STATUS(tg_log_pacer_init(&lp, TG_WINDOW_MAX_LIMIT + 1, MS, 0), TG_STATUS_QUOTA_OVERFLOW);
    CHECK_STATUS(tg_log_pacer_init(&lp, 50, UINT64_MAX, 1), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_log_pacer_acquire(&lp, 0, 1, &pace), TG_STATUS_UNINITIALIZED);

    /* TikTok Shop: 50 per second, sent 10 ms apart; the 51st waits for the first to leave. */
    CHECK_OK(tg_log_pacer_init(&lp, 50, MS, 0));
    for (i = 0; i < 50; i++) {
        CHECK_OK(tg_log_pacer_acquire(&lp, (uint64_t)i * 10, 1, &pace));
        CHECK(pace.action == TG_PACE_ACTION_SEND && pace.at == (uint64_t)i * 10);
    }
    CHECK_OK(tg_log_pacer_acquire(&lp, 500, 1, &pace));
    CHECK(pace.action == TG_PACE_ACTION_WAIT && pace.at == 1000);
    CHECK_OK(tg_log_pacer_next_send(&lp, 500, 1, &t));
    CHECK(t == 1000);
    CHECK_OK(tg_log_pacer_next_send(&lp, 500, 51, &t));
    CHECK(t == TG_RETRY_NEVER);
    CHECK_OK(tg_log_pacer_acquire(&lp, 500, 51, &pace));
    CHECK(pace.action == TG_PACE_ACTION_NEVER && pace.at == TG_RETRY_NEVER);
    CHECK_OK(tg_log_pacer_reserve(&lp, 500, 1, &t));
    CHECK(t == 1000);
    CHECK_OK(tg_log_pacer_reserve(&lp, 500, 1, &t));
    CHECK(t == 1010);
    CHECK_OK(tg_log_pacer_reserve(&lp, 500, 51, &t));
    CHECK(t == TG_RETRY_NEVER);
    CHECK_OK(tg_log_pacer_block_until(&lp, 3 * MS));
    CHECK_OK(tg_log_pacer_block_until(&lp, 2 * MS));
    CHECK_OK(tg_log_pacer_acquire(&lp, 2500, 1, &pace));
    CHECK(pace.action == TG_PACE_ACTION_WAIT && pace.at == 3 * MS);
    CHECK_OK(tg_log_pacer_acquire(&lp, 3 * MS, 1, &pace));
    CHECK(pace.action == TG_PACE_ACTION_SEND);

    /* A margin for 10 ms of jitter: 50 per 1010 ms. */
    CHECK_OK(tg_log_pacer_init(&lp, 50, MS, 10));
    CHECK(send_all_log(&lp, 0) == 50);
    CHECK_OK(tg_log_pacer_next_send(&lp, 0, 1, &t));
    CHECK(t == 1010);

    /* The server's count: "45/50" leaves 5; never lowered. */
    CHECK_OK(tg_log_pacer_init(&lp, 50, MS, 0));
    CHECK_OK(tg_log_pacer_observe_call_limit(&lp, 0, 45, 50));
    CHECK(send_all_log(&lp, 0) == 5);
    CHECK_OK(tg_log_pacer_observe_call_limit(&lp, 0, 1, 50));
    CHECK(send_all_log(&lp, 0) == 0);
    CHECK_STATUS(tg_log_pacer_observe_call_limit(&lp, 0, 51, 50), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_log_pacer_observe_call_limit(&lp, 0, 0, 0), TG_STATUS_INVALID_ARGUMENT);

    /* sync: a window server sends only Retry-After. */
    CHECK_OK(tg_log_pacer_init(&lp, 50, MS, 0));
    CHECK_OK(tg_log_pacer_sync(&lp, 0, 200, 0, MS, NULL, 0, S(" 1 ")));
    CHECK_OK(tg_log_pacer_next_send(&lp, 200, 1, &t));
    CHECK(t == 1200);
    /* "50/50" for a request sent at 500: the server's 50 units leave the window at 1500. */
    CHECK_OK(tg_log_pacer_sync(&lp, 500, 600, 0, MS, S("50/50"), NULL, 0));
    CHECK_OK(tg_log_pacer_next_send(&lp, 600, 1, &t));
    CHECK(t == 1500);
    CHECK(send_all_log(&lp, 1499) == 0);
    CHECK(send_all_log(&lp, 1500) == 50);
    CHECK_STATUS(tg_log_pacer_sync(&lp, 0, 0, 0, MS, NULL, 0, S("-1")), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_log_pacer_sync(&lp, 0, 0, 0, 0, NULL, 0, S("1")),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_log_pacer_sync(&lp, 0, 0, 0, MS, NULL, 2, NULL, 0), TG_STATUS_NULL_POINTER);

    CHECK_STATUS(tg_log_pacer_next_send(&lp, 0, 0, &t), TG_STATUS_ZERO_COST);
    CHECK_STATUS(tg_log_pacer_acquire(&lp, 0, 0, &pace), TG_STATUS_ZERO_COST);
    CHECK_STATUS(tg_log_pacer_reserve(&lp, 0, 0, &t), TG_STATUS_ZERO_COST);

    CHECK_OK(tg_log_pacer_init(&lp, 1, MS, 0));
    CHECK_STATUS(tg_log_pacer_acquire(&lp, 0, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_log_pacer_acquire(&lp, 0, 1, MISALIGNED(tg_pace)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_log_pacer_reserve(&lp, 0, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_log_pacer_next_send(&lp, 0, 1, MISALIGNED(uint64_t)), TG_STATUS_MISALIGNED);
    CHECK(send_all_log(&lp, 0) == 1);

    CHECK_STATUS(tg_log_pacer_next_send(NULL, 0, 1, &t), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_log_pacer_next_send(MISALIGNED(tg_log_pacer), 0, 1, &t),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_log_pacer_next_send(&zero_log_pacer, 0, 1, &t), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_log_pacer_acquire(NULL, 0, 1, &pace), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_log_pacer_acquire(MISALIGNED(tg_log_pacer), 0, 1, &pace),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_log_pacer_acquire(&zero_log_pacer, 0, 1, &pace), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_log_pacer_reserve(NULL, 0, 1, &t), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_log_pacer_reserve(MISALIGNED(tg_log_pacer), 0, 1, &t), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_log_pacer_reserve(&zero_log_pacer, 0, 1, &t), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_log_pacer_observe_call_limit(NULL, 0, 1, 50), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_log_pacer_observe_call_limit(MISALIGNED(tg_log_pacer), 0, 1, 50),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_log_pacer_observe_call_limit(&zero_log_pacer, 0, 1, 50),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_log_pacer_block_until(NULL, 1), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_log_pacer_block_until(MISALIGNED(tg_log_pacer), 1), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_log_pacer_block_until(&zero_log_pacer, 1), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_log_pacer_sync(NULL, 0, 0, 0, MS, NULL, 0, NULL, 0), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_log_pacer_sync(MISALIGNED(tg_log_pacer), 0, 0, 0, MS, NULL, 0, NULL, 0),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_log_pacer_sync(&zero_log_pacer, 0, 0, 0, MS, NULL, 0, NULL, 0),
                 TG_STATUS_UNINITIALIZED);
}

static void test_parsers(void) {
    tg_call_limit c = {7, 7};
    uint64_t s = 7;

    CHECK_OK(tg_call_limit_parse(S("22/30"), &c));
    CHECK(c.used == 22 && c.limit == 30);
    CHECK_OK(tg_call_limit_parse(S(" 30/30\t"), &c));
    CHECK(c.used == 30 && c.limit == 30);
    CHECK_OK(tg_call_limit_parse("1/2 and more", 3, &c)); /* only value_len bytes are read */
    CHECK(c.used == 1 && c.limit == 2);
    CHECK_OK(tg_call_limit_parse(S("18446744073709551615/18446744073709551615"), &c));
    CHECK(c.used == UINT64_MAX && c.limit == UINT64_MAX);
    c.used = 7;
    c.limit = 7;
    CHECK_STATUS(tg_call_limit_parse(S("31/30"), &c), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_call_limit_parse(S("0/0"), &c), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_call_limit_parse(S("22 / 30"), &c), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_call_limit_parse(S("22"), &c), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_call_limit_parse(S("/30"), &c), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_call_limit_parse(S("+1/30"), &c), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_call_limit_parse(S("1/18446744073709551616"), &c), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_call_limit_parse(S(""), &c), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_call_limit_parse(NULL, 0, &c), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_call_limit_parse(NULL, 5, &c), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_call_limit_parse(S("22/30"), NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_call_limit_parse(S("22/30"), MISALIGNED(tg_call_limit)), TG_STATUS_MISALIGNED);
    CHECK(c.used == 7 && c.limit == 7); /* never written on an error */

    CHECK_OK(tg_retry_after_parse(S("120"), 0, &s));
    CHECK(s == 120);
    CHECK_OK(tg_retry_after_parse(S("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777u - 30, &s));
    CHECK(s == 30);
    CHECK_OK(tg_retry_after_parse(S("Sunday, 06-Nov-94 08:49:37 GMT"), 784111770u, &s));
    CHECK(s == 7);
    CHECK_OK(tg_retry_after_parse(S("Sun Nov  6 08:49:37 1994"), 784111777u - 1, &s));
    CHECK(s == 1);
    CHECK_OK(tg_retry_after_parse(S("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777u + 5, &s));
    CHECK(s == 0); /* already past */
    s = 7;
    CHECK_STATUS(tg_retry_after_parse(S("Mon, 06 Nov 1994 08:49:37 GMT"), 0, &s),
                 TG_STATUS_MALFORMED); /* wrong weekday */
    CHECK_STATUS(tg_retry_after_parse(S("Tue, 29 Feb 2022 08:49:37 GMT"), 0, &s),
                 TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_retry_after_parse(S("-1"), 0, &s), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_retry_after_parse(S("12a"), 0, &s), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_retry_after_parse(S("99999999999999999999999"), 0, &s), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_retry_after_parse(S(""), 0, &s), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_retry_after_parse(NULL, 0, 0, &s), TG_STATUS_MALFORMED);
    CHECK_STATUS(tg_retry_after_parse(NULL, 3, 0, &s), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_after_parse(S("1"), 0, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_after_parse(S("1"), 0, MISALIGNED(uint64_t)), TG_STATUS_MISALIGNED);
    CHECK(s == 7);
}

static void test_backoff(void) {
    tg_backoff b = TG_BACKOFF_INIT, a = TG_BACKOFF_INIT, c = TG_BACKOFF_INIT;
    bool retry = false;
    uint64_t d = 7, da, dc, expected[6] = {100, 200, 400, 800, 1000, 1000};
    uint32_t n = 9;
    unsigned i;
    int differ = 0;

    CHECK_STATUS(tg_backoff_init(NULL, 100, 1000, 5, TG_JITTER_FULL, 1), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_backoff_init(MISALIGNED(tg_backoff), 100, 1000, 5, TG_JITTER_FULL, 1),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_backoff_init(&b, 0, 1000, 5, TG_JITTER_FULL, 1), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_backoff_init(&b, 100, 99, 5, TG_JITTER_FULL, 1), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_backoff_init(&b, 100, 1000, 5, 4, 1), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_backoff_next_delay(&b, 0, &retry, &d), TG_STATUS_UNINITIALIZED);

    /* No jitter: doubling up to the cap, then the retry limit. */
    CHECK_OK(tg_backoff_init(&b, 100, 1000, 6, TG_JITTER_NONE, 0));
    for (i = 0; i < 6; i++) {
        CHECK_OK(tg_backoff_next_delay(&b, 0, &retry, &d));
        CHECK(retry && d == expected[i]);
    }
    CHECK_OK(tg_backoff_next_delay(&b, 0, &retry, &d));
    CHECK(!retry && d == 0);
    CHECK_OK(tg_backoff_retries(&b, &n));
    CHECK(n == 6);
    /* reset: a fresh schedule, same policy. */
    CHECK_OK(tg_backoff_reset(&b));
    CHECK_OK(tg_backoff_retries(&b, &n));
    CHECK(n == 0);
    /* Retry-After is a floor, even above the cap. */
    CHECK_OK(tg_backoff_next_delay(&b, 5000, &retry, &d));
    CHECK(retry && d == 5000);
    CHECK_OK(tg_backoff_next_delay(&b, 0, &retry, &d));
    CHECK(retry && d == 200);

    /* Full jitter: within 0..=e; the same seed gives the same delays, another seed others. */
    CHECK_OK(tg_backoff_init(&a, 100, 100000, 20, TG_JITTER_FULL, 42));
    CHECK_OK(tg_backoff_init(&b, 100, 100000, 20, TG_JITTER_FULL, 42));
    CHECK_OK(tg_backoff_init(&c, 100, 100000, 20, TG_JITTER_FULL, 43));
    for (i = 0; i < 20; i++) {
        uint64_t e = 100u << (i < 10 ? i : 10);
        if (e > 100000) e = 100000;
        CHECK_OK(tg_backoff_next_delay(&a, 0, &retry, &da));
        CHECK_OK(tg_backoff_next_delay(&b, 0, &retry, &d));
        CHECK_OK(tg_backoff_next_delay(&c, 0, &retry, &dc));
        CHECK(da == d && da <= e && dc <= e);
        differ |= da != dc;
    }
    CHECK(differ);
    /* Equal jitter: within ceil(e/2)..=e. */
    CHECK_OK(tg_backoff_init(&b, 100, 1600, 5, TG_JITTER_EQUAL, 7));
    for (i = 0; i < 5; i++) {
        uint64_t e = 100u << i;
        CHECK_OK(tg_backoff_next_delay(&b, 0, &retry, &d));
        CHECK(retry && d >= (e + 1) / 2 && d <= e);
    }
    /* Decorrelated jitter: within base..=min(cap, 3 * previous). */
    CHECK_OK(tg_backoff_init(&b, 100, 2000, 30, TG_JITTER_DECORRELATED, 9));
    da = 100;
    for (i = 0; i < 30; i++) {
        uint64_t high = 3 * da < 2000 ? 3 * da : 2000;
        CHECK_OK(tg_backoff_next_delay(&b, 0, &retry, &d));
        CHECK(retry && d >= 100 && d <= high);
        da = d;
    }

    /* NULL and misaligned outs count nothing. */
    CHECK_OK(tg_backoff_init(&b, 100, 1000, 1, TG_JITTER_NONE, 0));
    CHECK_STATUS(tg_backoff_next_delay(&b, 0, NULL, &d), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_backoff_next_delay(&b, 0, &retry, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_backoff_next_delay(&b, 0, &retry, MISALIGNED(uint64_t)),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_backoff_retries(&b, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_backoff_retries(&b, MISALIGNED(uint32_t)), TG_STATUS_MISALIGNED);
    CHECK_OK(tg_backoff_retries(&b, &n));
    CHECK(n == 0);

    CHECK_STATUS(tg_backoff_next_delay(NULL, 0, &retry, &d), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_backoff_next_delay(MISALIGNED(tg_backoff), 0, &retry, &d),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_backoff_next_delay(&zero_backoff, 0, &retry, &d), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_backoff_retries(NULL, &n), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_backoff_retries(MISALIGNED(tg_backoff), &n), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_backoff_retries(&zero_backoff, &n), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_backoff_reset(NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_backoff_reset(MISALIGNED(tg_backoff)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_backoff_reset(&zero_backoff), TG_STATUS_UNINITIALIZED);
}

static void test_retry_budget(void) {
    tg_retry_budget b = TG_RETRY_BUDGET_INIT;
    uint64_t n = 7;
    bool ok = false;
    unsigned i;

    CHECK_STATUS(tg_retry_budget_init(NULL, 10 * MS, 100, 3), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_budget_init(MISALIGNED(tg_retry_budget), 10 * MS, 100, 3),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_retry_budget_init(&b, TG_RETRY_BUDGET_SLOTS - 1, 100, 3),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_retry_budget_available(&b, 0, &n), TG_STATUS_UNINITIALIZED);

    /* 10 % of the successes of the last 10 s, plus 3. */
    CHECK_OK(tg_retry_budget_init(&b, 10 * MS, 100, 3));
    CHECK_OK(tg_retry_budget_available(&b, 0, &n));
    CHECK(n == 3);
    for (i = 0; i < 50; i++) {
        CHECK_OK(tg_retry_budget_record_success(&b, 0));
    }
    CHECK_OK(tg_retry_budget_available(&b, 0, &n));
    CHECK(n == 8);
    CHECK_OK(tg_retry_budget_try_retry(&b, 0, &ok));
    CHECK(ok);
    CHECK_OK(tg_retry_budget_available(&b, 0, &n));
    CHECK(n == 7);
    CHECK_OK(tg_retry_budget_available(&b, 20 * MS, &n));
    CHECK(n == 3); /* 20 s later only the floor is left */

    /* A floor of 1 and no share: one retry, then refused (and a refusal records nothing). */
    CHECK_OK(tg_retry_budget_init(&b, 1000, 0, 1));
    CHECK_OK(tg_retry_budget_try_retry(&b, 0, &ok));
    CHECK(ok);
    CHECK_OK(tg_retry_budget_try_retry(&b, 0, &ok));
    CHECK(!ok);
    CHECK_OK(tg_retry_budget_available(&b, 0, &n));
    CHECK(n == 0);

    /* NULL and misaligned outs record nothing. */
    CHECK_OK(tg_retry_budget_init(&b, 1000, 0, 1));
    CHECK_STATUS(tg_retry_budget_try_retry(&b, 0, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_budget_available(&b, 0, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_budget_available(&b, 0, MISALIGNED(uint64_t)), TG_STATUS_MISALIGNED);
    CHECK_OK(tg_retry_budget_available(&b, 0, &n));
    CHECK(n == 1);

    CHECK_STATUS(tg_retry_budget_record_success(NULL, 0), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_budget_record_success(MISALIGNED(tg_retry_budget), 0),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_retry_budget_record_success(&zero_budget, 0), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_retry_budget_available(NULL, 0, &n), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_budget_available(MISALIGNED(tg_retry_budget), 0, &n),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_retry_budget_available(&zero_budget, 0, &n), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_retry_budget_try_retry(NULL, 0, &ok), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_budget_try_retry(MISALIGNED(tg_retry_budget), 0, &ok),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_retry_budget_try_retry(&zero_budget, 0, &ok), TG_STATUS_UNINITIALIZED);
}

static void test_classification(void) {
    uint32_t c = 9;
    static const uint32_t success[] = {100, 200, 201, 204, 301, 304, 399};
    static const uint32_t fatal[] = {0, 99, 400, 401, 403, 404, 409, 422, 500, 502, 504, 600,
                                     65535, 65536 + 429, UINT32_MAX};
    size_t i;

    for (i = 0; i < sizeof success / sizeof success[0]; i++) {
        CHECK_OK(tg_retry_class_of_status(success[i], &c));
        CHECK(c == TG_RETRY_CLASS_SUCCESS);
    }
    for (i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        CHECK_OK(tg_retry_class_of_status(fatal[i], &c));
        CHECK(c == TG_RETRY_CLASS_FATAL);
    }
    CHECK_OK(tg_retry_class_of_status(429, &c));
    CHECK(c == TG_RETRY_CLASS_RETRYABLE);
    CHECK_OK(tg_retry_class_of_status(503, &c));
    CHECK(c == TG_RETRY_CLASS_RETRYABLE);

    CHECK_OK(tg_retry_class_of_outcome(TG_OUTCOME_ALLOWED, &c));
    CHECK(c == TG_RETRY_CLASS_SUCCESS);
    CHECK_OK(tg_retry_class_of_outcome(TG_OUTCOME_LIMITED, &c));
    CHECK(c == TG_RETRY_CLASS_RETRYABLE);
    CHECK_OK(tg_retry_class_of_outcome(TG_OUTCOME_OVERLOADED, &c));
    CHECK(c == TG_RETRY_CLASS_RETRYABLE);
    CHECK_OK(tg_retry_class_of_outcome(TG_OUTCOME_NEVER, &c));
    CHECK(c == TG_RETRY_CLASS_FATAL);
    c = 9;
    CHECK_STATUS(tg_retry_class_of_outcome(4, &c), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_retry_class_of_outcome(UINT32_MAX, &c), TG_STATUS_INVALID_ARGUMENT);
    CHECK(c == 9);
    CHECK_OK(tg_retry_class_of_transport_error(&c));
    CHECK(c == TG_RETRY_CLASS_RETRYABLE);

    CHECK_STATUS(tg_retry_class_of_status(200, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_class_of_status(200, MISALIGNED(uint32_t)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_retry_class_of_outcome(0, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_class_of_outcome(0, MISALIGNED(uint32_t)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_retry_class_of_transport_error(NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_class_of_transport_error(MISALIGNED(uint32_t)), TG_STATUS_MISALIGNED);
}

static void test_next_step(void) {
    tg_backoff b = TG_BACKOFF_INIT;
    tg_retry_budget tight = TG_RETRY_BUDGET_INIT, roomy = TG_RETRY_BUDGET_INIT;
    tg_next next = {9, 9, 9};
    uint64_t n = 0;
    uint32_t r = 9;

    CHECK_OK(tg_backoff_init(&b, 10, 100, 2, TG_JITTER_NONE, 0));
    CHECK_OK(tg_retry_budget_init(&tight, 1000, 0, 1));
    CHECK_OK(tg_retry_budget_init(&roomy, 1000, 1000, 10));

    CHECK_OK(tg_retry_next_step(TG_RETRY_CLASS_RETRYABLE, 5, 0, &b, &tight, &next));
    CHECK(next.action == TG_NEXT_ACTION_RETRY && next.give_up == TG_GIVE_UP_NONE &&
          next.at == 15);
    /* The floor of 1 is spent: refused, and the refusal used no attempt. */
    CHECK_OK(tg_retry_next_step(TG_RETRY_CLASS_RETRYABLE, 5, 0, &b, &tight, &next));
    CHECK(next.action == TG_NEXT_ACTION_GIVE_UP && next.give_up == TG_GIVE_UP_BUDGET_EXHAUSTED &&
          next.at == 0);
    CHECK_OK(tg_backoff_retries(&b, &r));
    CHECK(r == 1);
    /* Retry-After of 50 ticks: not before 55. */
    CHECK_OK(tg_retry_next_step(TG_RETRY_CLASS_RETRYABLE, 5, 50, &b, &roomy, &next));
    CHECK(next.action == TG_NEXT_ACTION_RETRY && next.at == 55);
    CHECK_OK(tg_retry_next_step(TG_RETRY_CLASS_RETRYABLE, 5, 0, &b, &roomy, &next));
    CHECK(next.action == TG_NEXT_ACTION_GIVE_UP &&
          next.give_up == TG_GIVE_UP_ATTEMPTS_EXHAUSTED);
    CHECK_OK(tg_retry_budget_available(&roomy, 5, &n));
    CHECK(n == 9); /* exhausted attempts spend no budget */
    CHECK_OK(tg_retry_next_step(TG_RETRY_CLASS_FATAL, 5, 0, &b, &roomy, &next));
    CHECK(next.action == TG_NEXT_ACTION_GIVE_UP && next.give_up == TG_GIVE_UP_FATAL);
    /* A success is done, and recorded in the budget (100 % of successes: one more retry). */
    CHECK_OK(tg_retry_next_step(TG_RETRY_CLASS_SUCCESS, 5, 0, &b, &roomy, &next));
    CHECK(next.action == TG_NEXT_ACTION_DONE && next.give_up == TG_GIVE_UP_NONE && next.at == 0);
    CHECK_OK(tg_retry_budget_available(&roomy, 5, &n));
    CHECK(n == 10);

    /* Errors: nothing counted. */
    CHECK_OK(tg_backoff_reset(&b));
    next.action = 9;
    CHECK_STATUS(tg_retry_next_step(3, 5, 0, &b, &roomy, &next), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_retry_next_step(UINT32_MAX, 5, 0, &b, &roomy, &next),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_retry_next_step(TG_RETRY_CLASS_RETRYABLE, 5, 0, &b, &roomy, NULL),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_next_step(TG_RETRY_CLASS_RETRYABLE, 5, 0, &b, &roomy,
                                    MISALIGNED(tg_next)),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_retry_next_step(TG_RETRY_CLASS_RETRYABLE, 5, 0, NULL, &roomy, &next),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_next_step(TG_RETRY_CLASS_RETRYABLE, 5, 0, MISALIGNED(tg_backoff),
                                    &roomy, &next),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_retry_next_step(TG_RETRY_CLASS_RETRYABLE, 5, 0, &zero_backoff, &roomy, &next),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_retry_next_step(TG_RETRY_CLASS_RETRYABLE, 5, 0, &b, NULL, &next),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_retry_next_step(TG_RETRY_CLASS_RETRYABLE, 5, 0, &b,
                                    MISALIGNED(tg_retry_budget), &next),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_retry_next_step(TG_RETRY_CLASS_RETRYABLE, 5, 0, &b, &zero_budget, &next),
                 TG_STATUS_UNINITIALIZED);
    CHECK(next.action == 9);
    CHECK_OK(tg_backoff_retries(&b, &r));
    CHECK(r == 0);
    CHECK_OK(tg_retry_budget_available(&roomy, 5, &n));
    CHECK(n == 10);
}

static void test_request_queue(void) {
    tg_release rel = {9, 9, 9, 9};
    size_t len = 99;
    bool found = false;
    uint64_t id = 7, i;

    CHECK_STATUS(tg_request_queue_init(NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_init(MISALIGNED(tg_request_queue)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_request_queue_push(&queue, 1), TG_STATUS_UNINITIALIZED);
    CHECK_OK(tg_request_queue_init(&queue));
    CHECK_OK(tg_request_queue_len(&queue, &len));
    CHECK(len == 0);

    /* Paced by a bucket of 2, 1 per second. */
    CHECK_OK(tg_bucket_pacer_init(&bp, 2, 1, MS, 0));
    CHECK_OK(tg_request_queue_release_bucket(&queue, &bp, 0, &rel));
    CHECK(rel.action == TG_RELEASE_ACTION_EMPTY && rel.id == 0 && rel.at == 0);
    CHECK_OK(tg_request_queue_push(&queue, 10));
    CHECK_OK(tg_request_queue_push(&queue, 11));
    CHECK_OK(tg_request_queue_push(&queue, 12));
    CHECK_OK(tg_request_queue_len(&queue, &len));
    CHECK(len == 3);
    CHECK_OK(tg_request_queue_release_bucket(&queue, &bp, 0, &rel));
    CHECK(rel.action == TG_RELEASE_ACTION_SEND && rel.id == 10 && rel.at == 0);
    CHECK_OK(tg_request_queue_release_bucket(&queue, &bp, 0, &rel));
    CHECK(rel.action == TG_RELEASE_ACTION_SEND && rel.id == 11 && rel.at == 0);
    CHECK_OK(tg_request_queue_release_bucket(&queue, &bp, 0, &rel));
    CHECK(rel.action == TG_RELEASE_ACTION_WAIT && rel.at == MS && rel.id == 0);
    CHECK_OK(tg_request_queue_release_bucket(&queue, &bp, MS, &rel));
    CHECK(rel.action == TG_RELEASE_ACTION_SEND && rel.id == 12 && rel.at == MS);
    CHECK_OK(tg_request_queue_release_bucket(&queue, &bp, 5 * MS, &rel));
    CHECK(rel.action == TG_RELEASE_ACTION_EMPTY);

    /* Paced by a log of 1 per second. */
    CHECK_OK(tg_log_pacer_init(&lp, 1, MS, 0));
    CHECK_OK(tg_request_queue_push(&queue, 20));
    CHECK_OK(tg_request_queue_push(&queue, 21));
    CHECK_OK(tg_request_queue_release_log(&queue, &lp, 0, &rel));
    CHECK(rel.action == TG_RELEASE_ACTION_SEND && rel.id == 20 && rel.at == 0);
    CHECK_OK(tg_request_queue_release_log(&queue, &lp, 10, &rel));
    CHECK(rel.action == TG_RELEASE_ACTION_WAIT && rel.at == MS);
    CHECK_OK(tg_request_queue_release_log(&queue, &lp, MS, &rel));
    CHECK(rel.action == TG_RELEASE_ACTION_SEND && rel.id == 21 && rel.at == MS);
    CHECK_OK(tg_request_queue_release_log(&queue, &lp, MS, &rel));
    CHECK(rel.action == TG_RELEASE_ACTION_EMPTY);

    /* Full: TG_REQUEST_QUEUE_CAPACITY ids, then refused; pop drains in order. */
    for (i = 0; i < TG_REQUEST_QUEUE_CAPACITY; i++) {
        CHECK_OK(tg_request_queue_push(&queue, 100 + i));
    }
    CHECK_STATUS(tg_request_queue_push(&queue, 999), TG_STATUS_CAPACITY_EXCEEDED);
    CHECK_OK(tg_request_queue_len(&queue, &len));
    CHECK(len == TG_REQUEST_QUEUE_CAPACITY);
    for (i = 0; i < TG_REQUEST_QUEUE_CAPACITY; i++) {
        CHECK_OK(tg_request_queue_pop(&queue, &found, &id));
        CHECK(found && id == 100 + i);
    }
    CHECK_OK(tg_request_queue_pop(&queue, &found, &id));
    CHECK(!found && id == 0);

    /* Errors: bad outs take nothing. */
    CHECK_OK(tg_request_queue_push(&queue, 30));
    CHECK_OK(tg_bucket_pacer_init(&bp, 2, 1, MS, 0));
    CHECK_STATUS(tg_request_queue_pop(&queue, NULL, &id), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_pop(&queue, &found, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_pop(&queue, &found, MISALIGNED(uint64_t)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_request_queue_release_bucket(&queue, &bp, 0, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_release_bucket(&queue, &bp, 0, MISALIGNED(tg_release)),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_request_queue_release_log(&queue, &lp, 0, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_release_bucket(&queue, NULL, 0, &rel), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_release_bucket(&queue, MISALIGNED(tg_bucket_pacer), 0, &rel),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_request_queue_release_bucket(&queue, &zero_bucket_pacer, 0, &rel),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_request_queue_release_log(&queue, NULL, 0, &rel), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_release_log(&queue, MISALIGNED(tg_log_pacer), 0, &rel),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_request_queue_release_log(&queue, &zero_log_pacer, 0, &rel),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_request_queue_len(&queue, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_len(&queue, MISALIGNED(size_t)), TG_STATUS_MISALIGNED);
    CHECK_OK(tg_request_queue_len(&queue, &len));
    CHECK(len == 1);
    CHECK_OK(tg_request_queue_release_bucket(&queue, &bp, 0, &rel));
    CHECK(rel.action == TG_RELEASE_ACTION_SEND && rel.id == 30);

    CHECK_STATUS(tg_request_queue_push(NULL, 1), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_push(MISALIGNED(tg_request_queue), 1), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_request_queue_push(&zero_queue, 1), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_request_queue_pop(NULL, &found, &id), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_pop(MISALIGNED(tg_request_queue), &found, &id),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_request_queue_pop(&zero_queue, &found, &id), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_request_queue_len(NULL, &len), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_len(MISALIGNED(tg_request_queue), &len), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_request_queue_len(&zero_queue, &len), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_request_queue_release_bucket(NULL, &bp, 0, &rel), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_release_bucket(MISALIGNED(tg_request_queue), &bp, 0, &rel),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_request_queue_release_bucket(&zero_queue, &bp, 0, &rel),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_request_queue_release_log(NULL, &lp, 0, &rel), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_request_queue_release_log(MISALIGNED(tg_request_queue), &lp, 0, &rel),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_request_queue_release_log(&zero_queue, &lp, 0, &rel),
                 TG_STATUS_UNINITIALIZED);
}

int main(void) {
    test_bucket_pacer();
    test_log_pacer();
    test_parsers();
    test_backoff();
    test_retry_budget();
    test_classification();
    test_next_step();
    test_request_queue();
    return check_summary();
}
