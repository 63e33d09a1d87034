/* engine.h — what a driver needs to go from paths to text: resolving a model path into a model and
 * tokenizer, and the generation loop. Local. */
#ifndef IFK_ENGINE_H
#define IFK_ENGINE_H

#include <stdio.h>

#include "forward.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

/* Resolves PATH: a checkpoint file (tokenizer from tok_path, else a tok*.bin beside it) or a folder
 * holding one checkpoint *.bin and one tok*.bin. Loads both; on failure nothing is left allocated. */
ifk_status ifk_engine_load(const char *path, const char *tok_path, ifk_model *m, ifk_tokenizer **tok);

typedef struct {
    int n_prompt;       /* prompt tokens, BOS included */
    int n_generated;    /* sampled tokens */
    double prefill_s;   /* batched prefill of the prompt, first token included */
    double decode_s;    /* every later token */
} ifk_gen_stats;

/* Callback for each token as it is decided (prompt tokens after BOS, then sampled ones). */
typedef void (*ifk_token_fn)(int prev, int tok, void *ctx);

/* llama2.c's generation: prompt ids[n] (BOS first) prefilled in one batch at positions 0..n-1,
 * then one token at a time until `steps` positions are filled (the prompt included) or BOS/EOS
 * is sampled. steps is clamped to the model's positions. */
ifk_status ifk_generate(const ifk_model *m, ifk_sampler *smp, const int *ids, int n, int steps, ifk_token_fn fn,
                        void *ctx, ifk_gen_stats *stats);

/* The tokenizer of a model path as ifk_engine_load would pick it, without loading weights (NULL in
 * *tok when an HF folder has none); cfg gives the vocabulary size and BOS/EOS. */
ifk_status ifk_engine_load_tokenizer(const char *path, const char *tok_path, const ifk_config *cfg, ifk_tokenizer **tok);

/* Writes the bytes of token tok after prev to f, skipping lone unprintable control bytes as
 * llama2.c does. */
void ifk_print_token(FILE *f, const ifk_tokenizer *t, int prev, int tok);

/* The text of ids[n] decoded after token prev (malloc'd, NUL-terminated; length in *len if not
 * NULL). With no tokenizer (a random model) the text is empty. */
char *ifk_detokenize(const ifk_tokenizer *t, int prev, const int *ids, int n, size_t *len);

/* Bytes of memory this process may still use: MemAvailable from /proc/meminfo, or the
 * INFOFLOW_MEM_LIMIT environment variable (bytes) when set (tests). 0 if unknown. */
double ifk_mem_available(void);

/* Monotonic seconds. */
double ifk_now(void);

#endif
