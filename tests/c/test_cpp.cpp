// The header from C++11: it must compile with -std=c++11 -Wall -Wextra -Wpedantic -Werror
// without any `extern "C"` wrapping by the user, and the functions must link and work.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "check.h"

static_assert(sizeof(tg_decision) == 56, "tg_decision layout");
static_assert(std::is_standard_layout<tg_decision>::value, "tg_decision is plain data");
static_assert(std::is_trivially_copyable<tg_bucket>::value, "tg_bucket is plain memory");
static_assert(sizeof(tg_bucket) == 8 * TG_BUCKET_WORDS, "tg_bucket size");
static_assert(std::is_same<std::underlying_type<tg_status>::type, std::uint32_t>::value,
              "tg_status is 32 bits");
static_assert(TG_STATUS_OK == 0, "TG_STATUS_OK is 0");

namespace {

tg_bucket shop = TG_BUCKET_INIT;  // a static bucket, initialised in main
tg_window tiktok = TG_WINDOW_INIT;

}  // namespace

int main() {
    tg_decision d;
    CHECK_STATUS(tg_bucket_decide(&shop, 0, 1, &d), TG_STATUS_UNINITIALIZED);
    CHECK_OK(tg_preset_shopbase_bucket_init(&shop, 1000));
    for (int i = 0; i < 30; i++) {
        CHECK_OK(tg_bucket_decide(&shop, 0, 1, &d));
    }
    CHECK_OK(tg_bucket_decide(&shop, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 500);

    char buf[32];
    std::size_t n = 0;
    CHECK_OK(tg_header_shop_api_call_limit(&d, buf, sizeof buf, &n));
    CHECK(std::strcmp(buf, "30/30") == 0 && n == 5);

    std::uint16_t http = 0;
    CHECK_OK(tg_outcome_http_status(d.outcome, &http));
    CHECK(http == 429);

    CHECK_OK(tg_preset_tiktok_shop_window_init(&tiktok, 1000));
    CHECK_OK(tg_window_decide(&tiktok, 0, 51, &d));
    CHECK(d.outcome == TG_OUTCOME_NEVER && d.retry_after == TG_RETRY_NEVER);

    tg_outcome o = TG_OUTCOME_ALLOWED;
    CHECK_OK(tg_pagination_check(250, 401, TG_PAGINATION_DEFAULT_MAX_OFFSET, &o));
    CHECK(o == TG_OUTCOME_NEVER);
    // A keyed table in a C++ aligned buffer; keys pass by value.
    alignas(TG_TABLE_ALIGN) static unsigned char mem[TG_TABLE_SIZE(16, 1)];
    tg_quota tier = TG_QUOTA_INIT;
    tg_table *table = nullptr;
    CHECK_OK(tg_quota_init(&tier, 2, 1, 1000));
    CHECK_OK(tg_table_init_buckets(mem, sizeof mem, 16, &tier, 1, TG_FULL_POLICY_FAIL_OPEN, 1, 2,
                                   &table));
    const tg_key key = tg_key_triple(1, 2, 3);
    CHECK_OK(tg_table_decide(table, key, 0, 0, 2, &d));
    CHECK_OK(tg_table_decide(table, key, 0, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 1000);
    tg_table_stats stats;
    CHECK_OK(tg_table_get_stats(table, &stats));
    CHECK(stats.occupied == 1 && stats.capacity == 20); /* 16 rounded up to groups of 5 */

    CHECK(tg_version_number() == TG_VERSION_NUMBER);
    CHECK(std::strcmp(tg_status_str(TG_STATUS_BUSY), "object in use by another caller") == 0);
    return check_summary();
}
