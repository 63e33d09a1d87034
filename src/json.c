/* json.c — checks over parsed cJSON trees (json.h). */
#include "json.h"

#include <stdlib.h>
#include <string.h>

static int by_name_(const void *x, const void *y) {
    return strcmp((*(const cJSON *const *)x)->string, (*(const cJSON *const *)y)->string);
}

const char *ifk_json_dup_key(const cJSON *o) {
    if (!o || !(cJSON_IsObject(o) || cJSON_IsArray(o))) return NULL;
    int n = 0;
    for (const cJSON *c = o->child; c; c = c->next) n++;
    const char *dup = NULL;
    if (cJSON_IsObject(o) && n > 1) {
        const cJSON **v = malloc(sizeof *v * (size_t)n);
        if (!v) return "(out of memory)";
        int k = 0;
        for (const cJSON *c = o->child; c; c = c->next) v[k++] = c;
        qsort(v, (size_t)n, sizeof *v, by_name_);
        for (int i = 1; i < n && !dup; i++)
            if (!strcmp(v[i]->string, v[i - 1]->string)) dup = v[i]->string;
        free(v);
    }
    for (const cJSON *c = o->child; c && !dup; c = c->next) dup = ifk_json_dup_key(c);
    return dup;
}
