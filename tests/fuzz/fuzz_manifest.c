/* fuzz_manifest.c — the store manifest (manifest.json: parameters, and the refusal of version 1)
 * and commit messages. */
#include <sys/stat.h>

#include "fuzz_common.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/ifk-fuzz-manifest-%d", (int)getpid());
        mkdir(dir, 0755);
    }
    char path[300];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(data, 1, size, f);
    fclose(f);
    ifk_manifest m;
    if (ifk_manifest_load(&m, dir) == IFK_OK) { /* only with a catalog beside it: then every record is found */
        for (int i = 0; i < m.n_docs; i++) {
            ifk_doc_rec r;
            if (ifk_manifest_get(&m, i, &r) != IFK_OK) continue;
            if (ifk_manifest_find(&m, r.id) != i) abort();
            ifk_doc_rec_free(&r);
        }
        ifk_manifest_free(&m);
    }
    char *js = malloc(size + 1);
    memcpy(js, data, size);
    js[size] = '\0';
    ifk_doc_rec *d;
    int n;
    if (ifk_doc_recs_from_json(js, &d, &n) == IFK_OK) {
        for (int i = 0; i < n; i++) ifk_doc_rec_free(&d[i]);
        free(d);
    }
    free(js);
    return 0;
}
