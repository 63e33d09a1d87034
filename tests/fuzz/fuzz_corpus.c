/* fuzz_corpus.c — corpus JSONL indexing (skip-bad mode, so every line is judged) and re-reading. */
#include "corpus.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ifk_corpus c;
    if (ifk_corpus_index(&c, fuzz_file_(data, size, ".jsonl"), 1) != IFK_OK) return 0;
    for (int i = 0; i < c.n; i++) {
        ifk_doc d;
        if (ifk_corpus_read(&c, i, &d) == IFK_OK) ifk_doc_free(&d);
    }
    ifk_corpus_free(&c);
    ifk_doc d;
    if (ifk_doc_parse((const char *)data, size, "fuzz:1", &d) == IFK_OK) ifk_doc_free(&d);
    return 0;
}
