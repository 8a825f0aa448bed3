/*
 * Every exported function of include/tollgate.h, called from C99 with every error path:
 * NULL, misaligned and uninitialised objects, NULL and misaligned out-parameters, bad
 * arguments, and the worked examples of docs/semantics.md (ShopBase, TikTok Shop).
 * scripts/test-c.sh builds it with -std=c99 -Wall -Wextra -Wpedantic -Werror under
 * AddressSanitizer and UndefinedBehaviorSanitizer, and checks that every function declared in
 * the header is named here.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#define STATIC_ASSERT(cond, name) typedef char static_assert_##name[(cond) ? 1 : -1]

/* The layout C sees is the one Rust writes (Rust asserts its side at compile time). */
STATIC_ASSERT(sizeof(tg_decision) == 56, decision_size);
STATIC_ASSERT(offsetof(tg_decision, limit) == 16, decision_limit);
STATIC_ASSERT(offsetof(tg_decision, reset_after) == 48, decision_reset_after);
STATIC_ASSERT(sizeof(tg_bucket) == 8 * TG_BUCKET_WORDS, bucket_size);
STATIC_ASSERT(sizeof(tg_window) == 8 * TG_WINDOW_WORDS, window_size);
STATIC_ASSERT(sizeof(tg_quota) == 8 * TG_QUOTA_WORDS, quota_size);
STATIC_ASSERT(sizeof(tg_sliding_log) == 8 * TG_SLIDING_LOG_WORDS, log_size);
STATIC_ASSERT(sizeof(tg_concurrency) == 8 * TG_CONCURRENCY_WORDS, concurrency_size);
STATIC_ASSERT(sizeof(tg_wrapping_clock) == 8 * TG_WRAPPING_CLOCK_WORDS, clock_size);
STATIC_ASSERT(TG_RETRY_NEVER == UINT64_MAX, retry_never);

#define MS 1000u /* a millisecond clock: 1000 ticks per second */

/* Memory used only through misaligned pointers: large enough for any object. */
static union {
    uint64_t words[TG_SLIDING_LOG_WORDS + 2];
    unsigned char bytes[8 * (TG_SLIDING_LOG_WORDS + 2)];
} scratch;
#define MISALIGNED(type) ((type *)(void *)(scratch.bytes + 1))

/* Objects that are never initialised: a C static is zeroed, exactly TG_*_INIT. */
static tg_bucket zero_bucket = TG_BUCKET_INIT;
static tg_window zero_window = TG_WINDOW_INIT;
static tg_quota zero_quota = TG_QUOTA_INIT;
static tg_sliding_log zero_log = TG_SLIDING_LOG_INIT;
static tg_concurrency zero_concurrency = TG_CONCURRENCY_INIT;
static tg_wrapping_clock zero_clock = TG_WRAPPING_CLOCK_INIT;

static int streq(const char *a, const char *b) { return strcmp(a, b) == 0; }

static void test_status_and_version(void) {
    uint32_t v;
    CHECK(streq(tg_status_str(TG_STATUS_OK), "ok"));
    CHECK(streq(tg_status_str(TG_STATUS_ZERO_COST), "cost must be at least 1"));
    CHECK(streq(tg_status_str(TG_STATUS_UNINITIALIZED),
                "object not initialised (call its _init function)"));
    /* Every listed value has its own text; unknown values are mapped, never undefined. */
    for (v = 0; v <= TG_STATUS_INVALID_ARGUMENT; v++) {
        CHECK(!streq(tg_status_str(v), "unknown status"));
    }
    for (v = TG_STATUS_NULL_POINTER; v <= TG_STATUS_UNKNOWN; v++) {
        CHECK(!streq(tg_status_str(v), "unknown status"));
    }
    CHECK(streq(tg_status_str(14), "unknown status"));
    CHECK(streq(tg_status_str(99), "unknown status"));
    CHECK(streq(tg_status_str(UINT32_MAX), "unknown status"));
    /* Values are explicit and stable. */
    CHECK(TG_STATUS_OK == 0 && TG_STATUS_ZERO_BURST == 1 && TG_STATUS_INVALID_ARGUMENT == 13);
    CHECK(TG_STATUS_NULL_POINTER == 100 && TG_STATUS_UNKNOWN == 105);

    CHECK(tg_version_number() == TG_VERSION_NUMBER);
    CHECK(TG_VERSION_NUMBER ==
          TG_VERSION_MAJOR * 10000 + TG_VERSION_MINOR * 100 + TG_VERSION_PATCH);
    CHECK(streq(tg_version_string(), TG_VERSION_STRING));
}

