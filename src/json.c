/* json.c — checks over parsed cJSON trees (json.h). */
#include "json.h"

#include <stdint.h>
#include <stdio.h>
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

/* ---- UTF-8 and JSONL records ----------------------------------------------------------------------------------- */

int ifk_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t k;       /* continuation bytes */
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) k = 1, cp = c & 0x1F, min = 0x80;      /* C0, C1: always overlong */
        else if ((c & 0xF0) == 0xE0) k = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) k = 3, cp = c & 0x07, min = 0x10000; /* F5..FF: > U+10FFFF */
        else return 0;                                                     /* stray continuation */
        if ((size_t)(e - p) <= k) return 0;                                /* truncated */
        for (size_t i = 1; i <= k; i++) {
            if ((p[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
        p += k + 1;
    }
    return 1;
}


/* The first \u escape in a string of s[0..n) that is half a surrogate pair without its other half:
 * its offset (the backslash), or -1. JSON (RFC 8259 §7) writes a character above U+FFFF as a pair
 * \uD800-\uDBFF \uDC00-\uDFFF; one half alone is no character, and cJSON refuses the line. */
static long lone_surrogate_(const char *s, size_t n) {
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_str) {
            in_str = s[i] == '"';
            continue;
        }
        if (s[i] == '"') {
            in_str = 0;
            continue;
        }
        if (s[i] != '\\' || i + 1 >= n) continue;
        if (s[i + 1] != 'u' || i + 5 >= n) {
            i++;
            continue;
        }
        unsigned v;
        if (sscanf(s + i + 2, "%4x", &v) != 1) return -1; /* another JSON error */
        if (v >= 0xDC00 && v <= 0xDFFF) return (long)i;
        if (v >= 0xD800 && v <= 0xDBFF) {
            unsigned w;
            if (i + 11 >= n || s[i + 6] != '\\' || s[i + 7] != 'u' || sscanf(s + i + 8, "%4x", &w) != 1 || w < 0xDC00 ||
                w > 0xDFFF)
                return (long)i;
            i += 6; /* the pair's second half */
        }
        i += 5;
    }
    return -1;
}

/* The first string of the tree under o (a key or a value) that is not valid UTF-8: 1 with its
 * field (`"prompt"`, `"docs"[2]`, `"meta"."x"`) in field[nf]; else 0. */
static int bad_utf8_(const cJSON *o, char *field, size_t nf) {
    const size_t at = strlen(field);
    int k = 0;
    for (const cJSON *c = o->child; c; c = c->next, k++) {
        if (cJSON_IsObject(o)) {
            if (!ifk_utf8_valid(c->string, strlen(c->string))) {
                snprintf(field + at, nf - at, "%sa key", at ? " in " : "");
                return 1;
            }
            snprintf(field + at, nf - at, "%s\"%.60s\"", at ? "." : "", c->string);
        } else {
            snprintf(field + at, nf - at, "[%d]", k);
        }
        if (cJSON_IsString(c) && !ifk_utf8_valid(c->valuestring, strlen(c->valuestring))) return 1;
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && bad_utf8_(c, field, nf)) return 1;
        field[at] = '\0';
    }
    return 0;
}

/* 1 if the (valid JSON) line has a \u0000 escape inside a string. */
static int has_nul_escape_(const char *s, size_t n) {
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_str) {
            if (s[i] == '"') in_str = 1;
        } else if (s[i] == '"') {
            in_str = 0;
        } else if (s[i] == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0) return 1;
            i++; /* skip the escaped character (for \u, the hex digits are harmless) */
        }
    }
    return 0;
}

cJSON *ifk_json_record(const char *s, size_t len, char *why, size_t nwhy) {
    const char *end = NULL;
    cJSON *o = memchr(s, '\0', len) ? NULL : cJSON_ParseWithLengthOpts(s, len + 1, &end, 1);
    if (!o) {
        const long ls = memchr(s, '\0', len) ? -1 : lone_surrogate_(s, len);
        if (ls >= 0)
            snprintf(why, nwhy, "invalid JSON: lone surrogate %.6s at column %ld (a \\uD800-\\uDBFF escape must be "
                     "followed by a \\uDC00-\\uDFFF one, and the latter never stands alone)", s + ls, ls + 1);
        else if (memchr(s, '\0', len))
            snprintf(why, nwhy, "invalid JSON (a NUL byte at column %zu)", (size_t)((const char *)memchr(s, '\0', len) - s) + 1);
        else
            snprintf(why, nwhy, "invalid JSON (near column %zu)", end && end >= s && end <= s + len ? (size_t)(end - s) + 1 : 1);
        return NULL;
    }
    char field[256] = "";
    const char *dup;
    if (!cJSON_IsObject(o)) snprintf(why, nwhy, "not a JSON object");
    else if (has_nul_escape_(s, len)) snprintf(why, nwhy, "\\u0000 (NUL) in a string is not supported");
    else if ((dup = ifk_json_dup_key(o))) snprintf(why, nwhy, "key \"%.60s\" is defined twice", dup);
    else if (bad_utf8_(o, field, sizeof field)) snprintf(why, nwhy, "invalid UTF-8 in %s", field);
    else return o;
    cJSON_Delete(o);
    return NULL;
}
