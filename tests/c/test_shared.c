/*
 * Limiters shared by forked processes: exact totals across processes (an anonymous region
 * inherited across fork, and a named one opened by path in each child), a lease abandoned by
 * a child that exits, racing creators, mismatches named, key tables shared by path (each
 * child opens the table, adopting the creator's seed, and decides through tg_table_*), and
 * every tg_shared_* function.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define WORKERS 4
#define SECOND 1000 /* a millisecond clock */

static char path[256];
static char path2[256];

/* Forks WORKERS children running `work(i)`; returns the sum of their exit codes (each < 256). */
static int fork_workers(int (*work)(int)) {
    pid_t pids[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            _exit(work(i));
        }
    }
    int total = 0;
    for (int i = 0; i < WORKERS; i++) {
        int status = 0;
        waitpid(pids[i], &status, 0);
        CHECK(WIFEXITED(status));
        total += WEXITSTATUS(status);
    }
    return total;
}

static tg_shared inherited = TG_SHARED_INIT;

/* 30 attempts at t = 0 on the bucket inherited from the parent: how many were admitted. */
static int decide_inherited(int i) {
    (void)i;
    int admitted = 0;
    for (int n = 0; n < 30; n++) {
        tg_decision d;
        if (tg_shared_decide(&inherited, 0, 1, &d) != TG_STATUS_OK) {
            return 255;
        }
        admitted += d.outcome == TG_OUTCOME_ALLOWED;
    }
    return admitted;
}

/* The same on a bucket each child opens by path. */
static int decide_by_path(int i) {
    (void)i;
    tg_quota q;
    tg_shared s = TG_SHARED_INIT;
    if (tg_quota_init(&q, 30, 2, SECOND) != TG_STATUS_OK ||
        tg_shared_open_bucket(&s, path, &q, 0, TG_CREATE_EXISTING, NULL) != TG_STATUS_OK) {
        return 255;
    }
    int admitted = 0;
    for (int n = 0; n < 30; n++) {
        tg_decision d;
        if (tg_shared_decide(&s, 500, 1, &d) != TG_STATUS_OK) {
            return 255;
        }
        admitted += d.outcome == TG_OUTCOME_ALLOWED;
    }
    tg_shared_close(&s);
    return admitted;
}

/* Creates or opens `path2` at once with the others: 1 if this child created it. */
static int race(int i) {
    (void)i;
    tg_shared s = TG_SHARED_INIT;
    if (tg_shared_open_log(&s, path2, 10, SECOND, 0, TG_CREATE_IF_MISSING, NULL) != TG_STATUS_OK) {
        return 255;
    }
    bool created = false;
    tg_shared_created(&s, &created);
    tg_decision d;
    int admitted = 0;
    for (int n = 0; n < 5; n++) {
        tg_shared_decide(&s, 0, 1, &d);
        admitted += d.outcome == TG_OUTCOME_ALLOWED;
    }
    tg_shared_close(&s);
    return (created ? 100 : 0) + admitted;
}

static char path3[256];

/* Opens the named bucket table (its seed adopted) and spends 30 attempts on each of 3 shops
 * through the tg_table_* functions: how many were admitted in all (30 per shop are due). */
static int decide_table_by_path(int i) {
    (void)i;
    tg_quota tiers[2];
    tg_shared s = TG_SHARED_INIT;
    tg_table *t = NULL;
    if (tg_quota_init(&tiers[0], 30, 2, SECOND) != TG_STATUS_OK ||
        tg_quota_init(&tiers[1], 60, 2, SECOND) != TG_STATUS_OK ||
        tg_shared_open_bucket_table(&s, path3, 100, tiers, 2, TG_FULL_POLICY_FAIL_CLOSED, NULL,
                                    0, TG_CREATE_EXISTING, NULL) != TG_STATUS_OK ||
        tg_shared_table(&s, &t) != TG_STATUS_OK) {
        return 255;
    }
    int admitted = 0;
    for (int n = 0; n < 30; n++) {
        for (uint64_t shop = 1; shop <= 3; shop++) {
            int32_t r = tg_table_check(t, 7, shop, 0, 0, 1, NULL);
            if (r < 0) {
                return 254;
            }
            admitted += r == TG_OUTCOME_ALLOWED;
        }
    }
    tg_shared_close(&s);
    return admitted;
}

