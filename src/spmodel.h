/* spmodel.h — a SentencePiece `tokenizer.model` read and encoded by Debian's libsentencepiece
 * (C++; spmodel.cc is its C face). The library implements the whole model file: its normalizer,
 * dummy prefix, BPE or unigram model, byte fallback. Local. Used through tokenizer.h
 * (ifk_tokenizer_load picks it for a .model file). */
#ifndef IFK_SPMODEL_H
#define IFK_SPMODEL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "status.h" /* a C header: its functions have C linkage for spmodel.cc too */

typedef struct ifk_spm ifk_spm;

ifk_status ifk_spm_load(ifk_spm **s, const char *path);
void ifk_spm_free(ifk_spm **s);
int ifk_spm_vocab(const ifk_spm *s);
int ifk_spm_bos(const ifk_spm *s); /* the model's BOS / EOS ids (-1: none) */
int ifk_spm_eos(const ifk_spm *s);
/* Appends the ids of text[0..len) to ids (capacity *cap, grown with realloc), *n updated. */
ifk_status ifk_spm_encode(const ifk_spm *s, const char *text, size_t len, int **ids, int *n, int *cap);
/* The piece of id ("" if out of range); kind: 0 normal, 1 byte (<0xNN>), 2 control, 3 unknown. */
const char *ifk_spm_piece(const ifk_spm *s, int id, int *kind);
int ifk_spm_lookup(const ifk_spm *s, const char *piece, size_t len);

#ifdef __cplusplus
}
#endif

#endif
