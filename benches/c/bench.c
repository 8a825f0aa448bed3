/*
 * The C ABI called from C: nanoseconds per call of tg_bucket_decide (admitted and refused,
 * the caller's tick) and tg_table_decide (1 000 and 1 000 000 (app, shop) keys, uniform and
 * Zipf-skewed), the same cases as the Rust benches in benches/benches/, so the two can be
 * read side by side, and THREADS threads deciding on one bucket with the clock read per call.
 * Not a test: speed is never asserted (the C test suite only builds it). Each case prints the
 * best of ROUNDS rounds, one line "c/<case>: <ns> ns per call".
 *
 * Built and run by scripts/bench.sh:
 *   gcc -std=c11 -O2 -Iinclude benches/c/bench.c target/release/libtollgate.a \
 *       -lpthread -ldl -lm -o target/bench-c/bench && target/bench-c/bench
 */
#define _POSIX_C_SOURCE 200112L
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tollgate.h"

#define ROUNDS 7
#define STREAM (1u << 20)
#define SECOND 1000000000ull

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SECOND + (uint64_t)ts.tv_nsec;
}

static void check(tg_status status, const char *what) {
    if (status != TG_STATUS_OK) {
        fprintf(stderr, "%s: %s\n", what, tg_status_str(status));
        exit(1);
    }
}

/* SplitMix64, as benches/src/lib.rs. */
static uint64_t rng_state;
static uint64_t next_u64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The i-th distinct (app, shop) key, as key_of in benches/src/lib.rs. */
static tg_key key_of(uint32_t i) {
    return tg_key_pair((uint64_t)i % 97 + 1, ((uint64_t)i * 0x9E3779B97F4A7C15ull) ^ 0x5bd1e995ull);
}

