/* heap.c — binary min-heap (heap.h). Both sifts move a hole rather than swapping, so each element
 * is copied once per level. */
#include "heap.h"

#include <string.h>

#define AT_(h, i) ((char *)(h)->base + (size_t)(i) * (h)->size)

void ifk_heap_push(ifk_heap *h, const void *elem) {
    int i = h->n++;
    for (; i > 0 && h->before(elem, AT_(h, (i - 1) / 2)); i = (i - 1) / 2) memcpy(AT_(h, i), AT_(h, (i - 1) / 2), h->size);
    memcpy(AT_(h, i), elem, h->size);
}

void ifk_heap_pop(ifk_heap *h, void *top) {
    memcpy(top, AT_(h, 0), h->size);
    /* the last element sinks from the root; it sits at index n, outside the live range, meanwhile */
    const char *last = AT_(h, --h->n);
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, b = i;
        const char *bc = last;
        if (l < h->n && h->before(AT_(h, l), bc)) b = l, bc = AT_(h, l);
        if (r < h->n && h->before(AT_(h, r), bc)) b = r;
        if (b == i) break;
        memcpy(AT_(h, i), AT_(h, b), h->size);
        i = b;
    }
    if (h->n > 0) memcpy(AT_(h, i), last, h->size);
}
