/*
 * A small benchmark of the C ABI (not a test; speed is never asserted): nanoseconds per
 * tg_bucket_decide on one thread, and with THREADS threads sharing one bucket.
 *   cc -O2 -Iinclude tests/c/bench.c target/release/libtollgate.a -lpthread -ldl -lm -o bench
 *   ./bench [decisions per thread] [threads]
 */
#define _POSIX_C_SOURCE 200112L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tollgate.h"

static tg_bucket shared = TG_BUCKET_INIT;
static unsigned long per_thread = 10000000;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *run(void *arg) {
    unsigned long i, allowed = 0;
    tg_decision d;
    (void)arg;
    for (i = 0; i < per_thread; i++) {
        if (tg_bucket_decide(&shared, now_ns(), 1, &d) == TG_STATUS_OK &&
            d.outcome == TG_OUTCOME_ALLOWED) {
            allowed++;
        }
    }
    return (void *)(uintptr_t)allowed;
}

int main(int argc, char **argv) {
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    pthread_t tid[64];
    uint64_t t0, t1;
    int t;
    if (argc > 1) {
        per_thread = strtoul(argv[1], NULL, 10);
    }
    if (threads < 1 || threads > 64 ||
        tg_bucket_init(&shared, 1000000, 1000000, 1000000000) != TG_STATUS_OK) {
        return 1;
    }
    t0 = now_ns();
    run(NULL);
    t1 = now_ns();
    printf("1 thread: %.1f ns per decision (clock read included)\n",
           (double)(t1 - t0) / (double)per_thread);
    t0 = now_ns();
    for (t = 0; t < threads; t++) {
        pthread_create(&tid[t], NULL, run, NULL);
    }
    for (t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
    }
    t1 = now_ns();
    printf("%d threads, one bucket: %.1f ns per decision per thread\n", threads,
           (double)(t1 - t0) / (double)per_thread);
    return 0;
}
