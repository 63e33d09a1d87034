/* fuzz_tokenizer.c — tokenizer.bin loading, then encoding arbitrary bytes with both encoders
 * (which must agree) and decoding the result. Input: [4-byte split][tokenizer file][text]. */
#include "fuzz_common.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    uint32_t split;
    memcpy(&split, data, 4);
    data += 4, size -= 4;
    split = size ? split % (uint32_t)(size + 1) : 0;
    ifk_tokenizer *t;
    if (ifk_tokenizer_load(&t, fuzz_file_(data, split, ".tok"), 0) != IFK_OK) return 0;
    const char *text = (const char *)data + split;
    size_t len = size - split;
    int *a, na, *b, nb;
    if (ifk_tokenizer_encode(t, text, len, 1, 1, &a, &na) == IFK_OK &&
        ifk_tokenizer_encode_naive(t, text, len, 1, 1, &b, &nb) == IFK_OK) {
        if (na != nb || memcmp(a, b, sizeof(int) * (size_t)na)) abort(); /* heap and llama2.c loop disagree */
        size_t total = 0;
        for (int i = 1; i < na; i++) {
            size_t pl;
            ifk_tokenizer_decode(t, a[i - 1], a[i], &pl);
            total += pl;
        }
        (void)total;
        free(a), free(b);
    }
    ifk_tokenizer_free(&t);
    return 0;
}
