/* hftok.h — Hugging Face tokenizer.json with a BPE model, of both kinds in use:
 *  - byte-level (Llama-3, Qwen2/3): the pre-tokenizer's split regexes (PCRE2, Unicode
 *    properties), the GPT-2 byte-to-unicode mapping, a ByteLevel decoder;
 *  - SentencePiece (Llama-2, Mistral, TinyLlama): a Prepend("▁") + Replace(" " -> "▁") normalizer
 *    or a Metaspace pre-tokenizer, characters merged as they are, pieces that are not in the
 *    vocabulary written as their <0xNN> bytes (byte_fallback); decoding "▁" -> " ", byte pieces ->
 *    bytes, and the leading space of the text dropped (Strip after Fuse, or Metaspace).
 * Added tokens are kept whole; merges go by rank (leftmost on ties; `ignore_merges`); an NFC
 * normalizer runs through utf8proc. Every other model type (WordPiece, Unigram, ...),
 * normalizer, pre-tokenizer or decoder component, and every setting of them that would change
 * the ids or the text and is not implemented, is refused at load with the file, the field and
 * its value (docs/models.md, "tokenizer.json fields"). Local. Used through tokenizer.h
 * (ifk_tokenizer_load picks it for a .json file). */
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
/* The bytes of token id (pointer into t, valid until the next call). first: the token starts the
 * text (the decoder's leading-space rule applies). */
const char *ifk_hftok_decode(ifk_hftok *t, int id, int first, size_t *len);
/* The id the file's post_processor puts before a text when special tokens are added
 * (TemplateProcessing [BOS] $A, alone or in a Sequence), or -1 (null, ByteLevel, [$A]). Other
 * post-processors are refused at load. */
int ifk_hftok_bos(const ifk_hftok *t);
int ifk_hftok_lookup(const ifk_hftok *t, const char *piece, size_t len);

#endif
