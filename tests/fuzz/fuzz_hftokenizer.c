/* fuzz_hftokenizer.c — tokenizer.json: loading (BPE model, vocab, merges, added tokens, the
 * pre-tokenizer regex), then encoding and decoding a fixed multilingual text. */
#include "fuzz_common.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ifk_tokenizer *t;
    if (ifk_tokenizer_load(&t, fuzz_file_(data, size, ".json"), 0) != IFK_OK) return 0;
    static const char text[] = "Hello, wor\xc3\xa9ld! \xe6\x97\xa5\xe6\x9c\xac 123 <|x|> \xff\xfe   \n\n";
    int *ids, n;
    if (ifk_tokenizer_encode(t, text, sizeof text - 1, 1, 1, &ids, &n) == IFK_OK) {
        for (int i = 0; i < n; i++) {
            size_t len;
            ifk_tokenizer_decode(t, i ? ids[i - 1] : -1, ids[i], &len);
        }
        free(ids);
    }
    ifk_tokenizer_free(&t);
    return 0;
}
