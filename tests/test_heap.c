/* test_heap.c — the binary heap against naive references: popping everything gives qsort's order,
 * and interleaved pushes and pops always give the smallest element a linear scan finds. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"

typedef struct {
    float key;
    int id; /* unique: breaks ties, so the order is total and the expected sequence unique */
} item_;

static int before_(const void *pa, const void *pb) {
    const item_ *a = pa, *b = pb;
    return a->key < b->key || (a->key == b->key && a->id < b->id);
}

static int cmp_(const void *a, const void *b) { return before_(a, b) ? -1 : before_(b, a) ? 1 : 0; }

static uint64_t rng_ = 88172645463325252ull;
static uint32_t next_(void) {
    rng_ ^= rng_ << 13, rng_ ^= rng_ >> 7, rng_ ^= rng_ << 17;
    return (uint32_t)(rng_ >> 32);
}

Test(heap, popping_everything_gives_the_sorted_order) {
    for (int n = 0; n <= 257; n += n < 10 ? 1 : 37) {
        item_ *in = malloc(sizeof(item_) * (size_t)(n + 1)), *h = malloc(sizeof(item_) * (size_t)(n + 1));
        for (int i = 0; i < n; i++) in[i] = (item_){(float)(next_() % 8), i}; /* many equal keys */
        ifk_heap hp = {h, sizeof(item_), 0, before_};
        for (int i = 0; i < n; i++) ifk_heap_push(&hp, &in[i]);
        cr_assert_eq(hp.n, n);
        qsort(in, (size_t)n, sizeof(item_), cmp_);
        for (int i = 0; i < n; i++) {
            item_ got;
            ifk_heap_pop(&hp, &got);
            cr_assert(got.key == in[i].key && got.id == in[i].id, "n %d, pop %d: got (%g, %d), want (%g, %d)", n, i,
                      got.key, got.id, in[i].key, in[i].id);
        }
        cr_assert_eq(hp.n, 0);
        free(in), free(h);
    }
}

/* Elements of 3 bytes (no alignment to lean on), compared as a 24-bit big-endian number. */
static int before3_(const void *pa, const void *pb) { return memcmp(pa, pb, 3) < 0; }

Test(heap, interleaved_pushes_and_pops_match_a_linear_scan) {
    enum { CAP = 500 };
    unsigned char h[3 * CAP], ref[3 * CAP];
    int nref = 0;
    ifk_heap hp = {h, 3, 0, before3_};
    for (int step = 0; step < 20000; step++) {
        if (nref < CAP && (nref == 0 || next_() % 3)) {
            unsigned char e[3] = {(unsigned char)(next_() % 4), (unsigned char)next_(), (unsigned char)next_()};
            ifk_heap_push(&hp, e);
            memcpy(ref + 3 * nref++, e, 3);
        } else {
            int m = 0;
            for (int i = 1; i < nref; i++)
                if (memcmp(ref + 3 * i, ref + 3 * m, 3) < 0) m = i;
            unsigned char got[3];
            ifk_heap_pop(&hp, got);
            cr_assert(!memcmp(got, ref + 3 * m, 3), "step %d: popped %02x%02x%02x, the smallest is %02x%02x%02x", step,
                      got[0], got[1], got[2], ref[3 * m], ref[3 * m + 1], ref[3 * m + 2]);
            memmove(ref + 3 * m, ref + 3 * (m + 1), (size_t)(3 * (nref - m - 1)));
            nref--;
        }
        cr_assert_eq(hp.n, nref);
    }
}
