/* cmd_tokenize.c — `infoflow tokenize`: a tokenizer's ids for each line of a text file (checks
 * against other implementations, and a look at how a prompt splits). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "drivers.h"
#include "engine.h"
#include "sys.h"

int ifk_cmd_tokenize(int argc, char **argv) {
    const char *tokp = NULL, *file = NULL, *text = NULL;
    int help = 0, bos = 0, rc = 1;
    const ifk_opt opts[] = {{"tokenizer", "FILE", "tokenizer.bin (llama2.c), tokenizer.json (Hugging Face) or tokenizer.model (SentencePiece)", &tokp, NULL},
                            {"text", "TEXT", "one text to encode", &text, NULL},
                            {"text-file", "FILE", "encode each line of FILE", &file, NULL},
                            {"bos", NULL, "add the tokenizer's special tokens (BOS where its post_processor or add_bos_token says; a .bin: always)", NULL, &bos},
                            {NULL, NULL, NULL, NULL, NULL}};
    ifk_tokenizer *t = NULL;
    char *line = NULL;
    size_t cap = 0;
    if (ifk_cli_parse(argc, argv, opts, "usage: infoflow tokenize --tokenizer FILE (--text TEXT | --text-file FILE)\n"
                      "Prints one JSON object per text: its ids, whether decoding gives the text back, and the decoded text.", &help) != IFK_OK)
        goto out;
    if (help) return 0;
    if (!tokp || !text == !file) {
        IFK_FAIL(IFK_ERR_ARG, "tokenize: --tokenizer and one of --text or --text-file are required");
        goto out;
    }
    /* a llama2.c tok<V>.bin names its vocabulary: hold it to that, as the model loads do (a truncated file) */
    const char *base = strrchr(tokp, '/') ? strrchr(tokp, '/') + 1 : tokp;
    int vocab = 0, used = 0;
    if (sscanf(base, "tok%d.bin%n", &vocab, &used) != 1 || base[used] || vocab < 1) vocab = 0;
    if (ifk_tokenizer_load(&t, tokp, vocab) != IFK_OK) goto out;
    struct stat sb;
    if (file && stat(file, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        IFK_FAIL(IFK_ERR_IO, "%s: --text-file is a directory", file);
        goto out;
    }
    FILE *f = file ? fopen(file, "r") : NULL;
    if (file && !f) {
        IFK_FAIL(IFK_ERR_IO, "%s: cannot open: %s", file, strerror(errno));
        goto out;
    }
    for (;;) {
        const char *s = text;
        if (f) {
            ssize_t n = getline(&line, &cap, f);
            if (n < 0) break;
            if (n && line[n - 1] == '\n') line[--n] = '\0';
            if (!n) continue;
            s = line;
        }
        int *ids, n;
        if (ifk_tokenizer_encode(t, s, strlen(s), bos, 0, &ids, &n) != IFK_OK) goto out;
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= ifk_tokenizer_vocab(t)) { /* byte fallback past a short piece table */
                IFK_FAIL(IFK_ERR_FORMAT, "%s: id %d is beyond its %d pieces (a truncated tokenizer?)", tokp, ids[i],
                         ifk_tokenizer_vocab(t));
                free(ids);
                if (f) fclose(f);
                goto out;
            }
        int nb = bos && ifk_tokenizer_bos(t) >= 0; /* the BOS encoding put first */
        char *back = ifk_detokenize(t, nb ? ids[0] : -1, ids + nb, n - nb, NULL);
        printf("{\"ids\": [");
        for (int i = 0; i < n; i++) printf("%s%d", i ? ", " : "", ids[i]);
        cJSON *js = cJSON_CreateString(back ? back : "");
        char *jt = js ? cJSON_PrintUnformatted(js) : NULL;
        printf("], \"round_trip\": %s, \"text\": %s}\n", back && !strcmp(back, s) ? "true" : "false", jt ? jt : "null");
        cJSON_free(jt), cJSON_Delete(js);
        free(back), free(ids);
        if (!f) break;
    }
    if (f && ferror(f)) {
        IFK_FAIL(IFK_ERR_IO, "%s: cannot read: %s", file, strerror(errno));
        fclose(f);
        goto out;
    }
    if (f) fclose(f);
    rc = 0;
out:
    if (rc) ifk_err_print();
    free(line);
    ifk_tokenizer_free(&t);
    return rc;
}
