/* json.h — checks over parsed cJSON trees shared by every JSON reader (config files, corpus and
 * query-set lines). Engine floor. Local, allocation-free except for a temporary index. */
#ifndef IFK_JSON_H
#define IFK_JSON_H

#include <cjson/cJSON.h>

/* The first key defined twice in one object of the tree under o (NULL if none; "(out of memory)"
 * when the temporary index cannot be allocated): JSON leaves a duplicate's meaning open and cJSON
 * would silently take the first one. The string lives in the tree. */
const char *ifk_json_dup_key(const cJSON *o);

#endif
