/* cmd_model.c — `infoflow convert` (llama2.c -> Hugging Face folder) and `infoflow logits`
 * (the logits of a token sequence, for checks against other implementations). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "drivers.h"
#include "engine.h"
#include "forward.h"
#include "sys.h"
#include "hf.h"

int ifk_cmd_convert(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *tokp = NULL;
    int help = 0, rc = 1;
    const ifk_opt opts[] = {{"model", "PATH", "a llama2.c checkpoint (file or folder)", &model, NULL},
                            {"tokenizer", "FILE", "its tokenizer.bin (default: beside it); copied into the folder", &tokp, NULL},
                            {"out", "DIR", "the Hugging Face folder to write", &out, NULL},
                            {NULL, NULL, NULL, NULL, NULL}};
    ifk_model m = {0};
    ifk_tokenizer *tok = NULL;
    if (ifk_cli_parse(argc, argv, opts, "usage: infoflow convert --model M --out DIR\n"
                      "Writes a llama2.c model as an HF Llama folder (config.json, model.safetensors f32, with wq/wk rows "
                      "permuted from interleaved to rotate_half RoPE) plus its tokenizer.", &help) != IFK_OK) goto out;
    if (help) return 0;
    if (!model || !out) {
        IFK_FAIL(IFK_ERR_ARG, "convert: --model and --out are required");
        goto out;
    }
    if (ifk_engine_load(model, tokp, &m, &tok) != IFK_OK) goto out;
    char src[4096], dst[4096];
    snprintf(dst, sizeof dst, "%s/tok%d.bin", out, m.cfg.vocab_size);
    if (ifk_hf_write_llama(&m, out) != IFK_OK) goto undo;
    /* the llama2.c tokenizer travels with the folder */
    if (tokp) snprintf(src, sizeof src, "%s", tokp);
    else snprintf(src, sizeof src, "%s/tok%d.bin", model, m.cfg.vocab_size);
    FILE *a = fopen(src, "rb"), *b = a ? fopen(dst, "wb") : NULL;
    char buf[65536];
    size_t n;
    int bad = a && !b;
    while (a && b && !bad && (n = fread(buf, 1, sizeof buf, a)) > 0) bad = fwrite(buf, 1, n, b) != n;
    if (a) bad |= ferror(a), fclose(a);
    if (b) bad |= ferror(b), bad |= fclose(b) != 0;
    if (bad) {
        IFK_FAIL(IFK_ERR_IO, "%s: cannot copy the tokenizer from %s: %s", dst, src, strerror(errno ? errno : EIO));
        goto undo;
    }
    printf("wrote %s (config.json, model.safetensors%s)\n", out, a ? ", the tokenizer" : "");
    rc = 0;
    goto out;
undo: /* a folder that looks complete but is not would be worse than none: remove what this run wrote */
    for (const char *const *f = (const char *const[]){"config.json", "model.safetensors", NULL}; *f; f++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", out, *f);
        unlink(p);
    }
    unlink(dst);
    rmdir(out); /* only when it is empty: a folder that held other files keeps them */
out:
    if (rc) ifk_err_print();
    ifk_tokenizer_free(&tok);
    ifk_model_free(&m);
    return rc;
}

int ifk_cmd_logits(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL, *weights_s = NULL;
    int help = 0, rc = 1;
    const ifk_opt opts[] = {{"model", "PATH", "checkpoint file or folder (llama2.c or Hugging Face)", &model, NULL},
                            {"ids", "ID,ID,...", "token ids, run as one prefill from position 0", &ids_s, NULL},
                            {"weights", "T", "weight precision: f32, bf16, f16 or auto (as stored, default)", &weights_s, NULL},
                            {NULL, NULL, NULL, NULL, NULL}};
    ifk_model m = {0};
    ifk_tokenizer *tok = NULL;
    ifk_kvcache c = {0};
    ifk_state s = {0};
    int *ids = NULL, *pos = NULL, n = 0;
    float *lg = NULL;
    if (ifk_cli_parse(argc, argv, opts, "usage: infoflow logits --model M --ids 1,2,3\n"
                      "Prints every position's logits as JSON rows (for checks against other implementations).", &help) != IFK_OK)
        goto out;
    if (help) return 0;
    if (!model || !ids_s) {
        IFK_FAIL(IFK_ERR_ARG, "logits: --model and --ids are required");
        goto out;
    }
    if (ifk_cli_weights(weights_s) != IFK_OK || ifk_engine_load(model, NULL, &m, &tok) != IFK_OK) goto out;
    ids = malloc(sizeof(int) * (strlen(ids_s) + 1));
    pos = malloc(sizeof(int) * (strlen(ids_s) + 1));
    for (const char *p = ids_s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= m.cfg.vocab_size) {
            IFK_FAIL(IFK_ERR_ARG, "--ids: '%s' is not a list of ids below %d", ids_s, m.cfg.vocab_size);
            goto out;
        }
        pos[n] = n;
        ids[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') {
            IFK_FAIL(IFK_ERR_ARG, "--ids: '%s' is not a comma-separated list", ids_s);
            goto out;
        }
    }
    if (n == 0) {
        IFK_FAIL(IFK_ERR_ARG, "--ids: the list is empty (give at least one token id)");
        goto out;
    }
    if (n > m.cfg.seq_len) {
        IFK_FAIL(IFK_ERR_ARG, "--ids: %d tokens but the model has only %d positions", n, m.cfg.seq_len);
        goto out;
    }
    lg = malloc(sizeof(float) * (size_t)n * m.cfg.vocab_size);
    if (!lg || ifk_kvcache_init(&c, &m.cfg, n) != IFK_OK || ifk_forward(&m, &s, &c, ids, pos, n, lg, 1) != IFK_OK) goto out;
    printf("[");
    for (int t = 0; t < n; t++) {
        printf("%s[", t ? ",\n " : "");
        for (int v = 0; v < m.cfg.vocab_size; v++) printf("%s%.7g", v ? ", " : "", lg[(size_t)t * m.cfg.vocab_size + v]);
        printf("]");
    }
    printf("]\n");
    rc = 0;
out:
    if (rc) ifk_err_print();
    free(ids), free(pos), free(lg);
    ifk_kvcache_free(&c);
    ifk_state_free(&s);
    ifk_tokenizer_free(&tok);
    ifk_model_free(&m);
    return rc;
}
