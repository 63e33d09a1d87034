/* json.h — checks over parsed cJSON trees shared by every JSON reader (config files, corpus and
 * query-set lines). Engine floor. Local, allocation-free except for a temporary index. */
#ifndef IFK_JSON_H
#define IFK_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The first key defined twice in one object of the tree under o (NULL if none; "(out of memory)"
 * when the temporary index cannot be allocated): JSON leaves a duplicate's meaning open and cJSON
 * would silently take the first one. The string lives in the tree. */
const char *ifk_json_dup_key(const cJSON *o);

/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int ifk_utf8_valid(const char *s, size_t n);

/* One JSONL record, the rule every line reader shares (corpus, query --queries, eval query sets):
 * s[0..len) with s[len] == '\0' parsed as one JSON object, no "\u0000" escape (cJSON would cut the
 * string there), no key defined twice in any object, every string (keys and values, at any depth)
 * valid UTF-8. NULL otherwise, why[nwhy] holding the problem for a "FILE:LINE: " prefix:
 * "invalid JSON (near column C)", "invalid JSON (a NUL byte at column C)", "invalid JSON: lone
 * surrogate \udcff at column C (...)", "not a JSON object", "\u0000 (NUL) in a string is not
 * supported", "key "k" is defined twice", "invalid UTF-8 in "prompt"" (or "docs"[1], "meta"."x",
 * a key). The caller frees the object with cJSON_Delete. Local. */
cJSON *ifk_json_record(const char *s, size_t len, char *why, size_t nwhy);

#endif
