/* fuzz_checkpoint.c — llama2.c checkpoint header/size validation on arbitrary files. */
#include "fuzz_common.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ifk_model m;
    if (ifk_model_load_llama2c(&m, fuzz_file_(data, size, ".bin")) == IFK_OK) {
        /* a file that loads must be walkable end to end */
        const ifk_config *c = &m.cfg;
        volatile float acc = m.tok_emb[0] + m.rms_final[c->dim - 1] + m.wcls[(size_t)c->vocab_size * c->dim - 1];
        for (int l = 0; l < c->n_layers; l++) acc += m.layers[l].w3[(size_t)c->hidden_dim * c->dim - 1];
        (void)acc;
        ifk_model_free(&m);
    }
    return 0;
}
