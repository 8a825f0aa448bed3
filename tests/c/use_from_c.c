/* The README's "Use from C" example, built against an installed tree with pkg-config only. */
#include <stdio.h>
#include <tollgate.h>

static tg_bucket shop = TG_BUCKET_INIT; /* ShopBase: 30, draining 2 per second */

int main(void) {
    tg_decision d;
    char value[32];
    size_t len;
    int i;
    if (tg_bucket_init(&shop, 30, 2, 1000) != TG_STATUS_OK) return 1; /* ms clock */
    for (i = 0; i < 31; i++) {
        tg_status s = tg_bucket_decide(&shop, 0, 1, &d);
        if (s != TG_STATUS_OK) { fprintf(stderr, "%s\n", tg_status_str(s)); return 1; }
    }
    tg_header_shop_api_call_limit(&d, value, sizeof value, &len);
    printf("X-Sb-Shop-Api-Call-Limit: %s -> %s, retry after %llu ms\n", value,
           d.outcome == TG_OUTCOME_ALLOWED ? "200" : "429", (unsigned long long)d.retry_after);
    return d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 500 ? 0 : 1;
}
