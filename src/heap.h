/* heap.h — a binary min-heap over caller-owned fixed-size elements, ordered by a caller's
 * "comes first" test: the priority queues of the BPE merge loops (hftok.c, tokenizer.c). The
 * caller allocates the array for the most elements it will hold; the heap never allocates.
 * Local, not thread-safe. */
#ifndef IFK_HEAP_H
#define IFK_HEAP_H

#include <stddef.h>

typedef struct {
    void *base;  /* (capacity, size) bytes, owned by the caller */
    size_t size; /* bytes per element */
    int n;       /* elements held */
    /* nonzero when a must come out before b; a strict order (ties keep no particular order) */
    int (*before)(const void *a, const void *b);
} ifk_heap;

/* Copies *elem in; the caller ensures room for n + 1 elements. O(log n). */
void ifk_heap_push(ifk_heap *h, const void *elem);
/* Copies the first element to *top and removes it; n must be > 0. O(log n). */
void ifk_heap_pop(ifk_heap *h, void *top);

#endif
