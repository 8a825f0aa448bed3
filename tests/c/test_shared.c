/*
 * Limiters shared by forked processes: exact totals across processes (an anonymous region
 * inherited across fork, and a named one opened by path in each child), a lease abandoned by
 * a child that exits, racing creators, mismatches named, and every tg_shared_* function.
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
    return check_summary();
}
