/* test_strmap.c — the string map against a naive list, and FNV-1a against its published vectors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

Test(strmap, fnv1a_matches_the_published_test_vectors) {
    cr_assert_eq(ifk_fnv1a("", 0), 0xcbf29ce484222325ull);
    cr_assert_eq(ifk_fnv1a("a", 1), 0xaf63dc4c8601ec8cull);
    cr_assert_eq(ifk_fnv1a("foobar", 6), 0x85944171f73967e8ull);
}

Test(strmap, put_get_replace_and_keys_with_explicit_length) {
    ifk_strmap *m;
    cr_assert_eq(ifk_strmap_create(&m, 0), IFK_OK);
    cr_assert_eq(ifk_strmap_put(m, "abc", 3, 7), IFK_OK);
    cr_assert_eq(ifk_strmap_put(m, "abcdef", 2, 8), IFK_OK); /* the key "ab" */
    cr_assert_eq(ifk_strmap_put(m, "a\0b", 3, 9), IFK_OK);   /* a NUL inside a key */
    cr_assert_eq(ifk_strmap_put(m, "", 0, 10), IFK_OK);
    int v = -1;
    cr_assert(ifk_strmap_get(m, "abc", 3, &v) && v == 7);
    cr_assert(ifk_strmap_get(m, "ab", 2, &v) && v == 8);
    cr_assert(ifk_strmap_get(m, "a\0b", 3, &v) && v == 9);
    cr_assert(ifk_strmap_get(m, "", 0, &v) && v == 10);
    cr_assert(!ifk_strmap_get(m, "a", 1, &v));
    cr_assert(!ifk_strmap_get(m, "abcd", 3 + 1, &v));
    cr_assert_eq(ifk_strmap_put(m, "abc", 3, 70), IFK_OK);
    cr_assert(ifk_strmap_get(m, "abc", 3, &v) && v == 70, "put replaces");
    cr_assert_eq(ifk_strmap_count(m), 4);
    int x = 5;
    cr_assert_eq(ifk_strmap_put_ptr(m, "p", 1, &x), IFK_OK);
    void *p = NULL;
    cr_assert(ifk_strmap_get_ptr(m, "p", 1, &p) && p == &x);
    ifk_strmap_free(&m);
    cr_assert_null(m);
}

/* random puts and deletes over a small key space, checked against a plain array after each step */
Test(strmap, random_operations_agree_with_a_naive_list) {
    enum { K = 300 };
    int ref[K]; /* value, -1 = absent */
    for (int i = 0; i < K; i++) ref[i] = -1;
    ifk_strmap *m;
    cr_assert_eq(ifk_strmap_create(&m, 4), IFK_OK);
    unsigned seed = 12345;
    char key[32];
    for (int step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)((seed >> 8) % K), op = (int)((seed >> 4) % 3);
        int len = snprintf(key, sizeof key, "key-%d", k);
        if (op < 2) {
            cr_assert_eq(ifk_strmap_put(m, key, (size_t)len, step), IFK_OK);
            ref[k] = step;
        } else {
            cr_assert_eq(ifk_strmap_del(m, key, (size_t)len), ref[k] >= 0, "del %s", key);
            ref[k] = -1;
        }
        if (step % 97 == 0 || step > 19900) {
            size_t n = 0;
            for (int j = 0; j < K; j++) {
                int l = snprintf(key, sizeof key, "key-%d", j), v = -1;
                int found = ifk_strmap_get(m, key, (size_t)l, &v);
                cr_assert_eq(found, ref[j] >= 0, "step %d key %d", step, j);
                if (found) {
                    cr_assert_eq(v, ref[j]);
                    n++;
                }
            }
            cr_assert_eq(ifk_strmap_count(m), n);
        }
    }
    ifk_strmap_free(&m);
}

Test(strmap, reserve_then_many_keys) {
    ifk_strmap *m;
    cr_assert_eq(ifk_strmap_create(&m, 10), IFK_OK);
    cr_assert_eq(ifk_strmap_reserve(m, 50000), IFK_OK);
    char key[32];
    for (int i = 0; i < 50000; i++) {
        int l = snprintf(key, sizeof key, "%d", i * 7919);
        cr_assert_eq(ifk_strmap_put(m, key, (size_t)l, i), IFK_OK);
    }
    for (int i = 0; i < 50000; i++) {
        int l = snprintf(key, sizeof key, "%d", i * 7919), v;
        cr_assert(ifk_strmap_get(m, key, (size_t)l, &v) && v == i);
    }
    cr_assert_eq(ifk_strmap_count(m), 50000);
    ifk_strmap_free(&m);
}
