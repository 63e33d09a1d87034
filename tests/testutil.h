/* testutil.h — small helpers shared by the Criterion tests. */
#ifndef IFK_TESTUTIL_H
#define IFK_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define STORIES_BIN IFK_MODEL_DIR "/stories260K.bin"
#define STORIES_TOK IFK_MODEL_DIR "/tok512.bin"

/* The golden greedy output of ../shared/models/stories260K/README.md (prompt "Once upon a time",
 * 64 positions); llama2.c's run.c prints the same. It is the model's published test vector. */
#define STORIES_GOLDEN                                                                                         \
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "  \
    "she saw a big, red ball. She wanted to play with it, but it was too high.\nLily"

static inline float tu_rand(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return (float)((*s >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static inline float *tu_randvec(size_t n, uint64_t seed, float scale) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    uint64_t s = seed * 2654435761u + 88172645463325252ull;
    for (size_t i = 0; i < n; i++) v[i] = scale * tu_rand(&s);
    return v;
}

/* max |a-b| / (max |b| + floor): an error normalised by the reference's scale */
static inline double tu_maxrel(const float *a, const float *b, size_t n, double floor_) {
    double d = 0, m = floor_;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        d = e > d ? e : d;
        m = fabs(b[i]) > m ? fabs(b[i]) : m;
    }
    return d / m;
}

#endif