static void test_quota(void) {
    tg_quota q = TG_QUOTA_INIT;
    uint64_t u = 7, b, c, p;
    bool exact = false;

    CHECK_STATUS(tg_quota_init(NULL, 30, 2, MS), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_init(MISALIGNED(tg_quota), 30, 2, MS), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_quota_init(&q, 0, 2, MS), TG_STATUS_ZERO_BURST);
    CHECK_STATUS(tg_quota_init(&q, 30, 0, MS), TG_STATUS_ZERO_COUNT);
    CHECK_STATUS(tg_quota_init(&q, 30, 2, 0), TG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(tg_quota_init(&q, UINT64_MAX, 1, 2), TG_STATUS_QUOTA_OVERFLOW);
    CHECK_STATUS(tg_quota_init(&q, 10, 999983, 1000000000), TG_STATUS_SPAN_TOO_SHORT);
    /* Refused calls wrote nothing: q is still uninitialised. */
    CHECK_STATUS(tg_quota_exact_span(&q, &u), TG_STATUS_UNINITIALIZED);
    CHECK(u == 7);

    CHECK_OK(tg_quota_init(&q, 30, 2, MS));
    CHECK_OK(tg_quota_drain_ticks(&q, &u));
    CHECK(u == 15 * MS);
    CHECK_OK(tg_quota_exact_span(&q, &u));
    CHECK(u == UINT64_MAX - 30 * 500); /* C' = 1, P' = 500 */
    CHECK_OK(tg_quota_is_exact(&q, &exact));
    CHECK(exact);
    CHECK_OK(tg_quota_params(&q, &b, &c, &p));
    CHECK(b == 30 && c == 2 && p == MS);

    /* min_span: 0 accepts any quota that fits; too much is refused. */
    CHECK_OK(tg_quota_init_min_span(&q, 10, 999983, 1000000000, 0));
    CHECK_OK(tg_quota_exact_span(&q, &u));
    CHECK(u / 1000000000u / 3600u == 5); /* five hours of nanoseconds */
    CHECK_STATUS(tg_quota_init_min_span(&q, 1, 7, 1000000000, UINT64_MAX),
                 TG_STATUS_SPAN_TOO_SHORT);
    CHECK_STATUS(tg_quota_init_min_span(NULL, 1, 7, 1000, 0), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_init_min_span(&q, 0, 7, 1000, 0), TG_STATUS_ZERO_BURST);

    /* Approximate: a century of nanoseconds at 999 983/s, conservatively. */
    CHECK_OK(tg_quota_init_approximate(&q, 10, 999983, 1000000000,
                                       (uint64_t)100 * 365 * 86400 * 1000000000));
    CHECK_OK(tg_quota_is_exact(&q, &exact));
    CHECK(!exact);
    CHECK_OK(tg_quota_exact_span(&q, &u));
    CHECK(u >= (uint64_t)100 * 365 * 86400 * 1000000000);
    CHECK_OK(tg_quota_init_approximate(&q, 30, 2, MS, TG_QUOTA_DEFAULT_MIN_SPAN));
    CHECK_OK(tg_quota_is_exact(&q, &exact));
    CHECK(exact);
    CHECK_STATUS(tg_quota_init_approximate(NULL, 30, 2, MS, 0), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_init_approximate(&q, 30, 0, MS, 0), TG_STATUS_ZERO_COUNT);
    CHECK_STATUS(tg_quota_init_approximate(&q, 1, 1, 1, UINT64_MAX), TG_STATUS_SPAN_TOO_SHORT);

    /* Getters: NULL, misaligned, uninitialised quota; NULL and misaligned outs. */
    CHECK_STATUS(tg_quota_exact_span(NULL, &u), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_exact_span(MISALIGNED(tg_quota), &u), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_quota_exact_span(&zero_quota, &u), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_quota_exact_span(&q, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_exact_span(&q, MISALIGNED(uint64_t)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_quota_drain_ticks(NULL, &u), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_drain_ticks(MISALIGNED(tg_quota), &u), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_quota_drain_ticks(&zero_quota, &u), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_quota_drain_ticks(&q, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_drain_ticks(&q, MISALIGNED(uint64_t)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_quota_is_exact(NULL, &exact), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_is_exact(MISALIGNED(tg_quota), &exact), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_quota_is_exact(&zero_quota, &exact), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_quota_is_exact(&q, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_params(NULL, &b, &c, &p), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_params(MISALIGNED(tg_quota), &b, &c, &p), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_quota_params(&zero_quota, &b, &c, &p), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_quota_params(&q, NULL, &c, &p), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_params(&q, &b, NULL, &p), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_params(&q, &b, &c, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_quota_params(&q, &b, &c, MISALIGNED(uint64_t)), TG_STATUS_MISALIGNED);

    /* A quota is plain memory: a copy works. */
    {
        tg_quota copy = q;
        CHECK_OK(tg_quota_params(&copy, &b, &c, &p));
        CHECK(b == 30 && c == 2 && p == MS);
    }
}

static tg_bucket shop = TG_BUCKET_INIT; /* a static bucket, as the README shows */

static void test_bucket(void) {
    tg_decision d, keep;
    tg_quota q = TG_QUOTA_INIT;
    bool drained = false;
    int i;

    /* Uninitialised, NULL, misaligned, garbage, another type: refused, never UB. */
    CHECK_STATUS(tg_bucket_decide(&shop, 0, 1, &d), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_bucket_decide(&zero_bucket, 0, 1, &d), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_bucket_decide(NULL, 0, 1, &d), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_decide(MISALIGNED(tg_bucket), 0, 1, &d), TG_STATUS_MISALIGNED);
    {
        tg_bucket garbage;
        tg_window w = TG_WINDOW_INIT;
        memset(&garbage, 0xAB, sizeof garbage);
        CHECK_STATUS(tg_bucket_decide(&garbage, 0, 1, &d), TG_STATUS_UNINITIALIZED);
        CHECK_OK(tg_window_init(&w, 10, 100, 0));
        CHECK_STATUS(tg_bucket_decide((tg_bucket *)(void *)&w, 0, 1, &d),
                     TG_STATUS_UNINITIALIZED);
    }

    CHECK_STATUS(tg_bucket_init(NULL, 30, 2, MS), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_init(MISALIGNED(tg_bucket), 30, 2, MS), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_init(&shop, 0, 2, MS), TG_STATUS_ZERO_BURST);
    CHECK_STATUS(tg_bucket_init(&shop, 30, 0, MS), TG_STATUS_ZERO_COUNT);
    CHECK_STATUS(tg_bucket_init(&shop, 30, 2, 0), TG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(tg_bucket_init(&shop, UINT64_MAX, 1, 2), TG_STATUS_QUOTA_OVERFLOW);
    CHECK_STATUS(tg_bucket_init(&shop, 1, 999983, 1000000000), TG_STATUS_SPAN_TOO_SHORT);
    CHECK_STATUS(tg_bucket_decide(&shop, 0, 1, &d), TG_STATUS_UNINITIALIZED);

    /* ShopBase (docs/semantics.md#leaky-bucket): B = 30 draining 2 per second, on a millisecond clock. */
    CHECK_OK(tg_bucket_init(&shop, 30, 2, MS));
    for (i = 0; i < 29; i++) {
        CHECK_OK(tg_bucket_decide(&shop, 0, 1, &d));
    }
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.verdict == TG_OUTCOME_ALLOWED);
    CHECK(d.used == 29 && d.limit == 30 && d.remaining == 1 && d.retry_after == 0);
    CHECK(d.reset_after == 29 * 500 && d.flags == 0 && d.reserved == 0);
    CHECK_OK(tg_bucket_peek(&shop, 10 * MS, 1, &d)); /* ten seconds later: 9/30 */
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 9 && d.remaining == 21);
    CHECK_OK(tg_bucket_decide(&shop, 0, 1, &d)); /* the 30th at t = 0 */
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 30);
    CHECK_OK(tg_bucket_decide(&shop, 0, 1, &d)); /* the 31st: half a second */
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.verdict == TG_OUTCOME_LIMITED);
    CHECK(d.retry_after == 500 && d.used == 30 && d.remaining == 0 && d.reset_after == 15 * MS);
    CHECK_OK(tg_bucket_peek(&shop, 499, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 1);
    CHECK_OK(tg_bucket_decide(&shop, 500, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED);
    /* Cost above the burst: never, state unchanged; cost 0 is an error. */
    CHECK_OK(tg_bucket_decide(&shop, 500, 31, &d));
    CHECK(d.outcome == TG_OUTCOME_NEVER && d.retry_after == TG_RETRY_NEVER && d.used == 30);
    keep = d;
    CHECK_STATUS(tg_bucket_decide(&shop, 500, 0, &d), TG_STATUS_ZERO_COST);
    CHECK_STATUS(tg_bucket_peek(&shop, 500, 0, &d), TG_STATUS_ZERO_COST);
    CHECK(memcmp(&d, &keep, sizeof d) == 0); /* out written only on success */
    CHECK_STATUS(tg_bucket_decide(&shop, UINT64_MAX, 1, &d), TG_STATUS_CLOCK_OUT_OF_RANGE);
    CHECK_STATUS(tg_bucket_peek(&shop, UINT64_MAX, 1, &d), TG_STATUS_CLOCK_OUT_OF_RANGE);
    /* A bad out spends nothing: the bucket still has exactly one free slot at 1000 ms. */
    CHECK_STATUS(tg_bucket_decide(&shop, 1000, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_decide(&shop, 1000, 1, MISALIGNED(tg_decision)),
                 TG_STATUS_MISALIGNED);
    CHECK_OK(tg_bucket_decide(&shop, 1000, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED);
    CHECK_OK(tg_bucket_decide(&shop, 1000, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED);
    CHECK_STATUS(tg_bucket_peek(NULL, 0, 1, &d), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_peek(MISALIGNED(tg_bucket), 0, 1, &d), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_peek(&zero_bucket, 0, 1, &d), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_bucket_peek(&shop, 0, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_peek(&shop, 0, 1, MISALIGNED(tg_decision)), TG_STATUS_MISALIGNED);

    /* Drained, reset. */
    CHECK_OK(tg_bucket_is_drained(&shop, 1000, &drained));
    CHECK(!drained);
    CHECK_OK(tg_bucket_is_drained(&shop, 1000 + 15 * MS, &drained));
    CHECK(drained);
    CHECK_STATUS(tg_bucket_is_drained(NULL, 0, &drained), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_is_drained(MISALIGNED(tg_bucket), 0, &drained), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_is_drained(&zero_bucket, 0, &drained), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_bucket_is_drained(&shop, 0, NULL), TG_STATUS_NULL_POINTER);
    CHECK_OK(tg_bucket_reset(&shop));
    CHECK_OK(tg_bucket_is_drained(&shop, 1000, &drained));
    CHECK(drained);
    CHECK_STATUS(tg_bucket_reset(NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_reset(MISALIGNED(tg_bucket)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_reset(&zero_bucket), TG_STATUS_UNINITIALIZED);

    /* Quota: read back, change keeping the level, init from a quota. */
    CHECK_OK(tg_bucket_quota(&shop, &q));
    {
        uint64_t b, c, p;
        CHECK_OK(tg_quota_params(&q, &b, &c, &p));
        CHECK(b == 30 && c == 2 && p == MS);
    }
    CHECK_STATUS(tg_bucket_quota(NULL, &q), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_quota(MISALIGNED(tg_bucket), &q), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_quota(&zero_bucket, &q), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_bucket_quota(&shop, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_quota(&shop, MISALIGNED(tg_quota)), TG_STATUS_MISALIGNED);

    CHECK_OK(tg_bucket_decide(&shop, 0, 20, &d));
    CHECK_OK(tg_quota_init(&q, 60, 2, MS)); /* a larger bucket, same rate: the level carries */
    CHECK_OK(tg_bucket_set_quota(&shop, &q, 0));
    CHECK_OK(tg_bucket_peek(&shop, 0, 1, &d));
    CHECK(d.used == 20 && d.limit == 60);
    CHECK_OK(tg_quota_init(&q, 60, 4, MS)); /* a faster rate: the 10 s backlog keeps its time */
    CHECK_OK(tg_bucket_set_quota(&shop, &q, 0));
    CHECK_OK(tg_bucket_peek(&shop, 0, 1, &d));
    CHECK(d.used == 40 && d.limit == 60 && d.reset_after == 10 * MS);
    CHECK_OK(tg_quota_init(&q, 10, 1, MS)); /* down to 10 at 1/s: 40 carry by level, no burst */
    CHECK_OK(tg_bucket_set_quota(&shop, &q, 0));
    CHECK_OK(tg_bucket_peek(&shop, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 31 * MS);
    CHECK_STATUS(tg_bucket_set_quota(&shop, &q, UINT64_MAX), TG_STATUS_CLOCK_OUT_OF_RANGE);
    CHECK_STATUS(tg_bucket_set_quota(NULL, &q, 0), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_set_quota(MISALIGNED(tg_bucket), &q, 0), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_set_quota(&zero_bucket, &q, 0), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_bucket_set_quota(&shop, NULL, 0), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_bucket_set_quota(&shop, MISALIGNED(tg_quota), 0), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_bucket_set_quota(&shop, &zero_quota, 0), TG_STATUS_UNINITIALIZED);

    {
        tg_bucket local = TG_BUCKET_INIT; /* on the stack */
        CHECK_OK(tg_quota_init_approximate(&q, 2, 999983, 1000000000, UINT64_MAX / 4));
        CHECK_OK(tg_bucket_init_quota(&local, &q));
        CHECK_OK(tg_bucket_decide(&local, 0, 2, &d));
        CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.limit == 2);
        CHECK_OK(tg_bucket_decide(&local, 0, 1, &d));
        CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after >= 1001);
        CHECK_STATUS(tg_bucket_init_quota(NULL, &q), TG_STATUS_NULL_POINTER);
        CHECK_STATUS(tg_bucket_init_quota(MISALIGNED(tg_bucket), &q), TG_STATUS_MISALIGNED);
        CHECK_STATUS(tg_bucket_init_quota(&local, NULL), TG_STATUS_NULL_POINTER);
        CHECK_STATUS(tg_bucket_init_quota(&local, MISALIGNED(tg_quota)), TG_STATUS_MISALIGNED);
        CHECK_STATUS(tg_bucket_init_quota(&local, &zero_quota), TG_STATUS_UNINITIALIZED);
    }
}

static void test_decision(void) {
    tg_bucket b = TG_BUCKET_INIT;
    tg_decision d, bad;
    uint16_t http = 7;

    CHECK_OK(tg_bucket_init(&b, 1, 1, MS));
    CHECK_OK(tg_bucket_decide(&b, 0, 1, &d));
    CHECK_OK(tg_bucket_decide(&b, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED);
    /* Shadow mode: the request passes, the verdict and the flag tell what enforcement would do. */
    CHECK_OK(tg_decision_shadow(&d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.verdict == TG_OUTCOME_LIMITED);
    CHECK(d.flags == TG_DECISION_SHADOW && d.retry_after == MS);
    CHECK_STATUS(tg_decision_shadow(NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_decision_shadow(MISALIGNED(tg_decision)), TG_STATUS_MISALIGNED);
    bad = d;
    bad.verdict = 4;
    CHECK_STATUS(tg_decision_shadow(&bad), TG_STATUS_INVALID_ARGUMENT);
    CHECK(bad.verdict == 4 && bad.outcome == TG_OUTCOME_ALLOWED);
    bad = d;
    bad.flags = 8;
    CHECK_STATUS(tg_decision_shadow(&bad), TG_STATUS_INVALID_ARGUMENT);

    CHECK_OK(tg_outcome_http_status(TG_OUTCOME_ALLOWED, &http));
    CHECK(http == 0);
    CHECK_OK(tg_outcome_http_status(TG_OUTCOME_LIMITED, &http));
    CHECK(http == 429);
    CHECK_OK(tg_outcome_http_status(TG_OUTCOME_NEVER, &http));
    CHECK(http == 429);
    CHECK_OK(tg_outcome_http_status(TG_OUTCOME_OVERLOADED, &http));
    CHECK(http == 503);
    CHECK_STATUS(tg_outcome_http_status(4, &http), TG_STATUS_INVALID_ARGUMENT);
    CHECK(http == 503);
    CHECK_STATUS(tg_outcome_http_status(TG_OUTCOME_LIMITED, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_outcome_http_status(TG_OUTCOME_LIMITED, MISALIGNED(uint16_t)),
                 TG_STATUS_MISALIGNED);
}

static void test_window(void) {
    tg_window w = TG_WINDOW_INIT;
    tg_decision d;
    uint64_t u, l, win, off;
    bool drained;
    int i;

    CHECK_STATUS(tg_window_init(NULL, 50, MS, 0), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_init(MISALIGNED(tg_window), 50, MS, 0), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_window_init(&w, 0, MS, 0), TG_STATUS_ZERO_BURST);
    CHECK_STATUS(tg_window_init(&w, 50, 0, 0), TG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(tg_window_init(&w, TG_WINDOW_MAX_LIMIT + 1, MS, 0), TG_STATUS_QUOTA_OVERFLOW);
    CHECK_STATUS(tg_window_init(&w, 50, MS, MS), TG_STATUS_OFFSET_OUT_OF_RANGE);
    CHECK_STATUS(tg_window_decide(&w, 0, 1, &d), TG_STATUS_UNINITIALIZED);

    /* TikTok Shop: 50 per second. */
    CHECK_OK(tg_window_init(&w, 50, MS, 0));
    for (i = 0; i < 50; i++) {
        CHECK_OK(tg_window_decide(&w, 200, 1, &d));
    }
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 50 && d.remaining == 0);
    CHECK_OK(tg_window_decide(&w, 300, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 700 && d.reset_after == 700);
    CHECK_OK(tg_window_is_drained(&w, 999, &drained));
    CHECK(!drained);
    CHECK_OK(tg_window_is_drained(&w, 1000, &drained));
    CHECK(drained);
    CHECK_OK(tg_window_peek(&w, 1000, 50, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 0);
    CHECK_OK(tg_window_decide(&w, 1000, 51, &d));
    CHECK(d.outcome == TG_OUTCOME_NEVER && d.retry_after == TG_RETRY_NEVER);
    CHECK_STATUS(tg_window_decide(&w, 1000, 0, &d), TG_STATUS_ZERO_COST);
    CHECK_STATUS(tg_window_peek(&w, 1000, 0, &d), TG_STATUS_ZERO_COST);
    CHECK_STATUS(tg_window_decide(NULL, 0, 1, &d), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_decide(MISALIGNED(tg_window), 0, 1, &d), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_window_decide(&zero_window, 0, 1, &d), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_window_decide(&w, 0, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_decide(&w, 0, 1, MISALIGNED(tg_decision)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_window_peek(NULL, 0, 1, &d), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_peek(MISALIGNED(tg_window), 0, 1, &d), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_window_peek(&zero_window, 0, 1, &d), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_window_peek(&w, 0, 1, NULL), TG_STATUS_NULL_POINTER);

    CHECK_STATUS(tg_window_is_drained(NULL, 0, &drained), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_is_drained(MISALIGNED(tg_window), 0, &drained), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_window_is_drained(&zero_window, 0, &drained), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_window_is_drained(&w, 0, NULL), TG_STATUS_NULL_POINTER);

    CHECK_OK(tg_window_span(&w, &u));
    CHECK(u == UINT64_MAX);
    CHECK_STATUS(tg_window_span(NULL, &u), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_span(MISALIGNED(tg_window), &u), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_window_span(&zero_window, &u), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_window_span(&w, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_span(&w, MISALIGNED(uint64_t)), TG_STATUS_MISALIGNED);

    CHECK_OK(tg_window_reset(&w));
    CHECK_OK(tg_window_decide(&w, 300, 50, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED);
    CHECK_STATUS(tg_window_reset(NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_reset(MISALIGNED(tg_window)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_window_reset(&zero_window), TG_STATUS_UNINITIALIZED);

    /* An offset window; a 1-tick window of 2^32 - 1 has a short span. */
    {
        tg_window shifted = TG_WINDOW_INIT, tiny = TG_WINDOW_INIT;
        CHECK_OK(tg_window_init(&shifted, 2, 100, 30));
        CHECK_OK(tg_window_decide(&shifted, 0, 2, &d));
        CHECK(d.reset_after == 30);
        CHECK_OK(tg_window_init(&tiny, TG_WINDOW_MAX_LIMIT, 1, 0));
        CHECK_OK(tg_window_span(&tiny, &u));
        CHECK(u == ((uint64_t)1 << 32) - 2);
        CHECK_STATUS(tg_window_decide(&tiny, u + 1, 1, &d), TG_STATUS_CLOCK_OUT_OF_RANGE);
        CHECK_STATUS(tg_window_peek(&tiny, u + 1, 1, &d), TG_STATUS_CLOCK_OUT_OF_RANGE);
    }

    /* Changing the quota carries the count. */
    CHECK_OK(tg_window_set_quota(&w, 100, MS, 0, 300));
    CHECK_OK(tg_window_peek(&w, 300, 1, &d));
    CHECK(d.used == 50 && d.limit == 100);
    CHECK_OK(tg_window_params(&w, &l, &win, &off));
    CHECK(l == 100 && win == MS && off == 0);
    CHECK_STATUS(tg_window_set_quota(&w, 0, MS, 0, 300), TG_STATUS_ZERO_BURST);
    CHECK_STATUS(tg_window_set_quota(&w, 10, 0, 0, 300), TG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(tg_window_set_quota(&w, TG_WINDOW_MAX_LIMIT + 1, MS, 0, 300),
                 TG_STATUS_QUOTA_OVERFLOW);
    CHECK_STATUS(tg_window_set_quota(&w, 10, MS, MS, 300), TG_STATUS_OFFSET_OUT_OF_RANGE);
    CHECK_STATUS(tg_window_set_quota(&w, TG_WINDOW_MAX_LIMIT, 1, 0, UINT64_MAX),
                 TG_STATUS_CLOCK_OUT_OF_RANGE);
    CHECK_STATUS(tg_window_set_quota(NULL, 10, MS, 0, 0), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_set_quota(MISALIGNED(tg_window), 10, MS, 0, 0), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_window_set_quota(&zero_window, 10, MS, 0, 0), TG_STATUS_UNINITIALIZED);
    CHECK_OK(tg_window_params(&w, &l, &win, &off));
    CHECK(l == 100); /* nothing changed on error */
    CHECK_STATUS(tg_window_params(NULL, &l, &win, &off), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_params(MISALIGNED(tg_window), &l, &win, &off), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_window_params(&zero_window, &l, &win, &off), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_window_params(&w, NULL, &win, &off), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_params(&w, &l, NULL, &off), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_params(&w, &l, &win, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_window_params(&w, MISALIGNED(uint64_t), &win, &off), TG_STATUS_MISALIGNED);
}

static tg_sliding_log client_log = TG_SLIDING_LOG_INIT;

static void test_sliding_log(void) {
    tg_decision d;
    uint64_t t, used;
    int i;

    CHECK_STATUS(tg_sliding_log_init(NULL, 50, MS), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_sliding_log_init(MISALIGNED(tg_sliding_log), 50, MS), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_sliding_log_init(&client_log, 0, MS), TG_STATUS_ZERO_BURST);
    CHECK_STATUS(tg_sliding_log_init(&client_log, 50, 0), TG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(tg_sliding_log_init(&client_log, TG_SLIDING_LOG_CAPACITY + 1, MS),
                 TG_STATUS_CAPACITY_EXCEEDED);
    CHECK_STATUS(tg_sliding_log_init(&client_log, TG_WINDOW_MAX_LIMIT + 1, MS),
                 TG_STATUS_QUOTA_OVERFLOW);
    CHECK_STATUS(tg_sliding_log_decide(&client_log, 0, 1, &d), TG_STATUS_UNINITIALIZED);

    CHECK_OK(tg_sliding_log_init(&client_log, 50, MS));
    for (i = 0; i < 50; i++) {
        CHECK_OK(tg_sliding_log_decide(&client_log, (uint64_t)i * 10, 1, &d));
    }
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 50);
    CHECK_OK(tg_sliding_log_decide(&client_log, 600, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 400);
    CHECK_OK(tg_sliding_log_peek(&client_log, 1000, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 49);
    CHECK_OK(tg_sliding_log_next_admit_time(&client_log, 600, 2, &t));
    CHECK(t == 1010);
    CHECK_OK(tg_sliding_log_next_admit_time(&client_log, 600, 51, &t));
    CHECK(t == TG_RETRY_NEVER);
    CHECK_OK(tg_sliding_log_decide(&client_log, 1000, 51, &d));
    CHECK(d.outcome == TG_OUTCOME_NEVER);
    CHECK_OK(tg_sliding_log_used(&client_log, 1000, &used));
    CHECK(used == 49);
    CHECK_STATUS(tg_sliding_log_decide(&client_log, 1000, 0, &d), TG_STATUS_ZERO_COST);
    CHECK_STATUS(tg_sliding_log_peek(&client_log, 1000, 0, &d), TG_STATUS_ZERO_COST);
    CHECK_STATUS(tg_sliding_log_next_admit_time(&client_log, 1000, 0, &t), TG_STATUS_ZERO_COST);

    CHECK_STATUS(tg_sliding_log_decide(NULL, 0, 1, &d), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_sliding_log_decide(MISALIGNED(tg_sliding_log), 0, 1, &d),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_sliding_log_decide(&zero_log, 0, 1, &d), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_sliding_log_decide(&client_log, 0, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_sliding_log_decide(&client_log, 0, 1, MISALIGNED(tg_decision)),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_sliding_log_peek(NULL, 0, 1, &d), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_sliding_log_peek(MISALIGNED(tg_sliding_log), 0, 1, &d), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_sliding_log_peek(&zero_log, 0, 1, &d), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_sliding_log_peek(&client_log, 0, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_sliding_log_next_admit_time(NULL, 0, 1, &t), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_sliding_log_next_admit_time(MISALIGNED(tg_sliding_log), 0, 1, &t),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_sliding_log_next_admit_time(&zero_log, 0, 1, &t), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_sliding_log_next_admit_time(&client_log, 0, 1, NULL),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_sliding_log_next_admit_time(&client_log, 0, 1, MISALIGNED(uint64_t)),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_sliding_log_used(NULL, 0, &used), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_sliding_log_used(MISALIGNED(tg_sliding_log), 0, &used), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_sliding_log_used(&zero_log, 0, &used), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_sliding_log_used(&client_log, 0, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_sliding_log_used(&client_log, 0, MISALIGNED(uint64_t)), TG_STATUS_MISALIGNED);

    CHECK_OK(tg_sliding_log_reset(&client_log));
    CHECK_OK(tg_sliding_log_used(&client_log, 1000, &used));
    CHECK(used == 0);
    CHECK_STATUS(tg_sliding_log_reset(NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_sliding_log_reset(MISALIGNED(tg_sliding_log)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_sliding_log_reset(&zero_log), TG_STATUS_UNINITIALIZED);
}

/* The outcome-only calls: the same answers and state changes as _decide, scalars only, errors as
 * negated statuses. */
static void test_check(void) {
    tg_bucket b = TG_BUCKET_INIT, twin = TG_BUCKET_INIT;
    tg_window w = TG_WINDOW_INIT, huge = TG_WINDOW_INIT;
    tg_sliding_log *log = &client_log;
    tg_decision d, e;
    uint64_t seconds;
    int i;

    CHECK_OK(tg_bucket_init(&b, 30, 2, MS));
    CHECK_OK(tg_bucket_init(&twin, 30, 2, MS));
    for (i = 0; i < 31; i++) {
        int32_t got = tg_bucket_check(&b, 0, 1);
        CHECK_OK(tg_bucket_decide(&twin, 0, 1, &d));
        CHECK(got == (int32_t)d.outcome);
    }
    CHECK(tg_bucket_check(&b, 0, 1) == TG_OUTCOME_LIMITED);
    CHECK(tg_bucket_check(&b, 0, 31) == TG_OUTCOME_NEVER);
    CHECK_OK(tg_bucket_peek(&b, 500, 1, &d));
    CHECK_OK(tg_bucket_peek(&twin, 500, 1, &e));
    CHECK(d.used == e.used && d.used == 29 && d.outcome == TG_OUTCOME_ALLOWED);
    CHECK(tg_bucket_check(&b, 0, 0) == -(int32_t)TG_STATUS_ZERO_COST);
    CHECK(tg_bucket_check(&b, UINT64_MAX, 1) == -(int32_t)TG_STATUS_CLOCK_OUT_OF_RANGE);
    CHECK(tg_bucket_check(NULL, 0, 1) == -(int32_t)TG_STATUS_NULL_POINTER);
    CHECK(tg_bucket_check(MISALIGNED(tg_bucket), 0, 1) == -(int32_t)TG_STATUS_MISALIGNED);
    CHECK(tg_bucket_check(&zero_bucket, 0, 1) == -(int32_t)TG_STATUS_UNINITIALIZED);

    CHECK_OK(tg_window_init(&w, 2, MS, 0));
    CHECK(tg_window_check(&w, 0, 1) == TG_OUTCOME_ALLOWED);
    CHECK(tg_window_check(&w, 999, 1) == TG_OUTCOME_ALLOWED);
    CHECK(tg_window_check(&w, 999, 1) == TG_OUTCOME_LIMITED);
    CHECK(tg_window_check(&w, 1000, 3) == TG_OUTCOME_NEVER);
    CHECK(tg_window_check(&w, 1000, 2) == TG_OUTCOME_ALLOWED);
    CHECK(tg_window_check(&w, 1000, 0) == -(int32_t)TG_STATUS_ZERO_COST);
    CHECK(tg_window_check(NULL, 0, 1) == -(int32_t)TG_STATUS_NULL_POINTER);
    CHECK(tg_window_check(MISALIGNED(tg_window), 0, 1) == -(int32_t)TG_STATUS_MISALIGNED);
    CHECK(tg_window_check(&zero_window, 0, 1) == -(int32_t)TG_STATUS_UNINITIALIZED);

    CHECK_OK(tg_sliding_log_init(log, 2, 10));
    CHECK(tg_sliding_log_check(log, 0, 2) == TG_OUTCOME_ALLOWED);
    CHECK(tg_sliding_log_check(log, 9, 1) == TG_OUTCOME_LIMITED);
    CHECK(tg_sliding_log_check(log, 10, 1) == TG_OUTCOME_ALLOWED);
    CHECK(tg_sliding_log_check(log, 10, 3) == TG_OUTCOME_NEVER);
    CHECK(tg_sliding_log_check(log, 10, 0) == -(int32_t)TG_STATUS_ZERO_COST);
    CHECK(tg_sliding_log_check(NULL, 0, 1) == -(int32_t)TG_STATUS_NULL_POINTER);
    CHECK(tg_sliding_log_check(MISALIGNED(tg_sliding_log), 0, 1) == -(int32_t)TG_STATUS_MISALIGNED);
    CHECK(tg_sliding_log_check(&zero_log, 0, 1) == -(int32_t)TG_STATUS_UNINITIALIZED);

    /* A limited decision that truly waits 2^64 - 1 ticks is not "never": a window of
     * 2^64 - 1 ticks, full at 0, frees up at its end. */
    CHECK_OK(tg_window_init(&huge, 1, UINT64_MAX, 0));
    CHECK_OK(tg_window_decide(&huge, 0, 1, &d));
    CHECK_OK(tg_window_decide(&huge, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == UINT64_MAX);
    CHECK_OK(tg_header_retry_after_seconds(&d, 1, &seconds));
    CHECK(seconds == UINT64_MAX);
    CHECK_OK(tg_window_decide(&huge, 0, 2, &d));
    CHECK(d.outcome == TG_OUTCOME_NEVER && d.retry_after == TG_RETRY_NEVER);
    CHECK_OK(tg_header_retry_after_seconds(&d, 1, &seconds));
    CHECK(seconds == 0);
}

static void test_concurrency(void) {
    tg_concurrency c = TG_CONCURRENCY_INIT;
    tg_decision d;
    uint32_t n, max;

    CHECK_STATUS(tg_concurrency_init(NULL, 2), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_concurrency_init(MISALIGNED(tg_concurrency), 2), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_concurrency_acquire(&c, &d), TG_STATUS_UNINITIALIZED);
    CHECK_OK(tg_concurrency_init(&c, 2));
    CHECK_STATUS(tg_concurrency_release(&c), TG_STATUS_NOT_ACQUIRED);
    CHECK_OK(tg_concurrency_acquire(&c, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 1 && d.limit == 2);
    CHECK_OK(tg_concurrency_acquire(&c, &d));
    CHECK_OK(tg_concurrency_acquire(&c, &d));
    CHECK(d.outcome == TG_OUTCOME_OVERLOADED && d.retry_after == TG_RETRY_NEVER);
    CHECK(d.used == 2 && d.remaining == 0);
    CHECK_OK(tg_concurrency_in_flight(&c, &n, &max));
    CHECK(n == 2 && max == 2);
    /* A bad out takes no slot. */
    CHECK_OK(tg_concurrency_release(&c));
    CHECK_STATUS(tg_concurrency_acquire(&c, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_concurrency_acquire(&c, MISALIGNED(tg_decision)), TG_STATUS_MISALIGNED);
    CHECK_OK(tg_concurrency_in_flight(&c, &n, &max));
    CHECK(n == 1);
    CHECK_OK(tg_concurrency_release(&c));
    CHECK_STATUS(tg_concurrency_release(&c), TG_STATUS_NOT_ACQUIRED);
    CHECK_OK(tg_concurrency_in_flight(&c, &n, &max));
    CHECK(n == 0);
    CHECK_STATUS(tg_concurrency_acquire(NULL, &d), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_concurrency_acquire(MISALIGNED(tg_concurrency), &d), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_concurrency_acquire(&zero_concurrency, &d), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_concurrency_release(NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_concurrency_release(MISALIGNED(tg_concurrency)), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_concurrency_release(&zero_concurrency), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_concurrency_in_flight(NULL, &n, &max), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_concurrency_in_flight(MISALIGNED(tg_concurrency), &n, &max),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_concurrency_in_flight(&zero_concurrency, &n, &max), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_concurrency_in_flight(&c, NULL, &max), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_concurrency_in_flight(&c, &n, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_concurrency_in_flight(&c, MISALIGNED(uint32_t), &max), TG_STATUS_MISALIGNED);
    {
        tg_concurrency none = TG_CONCURRENCY_INIT;
        CHECK_OK(tg_concurrency_init(&none, 0));
        CHECK_OK(tg_concurrency_acquire(&none, &d));
        CHECK(d.outcome == TG_OUTCOME_OVERLOADED);
    }
}

static void test_header(void) {
    static const char name[] = "shopbase";
    tg_bucket b = TG_BUCKET_INIT;
    tg_quota q = TG_QUOTA_INIT;
    tg_decision d, bad;
    char buf[64];
    size_t n = 0;
    uint64_t s;

    CHECK(streq(TG_HEADER_SHOP_API_CALL_LIMIT, "X-Sb-Shop-Api-Call-Limit"));
    CHECK(streq(TG_HEADER_RETRY_AFTER, "Retry-After"));
    CHECK(streq(TG_HEADER_RATELIMIT, "RateLimit"));
    CHECK(streq(TG_HEADER_RATELIMIT_POLICY, "RateLimit-Policy"));

    CHECK_OK(tg_bucket_init(&b, 30, 2, MS));
    CHECK_OK(tg_bucket_decide(&b, 0, 22, &d));
    CHECK_OK(tg_header_shop_api_call_limit(&d, buf, sizeof buf, &n));
    CHECK(n == 5 && streq(buf, "22/30"));
    /* Too small: nothing written, the size needed (with the NUL) reported. */
    memset(buf, 'x', sizeof buf);
    CHECK_STATUS(tg_header_shop_api_call_limit(&d, buf, 5, &n), TG_STATUS_BUFFER_TOO_SMALL);
    CHECK(n == 6 && buf[0] == 'x' && buf[4] == 'x');
    CHECK_STATUS(tg_header_shop_api_call_limit(&d, NULL, 0, &n), TG_STATUS_BUFFER_TOO_SMALL);
    CHECK(n == 6);
    CHECK_OK(tg_header_shop_api_call_limit(&d, buf, 6, &n));
    CHECK(n == 5 && streq(buf, "22/30"));
    CHECK_STATUS(tg_header_shop_api_call_limit(NULL, buf, sizeof buf, &n), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_header_shop_api_call_limit(MISALIGNED(tg_decision), buf, sizeof buf, &n),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_header_shop_api_call_limit(&d, NULL, 8, &n), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_header_shop_api_call_limit(&d, buf, sizeof buf, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_header_shop_api_call_limit(&d, buf, sizeof buf, MISALIGNED(size_t)),
                 TG_STATUS_MISALIGNED);
    bad = d;
    bad.outcome = 9;
    CHECK_STATUS(tg_header_shop_api_call_limit(&bad, buf, sizeof buf, &n),
                 TG_STATUS_INVALID_ARGUMENT);

    /* RateLimit: "shopbase";r=8;t=11 (22 drained at 2/s: 11 s). */
    CHECK_OK(tg_header_ratelimit(&d, name, strlen(name), MS, buf, sizeof buf, &n));
    CHECK(streq(buf, "\"shopbase\";r=8;t=11") && n == strlen(buf));
    CHECK_STATUS(tg_header_ratelimit(&d, name, strlen(name), 0, buf, sizeof buf, &n),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_header_ratelimit(&d, "bad\"name", 8, MS, buf, sizeof buf, &n),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_header_ratelimit(&d, "caf\xc3", 4, MS, buf, sizeof buf, &n),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_header_ratelimit(&d, NULL, 3, MS, buf, sizeof buf, &n),
                 TG_STATUS_NULL_POINTER);
    CHECK_OK(tg_header_ratelimit(&d, NULL, 0, MS, buf, sizeof buf, &n)); /* empty name */
    CHECK(streq(buf, "\"\";r=8;t=11"));
    CHECK_STATUS(tg_header_ratelimit(&d, name, strlen(name), MS, buf, 4, &n),
                 TG_STATUS_BUFFER_TOO_SMALL);
    CHECK(n == strlen("\"shopbase\";r=8;t=11") + 1);
    CHECK_STATUS(tg_header_ratelimit(NULL, name, strlen(name), MS, buf, sizeof buf, &n),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_header_ratelimit(&bad, name, strlen(name), MS, buf, sizeof buf, &n),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_header_ratelimit(&d, name, strlen(name), MS, buf, sizeof buf, NULL),
                 TG_STATUS_NULL_POINTER);

    /* Retry-After: none for an allowed request; at least 1 s for a denial. */
    CHECK_OK(tg_header_retry_after_seconds(&d, MS, &s));
    CHECK(s == 0);
    CHECK_OK(tg_header_retry_after(&d, MS, buf, sizeof buf, &n));
    CHECK(n == 0 && buf[0] == '\0');
    CHECK_STATUS(tg_header_retry_after(&d, MS, NULL, 0, &n), TG_STATUS_BUFFER_TOO_SMALL);
    CHECK(n == 1);
    CHECK_OK(tg_bucket_decide(&b, 0, 9, &d)); /* 22 + 9 > 30: denied, 0.5 s */
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 500);
    CHECK_OK(tg_header_retry_after_seconds(&d, MS, &s));
    CHECK(s == 1);
    CHECK_OK(tg_header_retry_after(&d, MS, buf, sizeof buf, &n));
    CHECK(n == 1 && streq(buf, "1"));
    CHECK_STATUS(tg_header_retry_after(&d, MS, buf, 1, &n), TG_STATUS_BUFFER_TOO_SMALL);
    CHECK(n == 2);
    CHECK_STATUS(tg_header_retry_after(&d, 0, buf, sizeof buf, &n), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_header_retry_after(NULL, MS, buf, sizeof buf, &n), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_header_retry_after(&d, MS, buf, sizeof buf, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_header_retry_after(&bad, MS, buf, sizeof buf, &n), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_header_retry_after_seconds(&d, 0, &s), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_header_retry_after_seconds(NULL, MS, &s), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_header_retry_after_seconds(MISALIGNED(tg_decision), MS, &s),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_header_retry_after_seconds(&d, MS, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_header_retry_after_seconds(&d, MS, MISALIGNED(uint64_t)),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_header_retry_after_seconds(&bad, MS, &s), TG_STATUS_INVALID_ARGUMENT);

    /* RateLimit-Policy: ShopBase q=30;w=15; TikTok Shop q=50;w=1. */
    CHECK_OK(tg_bucket_quota(&b, &q));
    CHECK_OK(tg_header_ratelimit_policy_bucket(&q, name, strlen(name), MS, buf, sizeof buf, &n));
    CHECK(streq(buf, "\"shopbase\";q=30;w=15"));
    CHECK_STATUS(tg_header_ratelimit_policy_bucket(&q, name, strlen(name), 0, buf, sizeof buf, &n),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_header_ratelimit_policy_bucket(NULL, name, strlen(name), MS, buf, sizeof buf,
                                                   &n),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_header_ratelimit_policy_bucket(MISALIGNED(tg_quota), name, strlen(name), MS,
                                                   buf, sizeof buf, &n),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_header_ratelimit_policy_bucket(&zero_quota, name, strlen(name), MS, buf,
                                                   sizeof buf, &n),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_header_ratelimit_policy_bucket(&q, "a\\b", 3, MS, buf, sizeof buf, &n),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_header_ratelimit_policy_bucket(&q, name, strlen(name), MS, buf, 3, &n),
                 TG_STATUS_BUFFER_TOO_SMALL);
    CHECK(n == strlen("\"shopbase\";q=30;w=15") + 1);
    CHECK_STATUS(tg_header_ratelimit_policy_bucket(&q, name, strlen(name), MS, buf, sizeof buf,
                                                   NULL),
                 TG_STATUS_NULL_POINTER);

    CHECK_OK(tg_header_ratelimit_policy_window(50, MS, "tiktok", 6, MS, buf, sizeof buf, &n));
    CHECK(streq(buf, "\"tiktok\";q=50;w=1"));
    CHECK_STATUS(tg_header_ratelimit_policy_window(0, MS, "tiktok", 6, MS, buf, sizeof buf, &n),
                 TG_STATUS_ZERO_BURST);
    CHECK_STATUS(tg_header_ratelimit_policy_window(50, 0, "tiktok", 6, MS, buf, sizeof buf, &n),
                 TG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(tg_header_ratelimit_policy_window(TG_WINDOW_MAX_LIMIT + 1, MS, "tiktok", 6, MS,
                                                   buf, sizeof buf, &n),
                 TG_STATUS_QUOTA_OVERFLOW);
    CHECK_STATUS(tg_header_ratelimit_policy_window(50, MS, "tiktok", 6, 0, buf, sizeof buf, &n),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_header_ratelimit_policy_window(50, MS, "tik\ttok", 7, MS, buf, sizeof buf,
                                                   &n),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_header_ratelimit_policy_window(50, MS, NULL, 6, MS, buf, sizeof buf, &n),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_header_ratelimit_policy_window(50, MS, "tiktok", 6, MS, buf, 10, &n),
                 TG_STATUS_BUFFER_TOO_SMALL);
    CHECK(n == strlen("\"tiktok\";q=50;w=1") + 1);
    CHECK_STATUS(tg_header_ratelimit_policy_window(50, MS, "tiktok", 6, MS, buf, sizeof buf,
                                                   NULL),
                 TG_STATUS_NULL_POINTER);

    CHECK_OK(tg_header_ratelimit_policy(name, strlen(name), 30, 15, buf, sizeof buf, &n));
    CHECK(streq(buf, "\"shopbase\";q=30;w=15"));
    CHECK_STATUS(tg_header_ratelimit_policy("\x7f", 1, 30, 15, buf, sizeof buf, &n),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_header_ratelimit_policy(NULL, 1, 30, 15, buf, sizeof buf, &n),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_header_ratelimit_policy(name, strlen(name), 30, 15, buf, 20, &n),
                 TG_STATUS_BUFFER_TOO_SMALL);
    CHECK(n == 21);
    CHECK_STATUS(tg_header_ratelimit_policy(name, strlen(name), 30, 15, buf, sizeof buf, NULL),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_header_ratelimit_policy(name, strlen(name), 30, 15, NULL, 5, &n),
                 TG_STATUS_NULL_POINTER);
    /* The largest value: 20 digits each. */
    CHECK_OK(tg_header_ratelimit_policy("x", 1, UINT64_MAX, UINT64_MAX, buf, sizeof buf, &n));
    CHECK(streq(buf, "\"x\";q=18446744073709551615;w=18446744073709551615"));
}

static void test_pagination(void) {
    tg_outcome o = 99;
    static const char deep[] = "limit=250&page=401";

    CHECK(TG_PAGINATION_DEFAULT_MAX_OFFSET == 100000);
    CHECK_OK(tg_pagination_check(250, 401, TG_PAGINATION_DEFAULT_MAX_OFFSET, &o));
    CHECK(o == TG_OUTCOME_NEVER);
    CHECK_OK(tg_pagination_check(250, 400, TG_PAGINATION_DEFAULT_MAX_OFFSET, &o));
    CHECK(o == TG_OUTCOME_ALLOWED);
    /* 2^32 x 2^32 would wrap to 0 in 64 bits: it exceeds. */
    CHECK_OK(tg_pagination_check((uint64_t)1 << 32, (uint64_t)1 << 32, 100000, &o));
    CHECK(o == TG_OUTCOME_NEVER);
    CHECK_STATUS(tg_pagination_check(1, 1, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_pagination_check(1, 1, 1, MISALIGNED(tg_outcome)), TG_STATUS_MISALIGNED);

    CHECK_OK(tg_pagination_check_query(deep, strlen(deep), TG_PAGINATION_DEFAULT_MAX_OFFSET, &o));
    CHECK(o == TG_OUTCOME_NEVER);
    CHECK_OK(tg_pagination_check_query("fields=id&limit=250&page=400", 28,
                                       TG_PAGINATION_DEFAULT_MAX_OFFSET, &o));
    CHECK(o == TG_OUTCOME_ALLOWED);
    CHECK_OK(tg_pagination_check_query(NULL, 0, TG_PAGINATION_DEFAULT_MAX_OFFSET, &o));
    CHECK(o == TG_OUTCOME_ALLOWED);
    /* The length is honoured: the first 14 bytes hold no page. */
    CHECK_OK(tg_pagination_check_query(deep, 9, TG_PAGINATION_DEFAULT_MAX_OFFSET, &o));
    CHECK(o == TG_OUTCOME_ALLOWED);
    o = TG_OUTCOME_LIMITED;
    CHECK_STATUS(tg_pagination_check_query("limit=-1&page=2", 15, 100000, &o),
                 TG_STATUS_MALFORMED);
    CHECK(o == TG_OUTCOME_LIMITED);
    CHECK_STATUS(tg_pagination_check_query(NULL, 4, 100000, &o), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_pagination_check_query(deep, strlen(deep), 100000, NULL),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_pagination_check_query(deep, strlen(deep), 100000, MISALIGNED(tg_outcome)),
                 TG_STATUS_MISALIGNED);
}

static void test_presets(void) {
    tg_quota q = TG_QUOTA_INIT;
    tg_bucket b = TG_BUCKET_INIT;
    tg_window w = TG_WINDOW_INIT;
    tg_sliding_log l = TG_SLIDING_LOG_INIT;
    tg_decision d;
    uint64_t burst, count, period;

    CHECK(TG_PRESET_SHOPBASE_BURST == 30 && TG_PRESET_SHOPBASE_PER_SECOND == 2);
    CHECK(TG_PRESET_SHOPBASE_MAX_OFFSET == 100000 && TG_PRESET_TIKTOK_SHOP_PER_SECOND == 50);

    CHECK_OK(tg_preset_shopbase_quota(1000000, &q)); /* a microsecond clock */
    CHECK_OK(tg_quota_params(&q, &burst, &count, &period));
    CHECK(burst == 30 && count == 2 && period == 1000000);
    CHECK_STATUS(tg_preset_shopbase_quota(0, &q), TG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(tg_preset_shopbase_quota(MS, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_preset_shopbase_quota(MS, MISALIGNED(tg_quota)), TG_STATUS_MISALIGNED);

    CHECK_OK(tg_preset_shopbase_bucket_init(&b, MS));
    CHECK_OK(tg_bucket_decide(&b, 0, 30, &d));
    CHECK_OK(tg_bucket_decide(&b, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 500);
    CHECK_STATUS(tg_preset_shopbase_bucket_init(&b, 0), TG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(tg_preset_shopbase_bucket_init(NULL, MS), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_preset_shopbase_bucket_init(MISALIGNED(tg_bucket), MS), TG_STATUS_MISALIGNED);

    CHECK_OK(tg_preset_tiktok_shop_window_init(&w, MS));
    CHECK_OK(tg_window_decide(&w, 0, 50, &d));
    CHECK_OK(tg_window_decide(&w, 999, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 1);
    CHECK_STATUS(tg_preset_tiktok_shop_window_init(&w, 0), TG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(tg_preset_tiktok_shop_window_init(NULL, MS), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_preset_tiktok_shop_window_init(MISALIGNED(tg_window), MS),
                 TG_STATUS_MISALIGNED);

    CHECK_OK(tg_preset_tiktok_shop_client_log_init(&l, MS, 10));
    CHECK_OK(tg_sliding_log_decide(&l, 0, 50, &d));
    CHECK_OK(tg_sliding_log_decide(&l, MS, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 10); /* W + J = 1010 */
    CHECK_STATUS(tg_preset_tiktok_shop_client_log_init(&l, 0, 0), TG_STATUS_ZERO_PERIOD);
    CHECK_STATUS(tg_preset_tiktok_shop_client_log_init(&l, UINT64_MAX, 1),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_preset_tiktok_shop_client_log_init(NULL, MS, 0), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_preset_tiktok_shop_client_log_init(MISALIGNED(tg_sliding_log), MS, 0),
                 TG_STATUS_MISALIGNED);
}

/* A fake hardware counter for the wrapping clock. */
static uint32_t read_counter(void *context) { return *(const uint32_t *)context; }

static tg_wrapping_clock systick = TG_WRAPPING_CLOCK_INIT;

static void test_wrapping_clock(void) {
    uint32_t hw = UINT32_MAX - 5; /* about to wrap */
    uint64_t before = 0, after = 0, last = 0;

    CHECK_STATUS(tg_wrapping_clock_now(&systick, read_counter, &hw, &before),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_wrapping_clock_init(NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_wrapping_clock_init(MISALIGNED(tg_wrapping_clock)), TG_STATUS_MISALIGNED);
    CHECK_OK(tg_wrapping_clock_init(&systick));
    CHECK_OK(tg_wrapping_clock_now(&systick, read_counter, &hw, &before));
    CHECK(before == UINT32_MAX - 5);
    hw += 10; /* it wrapped */
    CHECK_OK(tg_wrapping_clock_now(&systick, read_counter, &hw, &after));
    CHECK(after - before == 10 && after == ((uint64_t)1 << 32) + 4);
    CHECK_OK(tg_wrapping_clock_last(&systick, &last));
    CHECK(last == after);
    CHECK_STATUS(tg_wrapping_clock_now(&systick, NULL, &hw, &after), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_wrapping_clock_now(&systick, read_counter, &hw, NULL),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_wrapping_clock_now(&systick, read_counter, &hw, MISALIGNED(uint64_t)),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_wrapping_clock_now(NULL, read_counter, &hw, &after), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_wrapping_clock_now(MISALIGNED(tg_wrapping_clock), read_counter, &hw, &after),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_wrapping_clock_now(&zero_clock, read_counter, &hw, &after),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_wrapping_clock_last(NULL, &last), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_wrapping_clock_last(MISALIGNED(tg_wrapping_clock), &last),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_wrapping_clock_last(&zero_clock, &last), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_wrapping_clock_last(&systick, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_wrapping_clock_last(&systick, MISALIGNED(uint64_t)), TG_STATUS_MISALIGNED);
}


/* C99 has no _Alignas: the GCC/Clang attribute (C11 code would write _Alignas). */
#define ALIGNED_TABLE __attribute__((aligned(TG_TABLE_ALIGN)))

static unsigned char table_mem[TG_TABLE_SIZE(1024, 2) + 64] ALIGNED_TABLE;
static unsigned char small_mem[TG_TABLE_SIZE(5, 1)] ALIGNED_TABLE;
static unsigned char zero_table_mem[TG_TABLE_SIZE(5, 1)] ALIGNED_TABLE; /* never initialised */

static int all_bytes(const unsigned char *p, size_t n, unsigned char v) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (p[i] != v) return 0;
    }
    return 1;
}

static int key_eq(tg_key a, tg_key b) { return a.hi == b.hi && a.lo == b.lo; }

static unsigned char check_mem[TG_TABLE_SIZE(64, 1)] ALIGNED_TABLE;
static unsigned char twin_mem[TG_TABLE_SIZE(64, 1)] ALIGNED_TABLE;

/* The scalar table calls: the key as two integers, the outcome returned, the full decision
 * optional; the same state as tg_table_decide/tg_table_peek on a twin. */
static void test_table_check(void) {
    tg_quota q = TG_QUOTA_INIT;
    tg_table *t = NULL, *twin = NULL;
    tg_decision d, e;
    tg_key shop = tg_key_pair(7, 42);
    int i;

    CHECK_OK(tg_quota_init(&q, 3, 1, MS));
    CHECK_OK(tg_table_init_buckets(check_mem, sizeof check_mem, 64, &q, 1,
                                   TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &t));
    CHECK_OK(tg_table_init_buckets(twin_mem, sizeof twin_mem, 64, &q, 1,
                                   TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &twin));
    CHECK(shop.hi == 7 && shop.lo == 42); /* an (app, shop) pair's halves are app and shop */
    for (i = 0; i < 5; i++) {
        int32_t got = tg_table_check(t, 7, 42, 0, 0, 1, NULL);
        CHECK_OK(tg_table_decide(twin, shop, 0, 0, 1, &d));
        CHECK(got == (int32_t)d.outcome);
    }
    CHECK(tg_table_check(t, 7, 42, 0, 0, 4, NULL) == TG_OUTCOME_NEVER);
    CHECK_OK(tg_table_decide(twin, shop, 0, 0, 4, &d));
    /* With a decision asked for: the outcome and the numbers. */
    CHECK(tg_table_check(t, 7, 42, 0, 1000, 1, &d) == TG_OUTCOME_ALLOWED);
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 3 && d.limit == 3);
    CHECK_OK(tg_table_decide(twin, shop, 0, 1000, 1, &e));
    CHECK(memcmp(&d, &e, sizeof d) == 0);
    CHECK_OK(tg_table_peek_key(t, 7, 42, 0, 1000, 1, &d));
    CHECK_OK(tg_table_peek(twin, shop, 0, 1000, 1, &e));
    CHECK(memcmp(&d, &e, sizeof d) == 0 && d.outcome == TG_OUTCOME_LIMITED);
    CHECK(memcmp(check_mem, twin_mem, sizeof check_mem) == 0); /* word for word */
    /* Errors: negated statuses, nothing changed. */
    CHECK(tg_table_check(t, 7, 42, 1, 0, 1, NULL) == -(int32_t)TG_STATUS_INVALID_ARGUMENT);
    CHECK(tg_table_check(t, 7, 42, 0, 0, 0, NULL) == -(int32_t)TG_STATUS_ZERO_COST);
    CHECK(tg_table_check(NULL, 7, 42, 0, 0, 1, NULL) == -(int32_t)TG_STATUS_NULL_POINTER);
    CHECK(tg_table_check((tg_table *)(void *)zero_table_mem, 7, 42, 0, 0, 1, NULL) ==
          -(int32_t)TG_STATUS_UNINITIALIZED);
    CHECK(tg_table_check(t, 7, 42, 0, 0, 1, MISALIGNED(tg_decision)) ==
          -(int32_t)TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_peek_key(t, 7, 42, 0, 0, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK(memcmp(check_mem, twin_mem, sizeof check_mem) == 0);

    /* In bulk: each result as tg_table_check would give it, in order, errors per request. */
    {
        const uint64_t hi[5] = {7, 7, 8, 8, 8}, lo[5] = {42, 43, 1, 1, 1};
        int32_t results[5] = {9, 9, 9, 9, 9}, untouched[2] = {9, 9};
        CHECK_OK(tg_table_check_many(t, hi, lo, 5, 0, 2000, 1, results));
        for (i = 0; i < 5; i++) {
            CHECK(results[i] == tg_table_check(twin, hi[i], lo[i], 0, 2000, 1, NULL));
        }
        CHECK(results[2] == TG_OUTCOME_ALLOWED && results[4] == TG_OUTCOME_ALLOWED);
        CHECK(memcmp(check_mem, twin_mem, sizeof check_mem) == 0);
        CHECK_OK(tg_table_check_many(t, hi, lo, 2, 0, 2000, 0, results));
        CHECK(results[0] == -(int32_t)TG_STATUS_ZERO_COST &&
              results[1] == -(int32_t)TG_STATUS_ZERO_COST);
        CHECK_OK(tg_table_check_many(t, NULL, NULL, 0, 0, 2000, 1, NULL)); /* nothing to do */
        CHECK_STATUS(tg_table_check_many(t, NULL, lo, 2, 0, 2000, 1, untouched),
                     TG_STATUS_NULL_POINTER);
        CHECK_STATUS(tg_table_check_many(t, hi, lo, 2, 0, 2000, 1, NULL), TG_STATUS_NULL_POINTER);
        CHECK_STATUS(tg_table_check_many(t, hi, lo, SIZE_MAX, 0, 2000, 1, untouched),
                     TG_STATUS_INVALID_ARGUMENT);
        CHECK_STATUS(tg_table_check_many(NULL, hi, lo, 2, 0, 2000, 1, untouched),
                     TG_STATUS_NULL_POINTER);
        CHECK(untouched[0] == 9 && untouched[1] == 9);
        CHECK(memcmp(check_mem, twin_mem, sizeof check_mem) == 0);
    }
    /* More keys than the library hands to the table at a time (16), some listed four times
     * (above the burst of 3), some new: still each result as tg_table_check in order. */
    {
        uint64_t hi[40], lo[40];
        int32_t results[40];
        int limited = 0;
        for (i = 0; i < 40; i++) {
            hi[i] = 9;
            lo[i] = (uint64_t)(i % 11);
        }
        CHECK_OK(tg_table_check_many(t, hi, lo, 40, 0, 3000, 1, results));
        for (i = 0; i < 40; i++) {
            CHECK(results[i] == tg_table_check(twin, hi[i], lo[i], 0, 3000, 1, NULL));
            limited += results[i] == TG_OUTCOME_LIMITED;
        }
        CHECK(limited == 7); /* keys 0 to 6 are listed four times: the fourth is over */
        CHECK(memcmp(check_mem, twin_mem, sizeof check_mem) == 0);
    }
    /* Full decisions in bulk: each as tg_table_check with an out-parameter, in order. */
    {
        uint64_t hi[20], lo[20];
        int32_t results[20], untouched[2] = {9, 9};
        tg_decision ds[20], one;
        for (i = 0; i < 20; i++) {
            hi[i] = 10;
            lo[i] = (uint64_t)(i % 6); /* keys 0 and 1 four times, above the burst of 3 */
        }
        CHECK_OK(tg_table_decide_many(t, hi, lo, 20, 0, 4000, 1, ds, results));
        for (i = 0; i < 20; i++) {
            CHECK(results[i] == tg_table_check(twin, hi[i], lo[i], 0, 4000, 1, &one));
            CHECK(memcmp(&ds[i], &one, sizeof one) == 0);
            CHECK(results[i] == (int32_t)ds[i].outcome);
        }
        CHECK(ds[18].outcome == TG_OUTCOME_LIMITED && ds[18].used == 3 && ds[18].limit == 3);
        CHECK(memcmp(check_mem, twin_mem, sizeof check_mem) == 0);
        /* A request's error: its result, its decision left as it was. */
        memset(ds, 0xab, sizeof ds);
        CHECK_OK(tg_table_decide_many(t, hi, lo, 2, 0, 4000, 0, ds, results));
        CHECK(results[0] == -(int32_t)TG_STATUS_ZERO_COST &&
              results[1] == -(int32_t)TG_STATUS_ZERO_COST);
        CHECK(all_bytes((const unsigned char *)ds, sizeof ds, 0xab));
        CHECK_OK(tg_table_decide_many(t, NULL, NULL, 0, 0, 4000, 1, NULL, NULL));
        CHECK_STATUS(tg_table_decide_many(t, hi, lo, 2, 0, 4000, 1, NULL, untouched),
                     TG_STATUS_NULL_POINTER);
        CHECK_STATUS(tg_table_decide_many(t, hi, lo, 2, 0, 4000, 1, ds, NULL),
                     TG_STATUS_NULL_POINTER);
        CHECK_STATUS(tg_table_decide_many(t, hi, lo, SIZE_MAX, 0, 4000, 1, ds, untouched),
                     TG_STATUS_INVALID_ARGUMENT);
        CHECK(untouched[0] == 9 && untouched[1] == 9);
        CHECK(all_bytes((const unsigned char *)ds, sizeof ds, 0xab));
        CHECK(memcmp(check_mem, twin_mem, sizeof check_mem) == 0);
    }
}

static void test_seed_random(void) {
    uint64_t a[2] = {0, 0}, b[2] = {0, 0};
    CHECK_OK(tg_seed_random(a));
    CHECK_OK(tg_seed_random(b));
    CHECK(a[0] != b[0] || a[1] != b[1]); /* two draws of 128 bits differ */
    CHECK_STATUS(tg_seed_random(NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_seed_random(MISALIGNED(uint64_t)), TG_STATUS_MISALIGNED);
    CHECK(TG_STATUS_RANDOM_UNAVAILABLE == 107);
    CHECK(streq(tg_status_str(TG_STATUS_RANDOM_UNAVAILABLE),
                "the operating system supplied no random bytes"));
}

static void test_table(void) {
    tg_quota tiers[2] = {TG_QUOTA_INIT, TG_QUOTA_INIT};
    tg_quota bad_tiers[2] = {TG_QUOTA_INIT, TG_QUOTA_INIT};
    tg_table *t = NULL, *small = NULL, *keep;
    tg_table *zero = (tg_table *)(void *)zero_table_mem;
    const size_t size = TG_TABLE_SIZE(1024, 2);
    tg_key shop = tg_key_pair(7, 42), other = tg_key_pair(7, 43), k1, k2;
    tg_decision d;
    tg_table_stats st;
    size_t probe = 99;
    int i;

    /* Sizes: the function and the macro agree; impossible tables are 0. */
    CHECK(tg_table_size(1024, 2) == TG_TABLE_SIZE(1024, 2));
    /* Header and tiers rounded up to a group, then 205 groups of 5 slots (1025 >= 1024). */
    CHECK(TG_TABLE_SIZE(1024, 2) == 384 + 205 * TG_TABLE_GROUP_SIZE);
    CHECK(TG_TABLE_HEADER_SIZE == 192 && TG_TABLE_TIER_SIZE == 64);
    CHECK(tg_table_size(0, 1) == 0 && tg_table_size(1, 0) == 0);
    CHECK(tg_table_size(1, TG_TABLE_MAX_TIERS) == TG_TABLE_SIZE(1, TG_TABLE_MAX_TIERS));
    CHECK(tg_table_size(1, TG_TABLE_MAX_TIERS + 1) == 0);
    CHECK(tg_table_size(SIZE_MAX / 8, 1) == 0); /* overflow */
    CHECK(tg_table_align() == TG_TABLE_ALIGN && TG_TABLE_ALIGN == 128);
    CHECK(TG_TABLE_GROUP_SIZE == 128 && TG_TABLE_GROUP_SLOTS == 5);

    CHECK_OK(tg_quota_init(&tiers[0], 30, 2, MS)); /* ShopBase */
    CHECK_OK(tg_quota_init(&tiers[1], 60, 4, MS)); /* a premium tier */
    bad_tiers[0] = tiers[0];                       /* bad_tiers[1] stays uninitialised */

    /* Every refusal is checked before anything is written: the memory stays untouched. */
    memset(table_mem, 0x5A, sizeof table_mem);
    CHECK_STATUS(tg_table_init_buckets(NULL, size, 1024, tiers, 2, TG_FULL_POLICY_FAIL_CLOSED,
                                       1, 2, &t), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_init_buckets(table_mem + 8, size, 1024, tiers, 2,
                                       TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &t),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_init_buckets(table_mem, size - 1, 1024, tiers, 2,
                                       TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &t),
                 TG_STATUS_BUFFER_TOO_SMALL);
    CHECK_STATUS(tg_table_init_buckets(table_mem, SIZE_MAX, SIZE_MAX / 8, tiers, 2,
                                       TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &t),
                 TG_STATUS_BUFFER_TOO_SMALL);
    CHECK_STATUS(tg_table_init_buckets(table_mem, size, 0, tiers, 2, TG_FULL_POLICY_FAIL_CLOSED,
                                       1, 2, &t), TG_STATUS_CAPACITY_EXCEEDED);
    CHECK_STATUS(tg_table_init_buckets(table_mem, size, 1024, tiers, 0,
                                       TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &t),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_table_init_buckets(table_mem, sizeof table_mem, 1, tiers,
                                       TG_TABLE_MAX_TIERS + 1, TG_FULL_POLICY_FAIL_CLOSED, 1, 2,
                                       &t), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_table_init_buckets(table_mem, size, 1024, NULL, 2, TG_FULL_POLICY_FAIL_CLOSED,
                                       1, 2, &t), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_init_buckets(table_mem, size, 1024, MISALIGNED(tg_quota), 2,
                                       TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &t),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_init_buckets(table_mem, size, 1024, bad_tiers, 2,
                                       TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &t),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_table_init_buckets(table_mem, size, 1024, tiers, 2, 2, 1, 2, &t),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_table_init_buckets(table_mem, size, 1024, tiers, 2,
                                       TG_FULL_POLICY_FAIL_CLOSED, 1, 2, NULL),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_init_buckets(table_mem, size, 1024, tiers, 2,
                                       TG_FULL_POLICY_FAIL_CLOSED, 1, 2, MISALIGNED(tg_table *)),
                 TG_STATUS_MISALIGNED);
    CHECK(all_bytes(table_mem, sizeof table_mem, 0x5A) && t == NULL);
    /* Memory that was never initialised (zeroed, or garbage) is refused. */
    CHECK_STATUS(tg_table_decide((tg_table *)(void *)table_mem, shop, 0, 0, 1, &d),
                 TG_STATUS_UNINITIALIZED);

    CHECK_OK(tg_table_init_buckets(table_mem, size, 1024, tiers, 2, TG_FULL_POLICY_FAIL_CLOSED,
                                   0x5eed, 0xcafe, &t));
    CHECK((void *)t == (void *)table_mem);
    CHECK(all_bytes(table_mem + size, 64, 0x5A)); /* nothing written past the size */
    /* The tiers were copied: the caller's array may change or go away. */
    CHECK_OK(tg_quota_init(&tiers[0], 1, 1, MS));

    /* ShopBase through the table, key (app 7, shop 42). */
    for (i = 0; i < 30; i++) {
        CHECK_OK(tg_table_decide(t, shop, 0, 0, 1, &d));
    }
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 30 && d.limit == 30);
    CHECK_OK(tg_table_decide(t, shop, 0, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 500);
    /* Upgraded to premium (60 at 4/s): the 15 s backlog keeps its time, a full 60 at 4/s, so the
     * next request passes after 250 ms, not the old tier's 500 ms; no free burst. */
    CHECK_OK(tg_table_decide(t, shop, 1, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.used == 60 && d.limit == 60 && d.retry_after == 250);
    CHECK_OK(tg_table_decide(t, shop, 1, 250, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 60);
    CHECK_OK(tg_table_peek(t, shop, 1, 250, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.used == 60);
    CHECK_OK(tg_table_decide(t, other, 0, 0, 30, &d)); /* another key: its own bucket */
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 30);
    CHECK_OK(tg_table_decide(t, other, 0, 0, 31, &d));
    CHECK(d.outcome == TG_OUTCOME_NEVER && d.retry_after == TG_RETRY_NEVER);
    CHECK_STATUS(tg_table_decide(t, shop, 2, 0, 1, &d), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_table_decide(t, shop, 0, 0, 0, &d), TG_STATUS_ZERO_COST);
    CHECK_STATUS(tg_table_decide(t, shop, 0, UINT64_MAX, 1, &d), TG_STATUS_CLOCK_OUT_OF_RANGE);
    CHECK_STATUS(tg_table_peek(t, shop, 2, 0, 1, &d), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_table_peek(t, shop, 0, 0, 0, &d), TG_STATUS_ZERO_COST);
    CHECK_STATUS(tg_table_decide(NULL, shop, 0, 0, 1, &d), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_decide((tg_table *)(void *)(table_mem + 8), shop, 0, 0, 1, &d),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_decide(zero, shop, 0, 0, 1, &d), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_table_decide(t, shop, 0, 0, 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_decide(t, shop, 0, 0, 1, MISALIGNED(tg_decision)),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_peek(NULL, shop, 0, 0, 1, &d), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_peek((tg_table *)(void *)(table_mem + 8), shop, 0, 0, 1, &d),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_peek(zero, shop, 0, 0, 1, &d), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_table_peek(t, shop, 0, 0, 1, NULL), TG_STATUS_NULL_POINTER);

    CHECK_OK(tg_table_get_stats(t, &st));
    CHECK(st.capacity == 1025 && st.occupied == 2 && st.reclaimed == 0 && st.rejected == 0);
    CHECK_STATUS(tg_table_get_stats(NULL, &st), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_get_stats((tg_table *)(void *)(table_mem + 8), &st), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_get_stats(zero, &st), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_table_get_stats(t, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_get_stats(t, MISALIGNED(tg_table_stats)), TG_STATUS_MISALIGNED);

    CHECK_OK(tg_table_probe_len(t, shop, &probe));
    CHECK(probe >= 1 && probe <= 80);
    CHECK_OK(tg_table_probe_len(t, tg_key_pair(1, 1), &probe));
    CHECK(probe == 0);
    CHECK_STATUS(tg_table_probe_len(NULL, shop, &probe), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_probe_len((tg_table *)(void *)(table_mem + 8), shop, &probe),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_probe_len(zero, shop, &probe), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_table_probe_len(t, shop, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_probe_len(t, shop, MISALIGNED(size_t)), TG_STATUS_MISALIGNED);

    /* Keys: exact packings, and hashes keyed by the table's seed. */
    k1 = tg_key_pair(7, 42);
    CHECK(k1.hi == 7 && k1.lo == 42);
    k1 = tg_key_triple(1, 2, 3);
    CHECK(k1.hi == (((uint64_t)1 << 32) | 3) && k1.lo == 2);
    CHECK_OK(tg_table_key_bytes(t, (const uint8_t *)"shop-1.example", 14, &k1));
    CHECK_OK(tg_table_key_bytes(t, (const uint8_t *)"shop-1.example", 14, &k2));
    CHECK(key_eq(k1, k2));
    CHECK_OK(tg_table_key_bytes(t, (const uint8_t *)"shop-2.example", 14, &k2));
    CHECK(!key_eq(k1, k2));
    CHECK_OK(tg_table_key_bytes(t, NULL, 0, &k2));
    CHECK(!key_eq(k1, k2));
    CHECK_STATUS(tg_table_key_bytes(t, NULL, 1, &k2), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_key_bytes(NULL, (const uint8_t *)"x", 1, &k2), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_key_bytes((tg_table *)(void *)(table_mem + 8), (const uint8_t *)"x", 1,
                                    &k2), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_key_bytes(zero, (const uint8_t *)"x", 1, &k2), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_table_key_bytes(t, (const uint8_t *)"x", 1, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_key_bytes(t, (const uint8_t *)"x", 1, MISALIGNED(tg_key)),
                 TG_STATUS_MISALIGNED);
    {
        const uint64_t ab[2] = {1, 2}, ba[2] = {2, 1};
        CHECK_OK(tg_table_key_parts(t, ab, 2, &k1));
        CHECK_OK(tg_table_key_parts(t, ba, 2, &k2));
        CHECK(!key_eq(k1, k2));
        CHECK_OK(tg_table_key_parts(t, ab, 2, &k2));
        CHECK(key_eq(k1, k2));
        CHECK_OK(tg_table_key_parts(t, NULL, 0, &k2));
        CHECK(!key_eq(k1, k2));
        CHECK_STATUS(tg_table_key_parts(t, NULL, 2, &k2), TG_STATUS_NULL_POINTER);
        CHECK_STATUS(tg_table_key_parts(t, MISALIGNED(uint64_t), 1, &k2), TG_STATUS_MISALIGNED);
        CHECK_STATUS(tg_table_key_parts(NULL, ab, 2, &k2), TG_STATUS_NULL_POINTER);
        CHECK_STATUS(tg_table_key_parts((tg_table *)(void *)(table_mem + 8), ab, 2, &k2),
                     TG_STATUS_MISALIGNED);
        CHECK_STATUS(tg_table_key_parts(zero, ab, 2, &k2), TG_STATUS_UNINITIALIZED);
        CHECK_STATUS(tg_table_key_parts(t, ab, 2, NULL), TG_STATUS_NULL_POINTER);
    }
    CHECK_OK(tg_table_key_triple(t, 1, 2, 3, &k1));
    CHECK(!key_eq(k1, tg_key_triple(1, 2, 3)));
    CHECK_OK(tg_table_key_triple(t, 1, 2, 3, &k2));
    CHECK(key_eq(k1, k2));
    CHECK_STATUS(tg_table_key_triple(NULL, 1, 2, 3, &k2), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_key_triple((tg_table *)(void *)(table_mem + 8), 1, 2, 3, &k2),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_key_triple(zero, 1, 2, 3, &k2), TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_table_key_triple(t, 1, 2, 3, NULL), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_key_triple(t, 1, 2, 3, MISALIGNED(tg_key)), TG_STATUS_MISALIGNED);
    {
        /* A table seeded differently hashes differently. */
        static unsigned char other_mem[TG_TABLE_SIZE(8, 1)] ALIGNED_TABLE;
        tg_table *o = NULL;
        CHECK_OK(tg_table_init_buckets(other_mem, sizeof other_mem, 8, &tiers[1], 1,
                                       TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &o));
        CHECK_OK(tg_table_key_triple(o, 1, 2, 3, &k2));
        CHECK(!key_eq(k1, k2));
    }

    /* A full table (one group of five slots): fail-closed answers 503 and counts it; slots
     * drained before a new key's time are reused. Four keys fill the group for 15 s. */
    CHECK_OK(tg_table_init_buckets(small_mem, sizeof small_mem, 5, &tiers[1], 1,
                                   TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &small));
    CHECK_OK(tg_table_decide(small, shop, 0, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED);
    for (i = 0; i < 4; i++) {
        CHECK_OK(tg_table_decide(small, tg_key_pair(100, (uint64_t)i), 0, 0, 60, &d));
        CHECK(d.outcome == TG_OUTCOME_ALLOWED);
    }
    CHECK_OK(tg_table_decide(small, other, 0, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_OVERLOADED && d.verdict == TG_OUTCOME_OVERLOADED);
    CHECK(d.flags == 0 && d.limit == 60 && d.used == 0 && d.retry_after == TG_RETRY_NEVER);
    /* shop drains at 4/s: empty at 250 ms, so taken by a key whose time is later. */
    CHECK_OK(tg_table_decide(small, other, 0, 251, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED);
    CHECK_OK(tg_table_get_stats(small, &st));
    CHECK(st.capacity == 5 && st.occupied == 5 && st.rejected == 1 && st.reclaimed == 1);
    /* The same memory, checked by tg_table_attach: the same table at the same address. */
    keep = NULL;
    CHECK_OK(tg_table_attach(small_mem, sizeof small_mem, &keep));
    CHECK(keep == small);
    CHECK_STATUS(tg_table_attach(small_mem, sizeof small_mem - 8, &keep),
                 TG_STATUS_LAYOUT_MISMATCH);
    CHECK_STATUS(tg_table_attach(zero_table_mem, sizeof zero_table_mem, &keep),
                 TG_STATUS_UNINITIALIZED);
    CHECK_STATUS(tg_table_attach(NULL, sizeof small_mem, &keep), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_attach(small_mem + 8, sizeof small_mem - 8, &keep),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_attach(small_mem, sizeof small_mem, NULL), TG_STATUS_NULL_POINTER);
    /* Fail-open: allowed, flagged, still counted. Re-initialising starts over. */
    keep = small;
    CHECK_OK(tg_table_init_buckets(small_mem, sizeof small_mem, 5, &tiers[1], 1,
                                   TG_FULL_POLICY_FAIL_OPEN, 1, 2, &small));
    CHECK(keep == small);
    for (i = 0; i < 5; i++) {
        CHECK_OK(tg_table_decide(small, tg_key_pair(100, (uint64_t)i), 0, 0, 1, &d));
    }
    CHECK_OK(tg_table_decide(small, other, 0, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.verdict == TG_OUTCOME_OVERLOADED);
    CHECK(d.flags == TG_DECISION_FAIL_OPEN);
    CHECK_OK(tg_table_get_stats(small, &st));
    CHECK(st.rejected == 1 && st.reclaimed == 0);
}

static void test_window_table(void) {
    static unsigned char mem[TG_TABLE_SIZE(64, 1)] ALIGNED_TABLE;
    tg_window_quota tiktok[1] = {{50, MS, 0}}, bad;
    tg_table *t = NULL;
    tg_key key = tg_key_triple(7, 42, 3); /* (app, shop, api) */
    tg_decision d;
    int i;

    bad = tiktok[0];
    bad.limit = 0;
    CHECK_STATUS(tg_table_init_windows(mem, sizeof mem, 64, &bad, 1, 0, 1, 2, &t),
                 TG_STATUS_ZERO_BURST);
    bad = tiktok[0];
    bad.window = 0;
    CHECK_STATUS(tg_table_init_windows(mem, sizeof mem, 64, &bad, 1, 0, 1, 2, &t),
                 TG_STATUS_ZERO_PERIOD);
    bad = tiktok[0];
    bad.limit = TG_WINDOW_MAX_LIMIT + 1;
    CHECK_STATUS(tg_table_init_windows(mem, sizeof mem, 64, &bad, 1, 0, 1, 2, &t),
                 TG_STATUS_QUOTA_OVERFLOW);
    bad = tiktok[0];
    bad.offset = MS;
    CHECK_STATUS(tg_table_init_windows(mem, sizeof mem, 64, &bad, 1, 0, 1, 2, &t),
                 TG_STATUS_OFFSET_OUT_OF_RANGE);
    CHECK_STATUS(tg_table_init_windows(NULL, sizeof mem, 64, tiktok, 1, 0, 1, 2, &t),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_init_windows(mem + 4, sizeof mem, 64, tiktok, 1, 0, 1, 2, &t),
                 TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_init_windows(mem, sizeof mem - 1, 64, tiktok, 1, 0, 1, 2, &t),
                 TG_STATUS_BUFFER_TOO_SMALL);
    CHECK_STATUS(tg_table_init_windows(mem, sizeof mem, 0, tiktok, 1, 0, 1, 2, &t),
                 TG_STATUS_CAPACITY_EXCEEDED);
    CHECK_STATUS(tg_table_init_windows(mem, sizeof mem, 64, tiktok, 0, 0, 1, 2, &t),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_table_init_windows(mem, sizeof mem, 64, NULL, 1, 0, 1, 2, &t),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_table_init_windows(mem, sizeof mem, 64, MISALIGNED(tg_window_quota), 1, 0,
                                       1, 2, &t), TG_STATUS_MISALIGNED);
    CHECK_STATUS(tg_table_init_windows(mem, sizeof mem, 64, tiktok, 1, 7, 1, 2, &t),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_table_init_windows(mem, sizeof mem, 64, tiktok, 1, 0, 1, 2, NULL),
                 TG_STATUS_NULL_POINTER);
    CHECK(t == NULL);

    CHECK_OK(tg_table_init_windows(mem, sizeof mem, 64, tiktok, 1, TG_FULL_POLICY_FAIL_CLOSED,
                                   3, 4, &t));
    for (i = 0; i < 50; i++) {
        CHECK_OK(tg_table_decide(t, key, 0, 200, 1, &d));
    }
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 50);
    CHECK_OK(tg_table_decide(t, key, 0, 300, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 700);
    CHECK_OK(tg_table_peek(t, key, 0, 1000, 50, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED);
}

int main(void) {
    test_status_and_version();
    test_quota();
    test_bucket();
    test_decision();
    test_window();
    test_sliding_log();
    test_check();
    test_concurrency();
    test_header();
    test_pagination();
    test_presets();
    test_wrapping_clock();
    test_seed_random();
    test_table();
    test_table_check();
    test_window_table();
    return check_summary();
}
