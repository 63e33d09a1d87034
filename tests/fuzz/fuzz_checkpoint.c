/* fuzz_checkpoint.c — llama2.c checkpoint header/size validation on arbitrary files. */
#include "fuzz_common.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ifk_model m;
    if (ifk_model_load_llama2c(&m, fuzz_file_(data, size, ".bin")) == IFK_OK) {
        /* a file that loads must be walkable end to end */
        const ifk_config *c = &m.cfg;
        /* the last element of each matrix, whatever its stored width (ifk_wat) */
        volatile unsigned acc = *(const unsigned char *)ifk_wat(m.wcls, m.wdtype, (size_t)c->vocab_size * c->dim - 1);
        acc += *(const unsigned char *)m.tok_emb + *(const unsigned char *)&m.rms_final[c->dim - 1];
        for (int l = 0; l < c->n_layers; l++)
            acc += *(const unsigned char *)ifk_wat(m.layers[l].w3, m.wdtype, (size_t)c->hidden_dim * c->dim - 1);
        (void)acc;
        ifk_model_free(&m);
    }
    return 0;
}
