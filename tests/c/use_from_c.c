#include <stdio.h>
#include <tollgate.h>

static tg_bucket global = TG_BUCKET_INIT; /* one limiter, in a static */
static _Alignas(TG_TABLE_ALIGN) unsigned char mem[TG_TABLE_SIZE(4096, 1)]; /* one per shop */

int main(void) {
    tg_quota shopbase = TG_QUOTA_INIT; /* 30 requests, draining 2 per second (ms ticks) */
    tg_table *shops;
    tg_decision d;
    char used[32];
    size_t len;
    if (tg_bucket_init(&global, 1000, 500, 1000) || tg_quota_init(&shopbase, 30, 2, 1000) ||
        tg_table_init_buckets(mem, sizeof mem, 4096, &shopbase, 1, TG_FULL_POLICY_FAIL_CLOSED,
                              0x243f6a8885a308d3, 0x13198a2e03707344 /* random! */, &shops))
        return 1;
    for (int i = 0; i < 31; i++) { /* 31 requests at t = 0 from (app 7, shop 42) */
        if (tg_bucket_decide(&global, 0, 1, &d) || d.outcome != TG_OUTCOME_ALLOWED) return 1;
        if (tg_table_decide(shops, tg_key_pair(7, 42), 0, 0, 1, &d)) return 1;
    }
    tg_header_shop_api_call_limit(&d, used, sizeof used, &len);
    printf("%s: %s -> HTTP %d, retry after %llu ms\n", TG_HEADER_SHOP_API_CALL_LIMIT, used,
           d.outcome == TG_OUTCOME_ALLOWED ? 200 : 429, (unsigned long long)d.retry_after);
    return d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 500 ? 0 : 1;
}
