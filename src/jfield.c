/* jfield.c — typed fields of a parsed JSON file (jfield.h). */
#include "jfield.h"
#include "json.h"
#include "sys.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int has_type_(const cJSON *x, int types) {
    return ((types & IFK_J_BOOL) && cJSON_IsBool(x)) || ((types & IFK_J_STR) && cJSON_IsString(x)) ||
           ((types & IFK_J_NUM) && cJSON_IsNumber(x)) || ((types & IFK_J_LIST) && cJSON_IsArray(x)) ||
           ((types & IFK_J_OBJ) && cJSON_IsObject(x)) ||
           ((types & IFK_J_INT) && cJSON_IsNumber(x) && x->valuedouble == floor(x->valuedouble) &&
            fabs(x->valuedouble) <= 9007199254740992.0);
}

ifk_status ifk_jfield(const cJSON *o, const char *key, int types, const char *path, const char *name,
                      const cJSON **out) {
    const cJSON *x = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    *out = NULL;
    if (!name) name = key;
    if (!x || (cJSON_IsNull(x) && (types & IFK_J_NULL))) {
        if (types & IFK_J_REQ) return IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" is missing", path, name);
        return IFK_OK;
    }
    if (has_type_(x, types)) {
        *out = x;
        return IFK_OK;
    }
    static const struct { int bit; const char *what; } names[] = {
        {IFK_J_BOOL, "true or false"}, {IFK_J_STR, "a string"}, {IFK_J_INT, "an integer"}, {IFK_J_NUM, "a number"},
        {IFK_J_LIST, "a list"}, {IFK_J_OBJ, "an object"}, {IFK_J_NULL, "null"}};
    char want[128] = "";
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (types & names[i].bit)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", want[0] ? " or " : "", names[i].what);
    char *j = cJSON_PrintUnformatted(x);
    ifk_status st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" = %.60s%s is not %s", path, name, j ? j : "?",
                             j && strlen(j) > 60 ? "..." : "", want);
    free(j);
    return st;
}

ifk_status ifk_jbool(const cJSON *o, const char *key, int flags, const char *path, const char *name, int def, int *v) {
    const cJSON *x;
    IFK_CHECK(ifk_jfield(o, key, IFK_J_BOOL | flags, path, name, &x));
    *v = x ? cJSON_IsTrue(x) : def;
    return IFK_OK;
}

ifk_status ifk_jstr(const cJSON *o, const char *key, int flags, const char *path, const char *name, const char **v) {
    const cJSON *x;
    IFK_CHECK(ifk_jfield(o, key, IFK_J_STR | flags, path, name, &x));
    *v = x ? x->valuestring : NULL;
    return IFK_OK;
}

ifk_status ifk_jint(const cJSON *o, const char *key, int flags, long max, const char *path, const char *name, long def,
                    long *v) {
    const cJSON *x;
    IFK_CHECK(ifk_jfield(o, key, IFK_J_INT | flags, path, name, &x));
    if (x && (x->valuedouble < 0 || x->valuedouble > (double)max)) {
        char *j = cJSON_PrintUnformatted(x);
        ifk_status st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" = %.60s is not an integer 0..%ld", path,
                                 name ? name : key, j ? j : "?", max);
        free(j);
        return st;
    }
    *v = x ? (long)x->valuedouble : def;
    return IFK_OK;
}

ifk_status ifk_json_file(const char *path, size_t max, cJSON **out) {
    char *txt;
    size_t len;
    *out = NULL;
    IFK_CHECK(ifk_read_file(path, max, &txt, &len));
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(txt, len, &end, 0);
    ifk_status st = IFK_OK;
    if (!o) {
        size_t at = end && end >= txt && end <= txt + len ? (size_t)(end - txt) : len, line = 1;
        for (size_t i = 0; i < at; i++) line += txt[i] == '\n';
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: invalid JSON at line %zu, byte %zu%s", path, line, at,
                      at + 2 >= len ? " (the end of the file: cut short?)" : "");
    } else if (!cJSON_IsObject(o)) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: not a JSON object", path);
    } else {
        const char *dup = ifk_json_dup_key(o);
        if (dup) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: key \"%s\" is defined twice", path, dup);
    }
    free(txt);
    if (st != IFK_OK) cJSON_Delete(o);
    else *out = o;
    return st;
}
