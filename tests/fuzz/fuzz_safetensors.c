/* fuzz_safetensors.c — Hugging Face folders: a fixed tiny config.json and an arbitrary
 * model.safetensors (header length, JSON header, dtypes, shapes, offsets, overlaps). */
#include <sys/stat.h>

#include "fuzz_common.h"
#include "hf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/ifk-fuzz-hf-%d", (int)getpid());
        mkdir(dir, 0755);
        char p[300];
        snprintf(p, sizeof p, "%s/config.json", dir);
        FILE *f = fopen(p, "w");
        fputs("{\"architectures\": [\"Qwen2ForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 8, "
              "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"vocab_size\": 4, "
              "\"tie_word_embeddings\": true}", f);
        fclose(f);
    }
    char p[300];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    fwrite(data, 1, size, f);
    fclose(f);
    ifk_model m;
    if (ifk_hf_load(&m, dir) == IFK_OK) ifk_model_free(&m);
    return 0;
}
