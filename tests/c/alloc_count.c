/*
 * Makes N decisions (argv[1]) through every kind of limiter plus header formatting and the
 * pagination rule, with no allocation of its own. scripts/test-c.sh runs it under valgrind
 * with N = 0 and N = 1 000 000 and requires the same heap allocation count: the library never
 * allocates, however many decisions it makes.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tollgate.h"

static tg_bucket bucket = TG_BUCKET_INIT;
static tg_window window = TG_WINDOW_INIT;
static tg_sliding_log log_ = TG_SLIDING_LOG_INIT;
static tg_concurrency limit = TG_CONCURRENCY_INIT;
static unsigned char table_mem[TG_TABLE_SIZE(256, 1)] __attribute__((aligned(TG_TABLE_ALIGN)));

int main(int argc, char **argv) {
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
    unsigned long i, allowed = 0, failures = 0;
    tg_decision d;
    tg_outcome o;
    char buf[64];
    size_t len;
    tg_quota tier = TG_QUOTA_INIT;
    tg_table *table = NULL;

    failures += tg_bucket_init(&bucket, 30, 2, 1000) != TG_STATUS_OK;
    failures += tg_window_init(&window, 50, 1000, 0) != TG_STATUS_OK;
    failures += tg_sliding_log_init(&log_, 50, 1000) != TG_STATUS_OK;
    failures += tg_concurrency_init(&limit, 4) != TG_STATUS_OK;
    failures += tg_quota_init(&tier, 10, 1, 100) != TG_STATUS_OK;
    failures += tg_table_init_buckets(table_mem, sizeof table_mem, 256, &tier, 1,
                                      TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &table) != TG_STATUS_OK;
    for (i = 0; i < n; i++) {
        uint64_t now = i / 4;
        switch (i % 4) {
        case 0:
            failures += tg_bucket_decide(&bucket, now, 1, &d) != TG_STATUS_OK;
            failures += tg_header_shop_api_call_limit(&d, buf, sizeof buf, &len) != TG_STATUS_OK;
            break;
        case 1:
            failures += tg_window_decide(&window, now, 1, &d) != TG_STATUS_OK;
            failures += tg_header_ratelimit(&d, "w", 1, 1000, buf, sizeof buf, &len) != TG_STATUS_OK;
            break;
        case 2:
            failures += tg_sliding_log_decide(&log_, now, 1, &d) != TG_STATUS_OK;
            failures += tg_pagination_check_query("limit=250&page=401", 18, 100000, &o) != TG_STATUS_OK;
            break;
        default:
            failures += tg_concurrency_acquire(&limit, &d) != TG_STATUS_OK;
            failures += tg_concurrency_release(&limit) != TG_STATUS_OK;
            /* a table with keys coming and going (drained slots are reclaimed) */
            failures += tg_table_decide(table, tg_key_pair(i % 1000, i), 0, now, 1, &d) !=
                        TG_STATUS_OK;
            failures += tg_bucket_decide(&bucket, now, 0, &d) != TG_STATUS_ZERO_COST; /* an error */
            break;
        }
        allowed += d.outcome == TG_OUTCOME_ALLOWED;
    }
    printf("%lu decisions, %lu allowed, %lu failures\n", n, allowed, failures);
    return failures == 0 ? 0 : 1;
}
