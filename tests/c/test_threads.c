/*
 * Several threads deciding on one shared limiter at once: exact totals.
 *
 * Every phase all threads decide at the same `now` (a barrier separates phases), each making far
 * more attempts than the limiter admits, so a linearizable limiter admits exactly its capacity:
 * the burst in the first phase and the amount drained since in every later one. The keyed
 * table must do the same for each of its keys, all threads inserting and deciding at once.
 */
#define _POSIX_C_SOURCE 200112L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "check.h"

#define THREADS 4
#define PHASES 20
#define ATTEMPTS 2000 /* per thread per phase */
#define PERIOD 1000   /* ticks per phase */

#define BURST 1000
#define DRAIN 100 /* per PERIOD */
#define WINDOW_LIMIT 500
#define LOG_LIMIT 100
#define MAX_IN_FLIGHT 3
#define KEYS 8 /* keys of the shared table, each with its own bucket */
#define KEY_BURST 100
#define KEY_DRAIN 10 /* per PERIOD */

static tg_bucket bucket = TG_BUCKET_INIT;
static tg_window window = TG_WINDOW_INIT;
static tg_sliding_log log_ = TG_SLIDING_LOG_INIT;
static tg_concurrency in_flight = TG_CONCURRENCY_INIT;
static pthread_barrier_t barrier;
static unsigned char table_mem[TG_TABLE_SIZE(64, 1)] __attribute__((aligned(TG_TABLE_ALIGN)));
static tg_table *table;

struct counts {
    uint64_t bucket[PHASES];
    uint64_t window[PHASES];
    uint64_t log[PHASES];
    uint64_t keyed[PHASES][KEYS];
    uint64_t busy;
    uint64_t acquired;
    uint64_t errors; /* any unexpected status */
    uint64_t over_cap;
};

static void *run(void *arg) {
    struct counts *c = (struct counts *)arg;
    int phase, i;
    tg_decision d;
    for (phase = 0; phase < PHASES; phase++) {
        uint64_t now = (uint64_t)phase * PERIOD;
        pthread_barrier_wait(&barrier);
        for (i = 0; i < ATTEMPTS; i++) {
            if (tg_bucket_decide(&bucket, now, 1, &d) != TG_STATUS_OK) {
                c->errors++;
            } else if (d.outcome == TG_OUTCOME_ALLOWED) {
                c->bucket[phase]++;
            }
            if (tg_window_decide(&window, now, 1, &d) != TG_STATUS_OK) {
                c->errors++;
            } else if (d.outcome == TG_OUTCOME_ALLOWED) {
                c->window[phase]++;
            }
            /* The log admits one caller at a time: a busy answer did nothing; try again. */
            for (;;) {
                tg_status s = tg_sliding_log_decide(&log_, now, 1, &d);
                if (s == TG_STATUS_BUSY) {
                    c->busy++;
                    continue;
                }
                if (s != TG_STATUS_OK) {
                    c->errors++;
                } else if (d.outcome == TG_OUTCOME_ALLOWED) {
                    c->log[phase]++;
                }
                break;
            }
            if (tg_table_decide(table, tg_key_pair(1, (uint64_t)(i % KEYS)), 0, now, 1, &d) !=
                TG_STATUS_OK) {
                c->errors++;
            } else if (d.outcome == TG_OUTCOME_ALLOWED) {
                c->keyed[phase][i % KEYS]++;
            }
            if (tg_concurrency_acquire(&in_flight, &d) != TG_STATUS_OK) {
                c->errors++;
            } else if (d.outcome == TG_OUTCOME_ALLOWED) {
                c->acquired++;
                if (d.used > MAX_IN_FLIGHT) {
                    c->over_cap++;
                }
                if (tg_concurrency_release(&in_flight) != TG_STATUS_OK) {
                    c->errors++;
                }
            }
        }
    }
    return NULL;
}

int main(void) {
    static struct counts counts[THREADS];
    pthread_t threads[THREADS];
    int t, phase;
    uint64_t errors = 0, busy = 0, acquired = 0, over = 0;
    uint32_t n, max;

    CHECK_OK(tg_bucket_init(&bucket, BURST, DRAIN, PERIOD));
    CHECK_OK(tg_window_init(&window, WINDOW_LIMIT, PERIOD, 0));
    CHECK_OK(tg_sliding_log_init(&log_, LOG_LIMIT, PERIOD));
    CHECK_OK(tg_concurrency_init(&in_flight, MAX_IN_FLIGHT));
    {
        tg_quota tier = TG_QUOTA_INIT;
        CHECK_OK(tg_quota_init(&tier, KEY_BURST, KEY_DRAIN, PERIOD));
        CHECK_OK(tg_table_init_buckets(table_mem, sizeof table_mem, 64, &tier, 1,
                                       TG_FULL_POLICY_FAIL_CLOSED, 0x1234, 0x5678, &table));
    }
    CHECK(pthread_barrier_init(&barrier, NULL, THREADS) == 0);
    for (t = 0; t < THREADS; t++) {
        CHECK(pthread_create(&threads[t], NULL, run, &counts[t]) == 0);
    }
    for (t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
    }
    for (phase = 0; phase < PHASES; phase++) {
        uint64_t b = 0, w = 0, l = 0;
        for (t = 0; t < THREADS; t++) {
            b += counts[t].bucket[phase];
            w += counts[t].window[phase];
            l += counts[t].log[phase];
        }
        CHECK(b == (phase == 0 ? BURST : DRAIN));
        CHECK(w == WINDOW_LIMIT);
        CHECK(l == LOG_LIMIT);
        {
            int k;
            for (k = 0; k < KEYS; k++) {
                uint64_t keyed = 0;
                for (t = 0; t < THREADS; t++) {
                    keyed += counts[t].keyed[phase][k];
                }
                CHECK(keyed == (phase == 0 ? KEY_BURST : KEY_DRAIN));
            }
        }
        if (b != (uint64_t)(phase == 0 ? BURST : DRAIN) || w != WINDOW_LIMIT || l != LOG_LIMIT) {
            fprintf(stderr, "phase %d: bucket %llu window %llu log %llu\n", phase,
                    (unsigned long long)b, (unsigned long long)w, (unsigned long long)l);
        }
    }
    for (t = 0; t < THREADS; t++) {
        errors += counts[t].errors;
        busy += counts[t].busy;
        acquired += counts[t].acquired;
        over += counts[t].over_cap;
    }
    CHECK(errors == 0);
    CHECK(over == 0);
    CHECK(acquired > 0);
    CHECK_OK(tg_concurrency_in_flight(&in_flight, &n, &max));
    CHECK(n == 0 && max == MAX_IN_FLIGHT);
    {
        tg_table_stats st;
        CHECK_OK(tg_table_get_stats(table, &st));
        CHECK(st.occupied == KEYS && st.rejected == 0); /* one bucket per key, never two */
    }
    printf("threads: %d x %d phases x %d attempts; sliding log busy answers: %llu\n", THREADS,
           PHASES, ATTEMPTS, (unsigned long long)busy);
    pthread_barrier_destroy(&barrier);
    return check_summary();
}
