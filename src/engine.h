/* engine.h — from a model path to a model and its tokenizer: llama2.c checkpoint files and folders,
 * Hugging Face folders, and the random-weight shapes of benchmarks and tests. Local. */
#ifndef IFK_ENGINE_H
#define IFK_ENGINE_H

#include "model.h"
#include "tokenizer.h"

/* The seed of every --random-model: a store cached from a random shape is valid for queries over
 * the same shape only because cache, query, eval and bench all draw the same weights. */
#define IFK_RANDOM_SEED 1

/* Resolves PATH: a checkpoint file (tokenizer from tok_path, else a tok*.bin beside it), a folder
 * holding one checkpoint *.bin and one tok*.bin, or a Hugging Face folder. Loads both; on failure
 * nothing is left allocated. Errors: IFK_ERR_IO, IFK_ERR_ARG, IFK_ERR_FORMAT naming the file. */
ifk_status ifk_engine_load(const char *path, const char *tok_path, ifk_model *m, ifk_tokenizer **tok);

/* The model of a job: ifk_engine_load(path, tok_path) when path is set, otherwise random weights of
 * `shape` (ifk_model_random) drawn with IFK_RANDOM_SEED, with no tokenizer (*tok NULL). */
ifk_status ifk_engine_load_any(const char *path, const char *tok_path, const char *shape, ifk_model *m,
                               ifk_tokenizer **tok);

/* The tokenizer of a model path as ifk_engine_load would pick it, without loading weights (NULL in
 * *tok when an HF folder has none); cfg gives the vocabulary size and BOS/EOS. */
ifk_status ifk_engine_load_tokenizer(const char *path, const char *tok_path, const ifk_config *cfg, ifk_tokenizer **tok);

/* Writes into buf what a model without tokenizer is, for messages about text it cannot encode or
 * decode: "PATH has no tokenizer (tokenizer.json, tokenizer.model or tok*.bin)" for a model path
 * (an HF folder without one), "a random model has no tokenizer" when path is NULL. Returns buf. */
const char *ifk_engine_no_tokenizer(const char *path, char *buf, size_t n);

#endif