/* STREAM key indices in [0, keys): uniform, or Zipf with exponent 1 (ranks shuffled). */
static uint32_t *key_stream(uint32_t keys, int zipf) {
    uint32_t *out = malloc(sizeof *out * STREAM);
    uint32_t i;
    rng_state = 0x70116a7e;
    if (out == NULL) {
        exit(1);
    }
    if (!zipf) {
        for (i = 0; i < STREAM; i++) {
            out[i] = (uint32_t)(next_u64() % keys);
        }
    } else {
        double *cdf = malloc(sizeof *cdf * keys), total = 0;
        uint32_t *rank_to_key = malloc(sizeof *rank_to_key * keys);
        if (cdf == NULL || rank_to_key == NULL) {
            exit(1);
        }
        for (i = 0; i < keys; i++) {
            total += 1.0 / (double)(i + 1);
            cdf[i] = total;
            rank_to_key[i] = i;
        }
        for (i = keys - 1; i > 0; i--) {
            uint32_t j = (uint32_t)(next_u64() % (i + 1)), t = rank_to_key[i];
            rank_to_key[i] = rank_to_key[j];
            rank_to_key[j] = t;
        }
        for (i = 0; i < STREAM; i++) {
            double x = (double)(next_u64() >> 11) / 9007199254740992.0 * total;
            uint32_t lo = 0, hi = keys - 1;
            while (lo < hi) { /* first rank whose cdf exceeds x */
                uint32_t mid = lo + (hi - lo) / 2;
                if (cdf[mid] <= x) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            out[i] = rank_to_key[lo];
        }
        free(cdf);
        free(rank_to_key);
    }
    return out;
}

static volatile uint32_t sink;

static void report(const char *name, double best) { printf("c/%s: %.2f ns per call\n", name, best); }

static void bench_bucket(void) {
    tg_bucket bucket = TG_BUCKET_INIT;
    tg_decision d;
    const uint64_t n = 20000000;
    double best = 1e9;
    uint64_t now = 0, i;
    int r;
    /* Admitted: rate one per tick, burst 2^32 - 1; a round starts 2^33 ticks later. */
    check(tg_bucket_init(&bucket, 0xffffffffull, 1, 1), "tg_bucket_init");
    for (r = 0; r < ROUNDS; r++) {
        uint64_t t0, allowed = 0;
        now += 1ull << 33;
        t0 = now_ns();
        for (i = 0; i < n; i++) {
            tg_bucket_decide(&bucket, now, 1, &d);
            allowed += d.outcome == TG_OUTCOME_ALLOWED;
        }
        if (allowed != n) {
            fprintf(stderr, "bucket/allow: %llu of %llu allowed\n", (unsigned long long)allowed,
                    (unsigned long long)n);
            exit(1);
        }
        best = fmin(best, (double)(now_ns() - t0) / (double)n);
    }
    report("bucket/allow", best);

    /* Refused: a full bucket of 1 that refills once an hour. */
    best = 1e9;
    check(tg_bucket_init(&bucket, 1, 1, 3600 * SECOND), "tg_bucket_init");
    check(tg_bucket_decide(&bucket, 0, 1, &d), "tg_bucket_decide");
    for (r = 0; r < ROUNDS; r++) {
        uint64_t t0 = now_ns(), refused = 0;
        for (i = 0; i < n; i++) {
            tg_bucket_decide(&bucket, 1, 1, &d);
            refused += d.outcome == TG_OUTCOME_LIMITED;
        }
        if (refused != n) {
            fprintf(stderr, "bucket/deny: %llu of %llu refused\n", (unsigned long long)refused,
                    (unsigned long long)n);
            exit(1);
        }
        best = fmin(best, (double)(now_ns() - t0) / (double)n);
    }
    report("bucket/deny", best);
}

static void bench_table(uint32_t keys, int zipf) {
    tg_quota quota;
    tg_table *table;
    tg_decision d;
    tg_table_stats stats;
    size_t capacity = (size_t)keys * 10 / 7 + 1, size = tg_table_size(capacity, 1);
    size_t align = tg_table_align();
    void *memory = aligned_alloc(align, (size + align - 1) / align * align);
    uint32_t *stream = key_stream(keys, zipf);
    tg_key *stream_keys = malloc(sizeof *stream_keys * STREAM);
    uint64_t now = 0, i, allowed = 0;
    double best = 1e9;
    char name[64];
    int r;
    if (memory == NULL || stream_keys == NULL) {
        exit(1);
    }
    memset(memory, 0, size);
    check(tg_quota_init(&quota, 30, 2, SECOND), "tg_quota_init");
    check(tg_table_init_buckets(memory, size, capacity, &quota, 1, TG_FULL_POLICY_FAIL_CLOSED,
                                0x5eed, 0xcafe, &table),
          "tg_table_init_buckets");
    for (i = 0; i < keys; i++) {
        check(tg_table_decide(table, key_of((uint32_t)i), 0, 0, 1, &d), "tg_table_decide");
    }
    for (i = 0; i < STREAM; i++) {
        stream_keys[i] = key_of(stream[i]);
    }
    for (r = 0; r < ROUNDS; r++) {
        uint64_t t0;
        now += 20 * SECOND; /* every bucket drained: as the Rust bench's batches */
        t0 = now_ns();
        for (i = 0; i < STREAM; i++) {
            tg_table_decide(table, stream_keys[i], 0, now, 1, &d);
            allowed += d.outcome == TG_OUTCOME_ALLOWED;
        }
        best = fmin(best, (double)(now_ns() - t0) / (double)STREAM);
    }
    sink = (uint32_t)allowed;
    check(tg_table_get_stats(table, &stats), "tg_table_get_stats");
    snprintf(name, sizeof name, "table/%u/%s", keys, zipf ? "zipf" : "uniform");
    report(name, best);
    printf("c/%s: %llu keys held in %llu slots, %llu full-table answers\n", name,
           (unsigned long long)stats.occupied, (unsigned long long)stats.capacity,
           (unsigned long long)stats.rejected);
    free(stream_keys);
    free(stream);
    free(memory);
}

#define THREADS 2
#define PER_THREAD 2000000ul

static tg_bucket contended = TG_BUCKET_INIT;

/* PER_THREAD decisions on the contended bucket, the clock read for each; its own time. */
static void *run_thread(void *arg) {
    uint64_t t0 = now_ns();
    unsigned long i;
    tg_decision d;
    (void)arg;
    for (i = 0; i < PER_THREAD; i++) {
        check(tg_bucket_decide(&contended, now_ns(), 1, &d), "tg_bucket_decide");
    }
    return (void *)(uintptr_t)(now_ns() - t0);
}

/* THREADS threads on one bucket (every decision a compare-and-swap on one word). */
static void bench_threads(void) {
    pthread_t tid[THREADS];
    double best = 0;
    int r, t;
    check(tg_bucket_init(&contended, 1000000, 1000000, SECOND), "tg_bucket_init");
    for (r = 0; r < ROUNDS; r++) {
        uint64_t slowest = 0;
        for (t = 0; t < THREADS; t++) {
            if (pthread_create(&tid[t], NULL, run_thread, NULL) != 0) {
                exit(1);
            }
        }
        for (t = 0; t < THREADS; t++) {
            void *ns = NULL;
            pthread_join(tid[t], &ns);
            if ((uint64_t)(uintptr_t)ns > slowest) {
                slowest = (uint64_t)(uintptr_t)ns;
            }
        }
        if (r == 0 || (double)slowest / PER_THREAD < best) {
            best = (double)slowest / PER_THREAD;
        }
    }
    printf("c/bucket_%d_threads_one_bucket_clock_read: %.1f ns per call\n", THREADS, best);
}

int main(void) {
    bench_bucket();
    bench_threads();
    bench_table(1000, 0);
    bench_table(1000, 1);
    bench_table(1000000, 0);
    bench_table(1000000, 1);
    return 0;
}