/* 30 attempts on key (7, 7) of the window table inherited from the parent. */
static int decide_inherited_table(int i) {
    (void)i;
    tg_table *t = NULL;
    if (tg_shared_table(&inherited, &t) != TG_STATUS_OK) {
        return 255;
    }
    int admitted = 0;
    for (int n = 0; n < 30; n++) {
        admitted += tg_table_check(t, 7, 7, 0, 0, 1, NULL) == TG_OUTCOME_ALLOWED;
    }
    return admitted;
}

/* Takes a lease on the inherited limit and exits without releasing it, as a crash would. */
static int abandon_lease(int i) {
    (void)i;
    tg_decision d;
    tg_lease lease;
    if (tg_shared_acquire(&inherited, 0, 100, &d, &lease) != TG_STATUS_OK) {
        return 255;
    }
    return d.outcome == TG_OUTCOME_ALLOWED;
}

int main(void) {
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/tollgate-test-c-%ld", dir ? dir : "/tmp", (long)getpid());
    snprintf(path2, sizeof path2, "%s/tollgate-test-c-race-%ld", dir ? dir : "/tmp",
             (long)getpid());
    snprintf(path3, sizeof path3, "%s/tollgate-test-c-table-%ld", dir ? dir : "/tmp",
             (long)getpid());
    unlink(path3);
    unlink(path);
    unlink(path2);
    tg_quota q;
    CHECK_OK(tg_quota_init(&q, 30, 2, SECOND));
    tg_decision d;
    tg_region_error err;

    /* An anonymous bucket created before forking: 4 children x 30 attempts, 30 admitted. */
    CHECK_OK(tg_shared_open_bucket(&inherited, NULL, &q, 0, TG_CREATE_IF_MISSING, &err));
    CHECK(fork_workers(decide_inherited) == 30);
    CHECK_OK(tg_shared_decide(&inherited, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.used == 30 && d.retry_after == SECOND / 2);
    CHECK_OK(tg_shared_peek(&inherited, 10 * SECOND, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 10);
    CHECK_OK(tg_shared_reset(&inherited));
    CHECK_OK(tg_shared_peek(&inherited, 0, 1, &d));
    CHECK(d.used == 0);
    CHECK_OK(tg_shared_close(&inherited));
    CHECK_STATUS(tg_shared_close(&inherited), TG_STATUS_UNINITIALIZED);

    /* A named bucket: the children open it by path; 30 admitted in all at t = 500 ms. */
    tg_shared named = TG_SHARED_INIT;
    CHECK_OK(tg_shared_open_bucket(&named, path, &q, 0, TG_CREATE_NEW, &err));
    bool created = false;
    CHECK_OK(tg_shared_created(&named, &created));
    CHECK(created);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(fork_workers(decide_by_path) == 30);
    CHECK_OK(tg_shared_decide(&named, 500, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED);

    /* Opening with other parameters names the difference. */
    tg_quota other;
    CHECK_OK(tg_quota_init(&other, 30, 3, SECOND));
    tg_shared bad = TG_SHARED_INIT;
    CHECK_STATUS(tg_shared_open_bucket(&bad, path, &other, 0, TG_CREATE_IF_MISSING, &err),
                 TG_STATUS_REGION_MISMATCH);
    CHECK(err.status == TG_STATUS_REGION_MISMATCH && err.found == 2 && err.expected == 3);
    CHECK(strcmp(err.message, "shared region: count is 2 in the region, 3 was asked for") == 0);
    CHECK_STATUS(tg_shared_open_window(&bad, path, 30, SECOND, 0, 0, 0, &err),
                 TG_STATUS_REGION_KIND);
    CHECK_STATUS(tg_shared_open_bucket(&bad, path, &q, 0, TG_CREATE_NEW, &err),
                 TG_STATUS_REGION_EXISTS);
    CHECK_STATUS(tg_shared_open_bucket(&bad, path, &q, 0644, 0, &err), TG_STATUS_OK);
    CHECK_OK(tg_shared_close(&bad));
    CHECK(chmod(path, 0644) == 0);
    CHECK_STATUS(tg_shared_open_bucket(&bad, path, &q, 0, 0, &err), TG_STATUS_REGION_PERMISSIONS);
    CHECK(err.found == 0644 && err.expected == 0600);
    CHECK_STATUS(tg_shared_open_bucket(&bad, path, &q, 01000, 0, &err),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_shared_open_bucket(&bad, "/nonexistent-dir/x", &q, 0, TG_CREATE_EXISTING, &err),
                 TG_STATUS_REGION_NOT_FOUND);
    CHECK_STATUS(tg_shared_open_bucket(NULL, path, &q, 0, 0, &err), TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_shared_decide(&bad, 0, 1, &d), TG_STATUS_UNINITIALIZED);
    CHECK(strcmp(tg_status_str(TG_STATUS_REGION_PERMISSIONS),
                 "shared region: permissions looser than the mode asked for") == 0);
    CHECK_OK(tg_shared_close(&named));
    unlink(path);
    /* A file that is not a region. */
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        for (int i = 0; i < 1000; i++) {
            fputc('x', f);
        }
        fclose(f);
    }
    chmod(path, 0600);
    CHECK_STATUS(tg_shared_open_bucket(&bad, path, &q, 0, 0, &err), TG_STATUS_REGION_NOT_A_REGION);
    unlink(path);

    /* Racing creators, 20 rounds: exactly one creates, 10 admitted of 20 attempts. */
    for (int round = 0; round < 20; round++) {
        unlink(path2);
        int r = fork_workers(race);
        CHECK(r / 100 == 1 && r % 100 == 10);
    }
    unlink(path2);

    /* A sliding log and a fixed window, anonymous. */
    tg_shared log = TG_SHARED_INIT;
    CHECK_OK(tg_shared_open_log(&log, NULL, 2, 10, 0, 0, NULL));
    CHECK_OK(tg_shared_decide(&log, 0, 2, &d));
    CHECK_OK(tg_shared_decide(&log, 9, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 1);
    CHECK_STATUS(tg_shared_reset(&log), TG_STATUS_REGION_KIND);
    CHECK_STATUS(tg_shared_open_log(&bad, NULL, 70000, 10, 0, 0, NULL),
                 TG_STATUS_CAPACITY_EXCEEDED);
    CHECK_OK(tg_shared_close(&log));
    tg_shared window = TG_SHARED_INIT;
    CHECK_OK(tg_shared_open_window(&window, NULL, 2, 10, 0, 0, 0, NULL));
    CHECK_OK(tg_shared_decide(&window, 0, 2, &d));
    CHECK_OK(tg_shared_decide(&window, 9, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.retry_after == 1);
    CHECK_OK(tg_shared_decide(&window, 10, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED);
    CHECK_OK(tg_shared_close(&window));

    /* Leases: every child takes one and exits without releasing; the limit of 4 is full until
     * the leases expire at t = 100, then free again. */
    CHECK_OK(tg_shared_open_leases(&inherited, NULL, WORKERS, 1000, 0, 0, NULL));
    CHECK(fork_workers(abandon_lease) == WORKERS);
    uint32_t n = 0;
    CHECK_OK(tg_shared_in_flight(&inherited, 50, &n));
    CHECK(n == WORKERS);
    tg_lease lease;
    CHECK_OK(tg_shared_acquire(&inherited, 50, 10, &d, &lease));
    CHECK(d.outcome == TG_OUTCOME_OVERLOADED && d.retry_after == 50);
    CHECK_OK(tg_shared_acquire(&inherited, 100, 10, &d, &lease));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && lease.deadline == 110);
    CHECK_OK(tg_shared_renew(&inherited, &lease, 105, 20));
    CHECK(lease.deadline == 125);
    CHECK_OK(tg_shared_release(&inherited, &lease));
    CHECK_STATUS(tg_shared_release(&inherited, &lease), TG_STATUS_NOT_ACQUIRED);
    CHECK_STATUS(tg_shared_renew(&inherited, &lease, 105, 20), TG_STATUS_NOT_ACQUIRED);
    CHECK_STATUS(tg_shared_acquire(&inherited, 100, 1001, &d, &lease), TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_shared_decide(&inherited, 0, 1, &d), TG_STATUS_REGION_KIND);
    CHECK_OK(tg_shared_close(&inherited));

    /* A named bucket table: the children open it by path (adopting the seed the creator drew)
     * and decide through tg_table_*: 30 per shop in all, 3 shops. */
    tg_quota tiers[2];
    CHECK_OK(tg_quota_init(&tiers[0], 30, 2, SECOND));
    CHECK_OK(tg_quota_init(&tiers[1], 60, 2, SECOND));
    tg_shared table = TG_SHARED_INIT;
    CHECK_OK(tg_shared_open_bucket_table(&table, path3, 100, tiers, 2,
                                         TG_FULL_POLICY_FAIL_CLOSED, NULL, 0, TG_CREATE_NEW, &err));
    tg_table *t = NULL;
    CHECK_OK(tg_shared_table(&table, &t));
    CHECK(t != NULL && (uintptr_t)t % TG_TABLE_ALIGN == 0);
    CHECK(fork_workers(decide_table_by_path) == 90);
    CHECK_OK(tg_table_decide(t, tg_key_pair(7, 2), 0, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.used == 30 && d.limit == 30);
    /* The premium tier carries the level over: 31 of 60. */
    CHECK_OK(tg_table_decide(t, tg_key_pair(7, 2), 1, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == 31 && d.limit == 60);
    tg_table_stats stats;
    CHECK_OK(tg_table_get_stats(t, &stats));
    CHECK(stats.capacity == 100 && stats.occupied == 3);
    /* Hashed keys agree across processes, because the table carries the seed. */
    tg_key k1, k2;
    CHECK_OK(tg_table_key_bytes(t, (const uint8_t *)"shop-9", 6, &k1));
    tg_shared again = TG_SHARED_INIT;
    tg_table *t2 = NULL;
    CHECK_OK(tg_shared_open_bucket_table(&again, path3, 100, tiers, 2, TG_FULL_POLICY_FAIL_CLOSED,
                                         NULL, 0, TG_CREATE_EXISTING, &err));
    CHECK_OK(tg_shared_table(&again, &t2));
    CHECK_OK(tg_table_key_bytes(t2, (const uint8_t *)"shop-9", 6, &k2));
    CHECK(k1.hi == k2.hi && k1.lo == k2.lo);
    CHECK_OK(tg_shared_created(&again, &created));
    CHECK(!created);
    CHECK_OK(tg_shared_close(&again));
    /* Mismatches are named; a seed other than the region's is refused. */
    CHECK_STATUS(tg_shared_open_bucket_table(&bad, path3, 200, tiers, 2, 0, NULL, 0, 0, &err),
                 TG_STATUS_REGION_MISMATCH);
    CHECK(err.found == 100 && err.expected == 200);
    CHECK(strcmp(err.message, "shared region: capacity is 100 in the region, 200 was asked for") ==
          0);
    const uint64_t seed[2] = {1, 2};
    CHECK_STATUS(tg_shared_open_bucket_table(&bad, path3, 100, tiers, 2, 0, seed, 0, 0, &err),
                 TG_STATUS_REGION_MISMATCH);
    CHECK(strncmp(err.message, "shared region: seed (digest) is", 31) == 0);
    CHECK_STATUS(tg_shared_open_bucket_table(&bad, path3, 100, tiers, 1, 0, NULL, 0, 0, &err),
                 TG_STATUS_REGION_MISMATCH);
    CHECK(strncmp(err.message, "shared region: tier count is 2", 30) == 0);
    tg_window_quota wt = {50, SECOND, 0};
    CHECK_STATUS(tg_shared_open_window_table(&bad, path3, 100, &wt, 1, 0, NULL, 0, 0, &err),
                 TG_STATUS_REGION_KIND);
    CHECK_STATUS(tg_shared_open_bucket(&bad, path3, &q, 0, 0, &err), TG_STATUS_REGION_KIND);
    /* Bad parameters are refused before any region is made. */
    CHECK_STATUS(tg_shared_open_bucket_table(&bad, NULL, 100, tiers, 0, 0, NULL, 0, 0, &err),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_shared_open_bucket_table(&bad, NULL, 100, NULL, 2, 0, NULL, 0, 0, &err),
                 TG_STATUS_NULL_POINTER);
    CHECK_STATUS(tg_shared_open_bucket_table(&bad, NULL, 100, tiers, 2, 7, NULL, 0, 0, &err),
                 TG_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(tg_shared_open_bucket_table(&bad, NULL, 0, tiers, 2, 0, NULL, 0, 0, &err),
                 TG_STATUS_CAPACITY_EXCEEDED);
    tg_quota unset;
    memset(&unset, 0, sizeof unset);
    CHECK_STATUS(tg_shared_open_bucket_table(&bad, NULL, 100, &unset, 1, 0, NULL, 0, 0, &err),
                 TG_STATUS_UNINITIALIZED);
    /* A table is not decided on through tg_shared_decide, and a bucket has no table. */
    CHECK_STATUS(tg_shared_decide(&table, 0, 1, &d), TG_STATUS_REGION_KIND);
    CHECK_STATUS(tg_shared_reset(&table), TG_STATUS_REGION_KIND);
    tg_shared plain = TG_SHARED_INIT;
    CHECK_OK(tg_shared_open_bucket(&plain, NULL, &q, 0, 0, NULL));
    CHECK_STATUS(tg_shared_table(&plain, &t2), TG_STATUS_REGION_KIND);
    CHECK_STATUS(tg_shared_table(&table, NULL), TG_STATUS_NULL_POINTER);
    CHECK_OK(tg_shared_close(&plain));
    CHECK_OK(tg_shared_close(&table));
    unlink(path3);

    /* A process killed between claiming a slot and writing its key leaves the slot busy under
     * its process id; once the process is gone (exited and reaped), the next insertion that
     * meets the slot takes it, through the tg_table_* functions too. Slot 4 of a one-group
     * table: its state word is word 4 of the first group, which starts after the header and
     * the one tier (rounded up to 128 bytes). */
    pid_t dead = fork();
    if (dead == 0) {
        _exit(0);
    }
    waitpid(dead, NULL, 0);
    CHECK_OK(tg_shared_open_bucket_table(&table, NULL, 5, tiers, 1, TG_FULL_POLICY_FAIL_CLOSED,
                                         NULL, 0, 0, &err));
    CHECK_OK(tg_shared_table(&table, &t));
    size_t first_group = (TG_TABLE_HEADER_SIZE + TG_TABLE_TIER_SIZE + TG_TABLE_GROUP_SIZE - 1) /
                         TG_TABLE_GROUP_SIZE * TG_TABLE_GROUP_SIZE / 8;
    volatile uint64_t *words = (volatile uint64_t *)(void *)t;
    words[first_group + 4] = ((((uint64_t)dead << 30) | 3) << 11) | 1; /* busy, claimant dead */
    int found_room = 0;
    for (uint64_t shop = 1; shop <= 5; shop++) {
        found_room += tg_table_check(t, 9, shop, 0, 0, 1, NULL) == TG_OUTCOME_ALLOWED;
    }
    CHECK(found_room == 5);
    CHECK_OK(tg_table_get_stats(t, &stats));
    CHECK(stats.occupied == 5);
    /* The same with a live claimant (this process): the slot stays busy, the fifth key finds
     * no room. */
    CHECK_OK(tg_shared_close(&table));
    CHECK_OK(tg_shared_open_bucket_table(&table, NULL, 5, tiers, 1, TG_FULL_POLICY_FAIL_CLOSED,
                                         NULL, 0, 0, &err));
    CHECK_OK(tg_shared_table(&table, &t));
    words = (volatile uint64_t *)(void *)t;
    words[first_group + 4] = ((((uint64_t)getpid() << 30) | 3) << 11) | 1;
    found_room = 0;
    for (uint64_t shop = 1; shop <= 5; shop++) {
        found_room += tg_table_check(t, 9, shop, 0, 0, 1, NULL) == TG_OUTCOME_ALLOWED;
    }
    CHECK(found_room == 4);
    CHECK_OK(tg_shared_close(&table));

    /* An anonymous window table with a named seed, shared with forked children. */
    const uint64_t wseed[2] = {11, 12};
    CHECK_OK(tg_shared_open_window_table(&inherited, NULL, 10, &wt, 1, TG_FULL_POLICY_FAIL_CLOSED,
                                         wseed, 0, 0, NULL));
    CHECK_OK(tg_shared_table(&inherited, &t));
    CHECK(fork_workers(decide_inherited_table) == 50);
    CHECK(tg_table_check(t, 7, 7, 0, 10, 1, NULL) == TG_OUTCOME_LIMITED);
    CHECK(tg_table_check(t, 7, 7, 0, SECOND, 1, NULL) == TG_OUTCOME_ALLOWED);
    CHECK_OK(tg_shared_close(&inherited));
    return check_summary();
}
