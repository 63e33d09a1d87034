/* tokenizer.h — llama2.c tokenizer.bin: SentencePiece-style BPE over UTF-8 pieces with byte
 * fallback, scored merges. Local.
 *
 * Encoding is exactly llama2.c's: optional BOS, a dummy-prefix " " piece when the text is
 * non-empty, each UTF-8 character as its piece (or its bytes as <0xXX> pieces), then repeatedly
 * the adjacent pair whose concatenation is a piece with the highest score is merged (leftmost on
 * ties). ifk_tokenizer_encode does the merges with a heap in O(n log n); the quadratic loop of
 * llama2.c is kept as ifk_tokenizer_encode_naive, the reference it is tested against. */
#ifndef IFK_TOKENIZER_H
#define IFK_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

typedef struct ifk_tokenizer ifk_tokenizer;

/* Reads a tokenizer.bin. expect_vocab > 0 requires exactly that many pieces (the model's vocab). */
ifk_status ifk_tokenizer_load(ifk_tokenizer **t, const char *path, int expect_vocab);
void ifk_tokenizer_free(ifk_tokenizer **t);
/* A .json path is read as a Hugging Face tokenizer.json (BPE, byte-level or SentencePiece kind,
 * hftok.h): its BOS rule is its own (tokenizer_config.json's add_bos_token / bos_token, else the
 * post_processor; docs/models.md), EOS is the one set here (from the model's config); the dummy
 * prefix is the file's own business (its normalizer or Metaspace pre-tokenizer). A .model takes
 * BOS and EOS from here. Decoding drops the leading space of a SentencePiece-kind text at the
 * start or right after BOS. */
void ifk_tokenizer_set_special(ifk_tokenizer *t, int bos, int eos);
int ifk_tokenizer_vocab(const ifk_tokenizer *t);
/* The id encoding with bos=1 puts before the text, or -1 when the tokenizer adds none (a
 * tokenizer.json whose template or add_bos_token adds no BOS: Qwen2/3); a llama2.c .bin: 1. */
int ifk_tokenizer_bos(const ifk_tokenizer *t);
/* The tokenizer's identity: a 64-bit FNV-1a hash of its file's bytes (0 for NULL). A store's
 * model fingerprint includes it (ifk_model.tok_identity), so a store is bound to its tokenizer. */
uint64_t ifk_tokenizer_identity(const ifk_tokenizer *t);

/* Encodes text[len] into *ids (malloc'd, caller frees), *n tokens. bos: add the tokenizer's
 * special tokens before the text as transformers' add_special_tokens=True does (ifk_tokenizer_bos:
 * possibly none); eos: append the EOS id. */
ifk_status ifk_tokenizer_encode(const ifk_tokenizer *t, const char *text, size_t len, int bos, int eos, int **ids,
                                int *n);
ifk_status ifk_tokenizer_encode_naive(const ifk_tokenizer *t, const char *text, size_t len, int bos, int eos,
                                      int **ids, int *n);

/* The bytes token `tok` stands for after `prev` (byte pieces become their byte; a leading space
 * is dropped right after BOS). Returns a pointer into the tokenizer and the length. */
const char *ifk_tokenizer_decode(const ifk_tokenizer *t, int prev, int tok, size_t *len);

/* Writes the bytes of token tok after prev to f, skipping lone unprintable control bytes as
 * llama2.c does. */
void ifk_print_token(FILE *f, const ifk_tokenizer *t, int prev, int tok);

/* The text of ids[n] decoded after token prev (malloc'd, NUL-terminated; length in *len if not
 * NULL; NULL when out of memory). With no tokenizer (a random model) the text is empty. */
char *ifk_detokenize(const ifk_tokenizer *t, int prev, const int *ids, int n, size_t *len);
/* The raw piece text of a token (for messages and tests). */
const char *ifk_tokenizer_piece(const ifk_tokenizer *t, int tok);
/* Id of an exact piece, or -1. */
int ifk_tokenizer_lookup(const ifk_tokenizer *t, const char *piece, size_t len);

#endif
