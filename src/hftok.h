/* hftok.h — Hugging Face tokenizer.json, byte-level BPE as Llama-3 and Qwen2/3 use it: added
 * tokens kept whole, the pre-tokenizer's split regex (PCRE2, Unicode properties), the GPT-2
 * byte-to-unicode mapping, merges by rank (with `ignore_merges`). Local. Used through
 * tokenizer.h (ifk_tokenizer_load picks it for a .json file). */
#ifndef IFK_HFTOK_H
#define IFK_HFTOK_H

#include <stddef.h>

#include "status.h"

typedef struct ifk_hftok ifk_hftok;

ifk_status ifk_hftok_load(ifk_hftok **t, const char *path);
void ifk_hftok_free(ifk_hftok **t);
int ifk_hftok_vocab(const ifk_hftok *t);
/* Appends the ids of text[0..len) to ids (capacity *cap, grown with realloc), *n updated. */
ifk_status ifk_hftok_encode(const ifk_hftok *t, const char *text, size_t len, int **ids, int *n, int *cap);
/* The bytes of token id (pointer into t, valid until the next call). */
const char *ifk_hftok_decode(ifk_hftok *t, int id, size_t *len);
int ifk_hftok_lookup(const ifk_hftok *t, const char *piece, size_t len);

#endif
