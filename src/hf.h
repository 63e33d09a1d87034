/* hf.h — Hugging Face model folders: config.json + model.safetensors (or shards listed in
 * model.safetensors.index.json), for LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM and
 * Qwen3ForCausalLM. Local.
 *
 * Weights (f32, f16 or bf16 in the files) are converted to f32 into one owned block: the model
 * takes 4 bytes per parameter in memory whatever the file's dtype (docs/models.md). Every tensor's
 * name, dtype and shape is checked against the config; any inconsistency is an error naming the
 * file and the tensor. */
#ifndef IFK_HF_H
#define IFK_HF_H

#include "model.h"

/* 1 if dir looks like an HF folder (has config.json). */
int ifk_hf_is_folder(const char *dir);
ifk_status ifk_hf_load(ifk_model *m, const char *dir);
/* Rank r of P's tensor-parallel slice (as ifk_model_slice would cut it), reading from the files
 * only the rows and columns it keeps; embedding, norms and classifier whole. */
ifk_status ifk_hf_load_slice(ifk_model *m, const char *dir, int rank, int P);
/* An HF model's fingerprint from its files alone: config.json, the safetensors headers and 64
 * bytes spread over each tensor. Every rank can compute it without reading the weights. */
ifk_status ifk_hf_fingerprint(const char *dir, char out[17]);

/* Parses config.json (and generation_config.json beside it) into cfg: rotate_half RoPE, scaling,
 * biases, q/k-norm, sliding window, eps, ids, generate's defaults. Every key is known or refused
 * (docs/models.md has the table); a JSON object with a key twice is refused. */
ifk_status ifk_hf_config(ifk_config *cfg, const char *path);

/* Writes a llama2.c model as an HF Llama folder (config.json + model.safetensors, f32), permuting
 * wq/wk rows so that interleaved RoPE pairs become rotate_half halves. */
ifk_status ifk_hf_write_llama(const ifk_model *m, const char *dir);

#endif
