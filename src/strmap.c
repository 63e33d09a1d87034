/* strmap.c — open-addressing string map (strmap.h). */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key; /* owned, NUL-terminated copy; NULL = empty slot */
    size_t len;
    uint64_t h;
    union {
        int i;
        void *p;
    } v;
} slot_;

struct ifk_strmap {
    slot_ *slot;
    size_t cap; /* power of two */
    size_t n;
};

uint64_t ifk_fnv1a(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static size_t cap_for_(size_t n) {
    size_t c = 16;
    while (c / 2 < n) {
        if (c > SIZE_MAX / 4 / sizeof(slot_)) return 0;
        c *= 2;
    }
    return c;
}

ifk_status ifk_strmap_create(ifk_strmap **out, size_t expect) {
    *out = NULL;
    size_t cap = cap_for_(expect);
    if (!cap) return IFK_FAIL(IFK_ERR_OOM, "string map: %zu keys is too many", expect);
    ifk_strmap *m = ifk_calloc(1, sizeof *m, "a string map");
    slot_ *s = m ? ifk_calloc(cap, sizeof *s, "a string map") : NULL;
    if (!s) {
        free(m);
        return IFK_ERR_OOM;
    }
    m->slot = s, m->cap = cap;
    *out = m;
    return IFK_OK;
}

void ifk_strmap_free(ifk_strmap **pm) {
    ifk_strmap *m = pm ? *pm : NULL;
    if (!m) return;
    for (size_t i = 0; i < m->cap; i++) free(m->slot[i].key);
    free(m->slot);
    free(m);
    *pm = NULL;
}

size_t ifk_strmap_count(const ifk_strmap *m) { return m->n; }

/* The slot holding key, or the empty slot where it would go. */
static size_t probe_(const ifk_strmap *m, const char *key, size_t len, uint64_t h) {
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const slot_ *s = &m->slot[i];
        if (!s->key || (s->h == h && s->len == len && memcmp(s->key, key, len) == 0)) return i;
    }
}

ifk_status ifk_strmap_reserve(ifk_strmap *m, size_t n) {
    if (n <= m->cap / 2) return IFK_OK;
    size_t cap = cap_for_(n);
    if (!cap) return IFK_FAIL(IFK_ERR_OOM, "string map: %zu keys is too many", n);
    slot_ *s = ifk_calloc(cap, sizeof *s, "a string map");
    if (!s) return IFK_ERR_OOM;
    slot_ *old = m->slot;
    size_t ocap = m->cap;
    m->slot = s, m->cap = cap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key) m->slot[probe_(m, old[i].key, old[i].len, old[i].h)] = old[i];
    free(old);
    return IFK_OK;
}

/* The slot of key, inserted (value unset) when absent. */
static ifk_status insert_(ifk_strmap *m, const char *key, size_t len, slot_ **out) {
    uint64_t h = ifk_fnv1a(key, len);
    size_t i = probe_(m, key, len, h);
    if (!m->slot[i].key) {
        IFK_CHECK(ifk_strmap_reserve(m, m->n + 1));
        i = probe_(m, key, len, h);
        char *k = ifk_malloc(len + 1, "a string map key");
        if (!k) return IFK_ERR_OOM;
        if (len) memcpy(k, key, len);
        k[len] = '\0';
        m->slot[i] = (slot_){.key = k, .len = len, .h = h};
        m->n++;
    }
    *out = &m->slot[i];
    return IFK_OK;
}

ifk_status ifk_strmap_put(ifk_strmap *m, const char *key, size_t len, int value) {
    slot_ *s;
    IFK_CHECK(insert_(m, key, len, &s));
    s->v.i = value;
    return IFK_OK;
}

ifk_status ifk_strmap_put_ptr(ifk_strmap *m, const char *key, size_t len, void *value) {
    slot_ *s;
    IFK_CHECK(insert_(m, key, len, &s));
    s->v.p = value;
    return IFK_OK;
}

static const slot_ *find_(const ifk_strmap *m, const char *key, size_t len) {
    const slot_ *s = &m->slot[probe_(m, key, len, ifk_fnv1a(key, len))];
    return s->key ? s : NULL;
}

int ifk_strmap_get(const ifk_strmap *m, const char *key, size_t len, int *value) {
    const slot_ *s = find_(m, key, len);
    if (s && value) *value = s->v.i;
    return s != NULL;
}

int ifk_strmap_get_ptr(const ifk_strmap *m, const char *key, size_t len, void **value) {
    const slot_ *s = find_(m, key, len);
    if (s && value) *value = s->v.p;
    return s != NULL;
}

int ifk_strmap_del(ifk_strmap *m, const char *key, size_t len) {
    size_t mask = m->cap - 1, i = probe_(m, key, len, ifk_fnv1a(key, len));
    if (!m->slot[i].key) return 0;
    free(m->slot[i].key);
    m->slot[i].key = NULL;
    m->n--;
    /* backward shift: move up every later entry of the run whose home is not in (i, j] */
    for (size_t j = (i + 1) & mask; m->slot[j].key; j = (j + 1) & mask) {
        size_t home = (size_t)m->slot[j].h & mask;
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        m->slot[i] = m->slot[j];
        m->slot[j].key = NULL;
        i = j;
    }
    return 1;
}
