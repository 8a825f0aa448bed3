/* The key table's memory holds no pointers: a copy at another address is an independent table,
 * and one memory mapped at two addresses (two mmaps of one memfd, as two processes would) is one
 * table. Run under ASan+UBSan: the copy's original is freed before the copy is used, so any
 * read of the old address would be reported. A table initialised by tg_table_init_* in memory
 * shared with a forked child gets its slot back when the child is killed mid-insert. Linux
 * (memfd_create). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define MS 1000

static tg_quota tier(void) {
    tg_quota q = TG_QUOTA_INIT;
    CHECK_OK(tg_quota_init(&q, 3, 1, MS)); /* a burst of 3, 1 per second */
    return q;
}

static void test_copy_is_an_independent_table(void) {
    const size_t size = TG_TABLE_SIZE(100, 1);
    tg_quota q = tier();
    tg_table *a = NULL, *b = NULL;
    tg_key key = tg_key_pair(7, 42);
    tg_table_stats st;
    tg_decision d;
    unsigned char *mem_a = aligned_alloc(TG_TABLE_ALIGN, size);
    unsigned char *mem_b = aligned_alloc(TG_TABLE_ALIGN, size);
    unsigned char *damaged = aligned_alloc(TG_TABLE_ALIGN, size);
    int i;

    CHECK(mem_a != NULL && mem_b != NULL && damaged != NULL);
    CHECK_OK(tg_table_init_buckets(mem_a, size, 100, &q, 1, TG_FULL_POLICY_FAIL_CLOSED, 1, 2, &a));
    for (i = 0; i < 3; i++) {
        CHECK_OK(tg_table_decide(a, key, 0, 0, 1, &d));
        CHECK(d.outcome == TG_OUTCOME_ALLOWED);
    }
    memcpy(mem_b, mem_a, size);
    memcpy(damaged, mem_a, size);
    free(mem_a); /* the copy must never read its original again */
    CHECK_OK(tg_table_attach(mem_b, size, &b));
    CHECK((void *)b == (void *)mem_b);
    CHECK_OK(tg_table_decide(b, key, 0, 0, 1, &d)); /* the copy holds the key's level */
    CHECK(d.outcome == TG_OUTCOME_LIMITED && d.used == 3 && d.retry_after == MS);
    CHECK_OK(tg_table_decide(b, key, 0, MS, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED);
    CHECK_OK(tg_table_get_stats(b, &st));
    CHECK(st.capacity == 100 && st.occupied == 1);
    /* A damaged parameter (the seed, byte 56) fails the checksum. */
    damaged[56] ^= 1;
    CHECK_STATUS(tg_table_attach(damaged, size, &a), TG_STATUS_LAYOUT_MISMATCH);
    /* A recorded size beyond the memory given is refused. */
    CHECK_STATUS(tg_table_attach(mem_b, size - TG_TABLE_GROUP_SIZE, &a),
                 TG_STATUS_LAYOUT_MISMATCH);
    free(mem_b);
    free(damaged);
}

static void test_two_mappings_are_one_table(void) {
    const size_t size = TG_TABLE_SIZE(100, 1);
    tg_quota q = tier();
    tg_table *one = NULL, *two = NULL;
    tg_key key = tg_key_pair(1, 2);
    tg_table_stats s1, s2;
    tg_decision d;
    void *p1, *p2;
    int i, fd = memfd_create("tollgate-table", 0);

    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)size) == 0);
    p1 = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    p2 = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p1 != MAP_FAILED && p2 != MAP_FAILED && p1 != p2);
    /* Page-aligned, so aligned to TG_TABLE_ALIGN. */
    CHECK_OK(tg_table_init_buckets(p1, size, 100, &q, 1, TG_FULL_POLICY_FAIL_CLOSED, 5, 6, &one));
    CHECK_OK(tg_table_attach(p2, size, &two));
    CHECK((void *)two == p2);
    /* Decisions through either address spend one bucket. */
    for (i = 0; i < 3; i++) {
        CHECK_OK(tg_table_decide(i % 2 ? one : two, key, 0, 0, 1, &d));
        CHECK(d.outcome == TG_OUTCOME_ALLOWED && d.used == (uint64_t)i + 1);
    }
    CHECK_OK(tg_table_decide(one, key, 0, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED);
    CHECK_OK(tg_table_decide(two, key, 0, 0, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_LIMITED);
    CHECK_OK(tg_table_get_stats(one, &s1));
    CHECK_OK(tg_table_get_stats(two, &s2));
    CHECK(s1.occupied == 1 && s2.occupied == 1 && s1.capacity == s2.capacity);
    /* The first mapping goes away; the second still is the whole table. */
    CHECK(munmap(p1, size) == 0);
    CHECK_OK(tg_table_decide(two, key, 0, MS, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED);
    CHECK_OK(tg_table_decide(two, tg_key_pair(3, 4), 0, MS, 1, &d));
    CHECK(d.outcome == TG_OUTCOME_ALLOWED);
    CHECK(munmap(p2, size) == 0);
    CHECK(close(fd) == 0);
}

/* New keys into a table: how many were admitted (fail closed: a key with no room is not). */
static int admit_new_keys(tg_table *t, uint64_t first, uint64_t n) {
    int admitted = 0;
    for (uint64_t shop = first; shop < first + n; shop++) {
        admitted += tg_table_check(t, 9, shop, 0, 0, 1, NULL) == TG_OUTCOME_ALLOWED;
    }
    return admitted;
}

/* A table that tg_table_init_buckets made in memory the caller shares with a forked child (an
 * anonymous MAP_SHARED mapping, as nginx's master makes before forking its workers): the child
 * claims a slot for a new key and is killed before writing the key. The claim records the
 * child's process id: while the child lives (or is an unreaped zombie) its slot stays busy;
 * once its parent has reaped it, the next insertion that meets the slot takes it. */
static void test_a_killed_process_claim_is_undone(void) {
    const size_t size = TG_TABLE_SIZE(5, 1);
    /* Slot 4's state word: word 4 of the first group, after the header and the one tier. */
    const size_t slot4 = (TG_TABLE_HEADER_SIZE + TG_TABLE_TIER_SIZE + TG_TABLE_GROUP_SIZE - 1) /
                             TG_TABLE_GROUP_SIZE * TG_TABLE_GROUP_SIZE / 8 + 4;
    tg_quota q = tier();
    tg_table *t = NULL;
    tg_table_stats st;
    int ready[2], status = 0;
    char byte = 0;
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    CHECK(mem != MAP_FAILED && pipe(ready) == 0);
    CHECK_OK(tg_table_init_buckets(mem, size, 5, &q, 1, TG_FULL_POLICY_FAIL_CLOSED, 7, 8, &t));
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        /* What an insertion's claim leaves: slot 4 busy (tag 1, tier 0) under claim version
         * (this process's id << 30 | sequence). It is killed before writing the key. */
        volatile uint64_t *words = (volatile uint64_t *)mem;
        words[slot4] = ((((uint64_t)getpid() << 30) | 3) << 11) | 1;
        if (write(ready[1], "x", 1) != 1) {
            _exit(1);
        }
        for (;;) {
            pause();
        }
    }
    CHECK(read(ready[0], &byte, 1) == 1);
    /* The child lives: its claim stands, the fifth new key finds no room. */
    CHECK(admit_new_keys(t, 1, 5) == 4);
    CHECK(kill(child, SIGKILL) == 0);
    /* Killed but not yet reaped (a zombie, or not yet dead): its id is still taken. */
    CHECK(admit_new_keys(t, 6, 1) == 0);
    CHECK(waitpid(child, &status, 0) == child && WIFSIGNALED(status));
    /* Gone: the next new key takes the child's slot. */
    CHECK(admit_new_keys(t, 7, 1) == 1);
    CHECK_OK(tg_table_get_stats(t, &st));
    CHECK(st.capacity == 5 && st.occupied == 5);
    CHECK(munmap(mem, size) == 0);
    CHECK(close(ready[0]) == 0 && close(ready[1]) == 0);
}

int main(void) {
    test_copy_is_an_independent_table();
    test_two_mappings_are_one_table();
    test_a_killed_process_claim_is_undone();
    return check_summary();
}
