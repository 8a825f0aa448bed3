/* A tiny test runner for the C tests: CHECK counts, the final line says "N passed, N failed". */
#ifndef TG_TEST_CHECK_H
#define TG_TEST_CHECK_H

#include <stdio.h>

#include "tollgate.h"

static int tg_test_passed;
static int tg_test_failed;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (cond) {                                                                   \
            tg_test_passed++;                                                         \
        } else {                                                                      \
            tg_test_failed++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
        }                                                                             \
    } while (0)

/* A call's status, compared with the one expected; prints both texts on a mismatch. */
#define CHECK_STATUS(call, expected)                                                  \
    do {                                                                              \
        tg_status got_ = (call);                                                      \
        tg_status want_ = (expected);                                                 \
        if (got_ == want_) {                                                          \
            tg_test_passed++;                                                         \
        } else {                                                                      \
            tg_test_failed++;                                                         \
            fprintf(stderr, "%s:%d: %s\n  returned %u (%s), expected %u (%s)\n",      \
                    __FILE__, __LINE__, #call, (unsigned)got_,                        \
                    tg_status_str((uint32_t)got_), (unsigned)want_,                   \
                    tg_status_str((uint32_t)want_));                                  \
        }                                                                             \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, TG_STATUS_OK)

/* Prints the summary line and returns the process exit code. */
static int check_summary(void) {
    printf("%d passed, %d failed\n", tg_test_passed, tg_test_failed);
    return tg_test_failed == 0 ? 0 : 1;
}

#endif
