/* jfield.h — typed fields of a parsed JSON file (tokenizer.json, tokenizer_config.json). A field
 * is absent, or of a type its reader takes, or the file is refused with one line naming the file,
 * the field and its value: nothing of another type is read as "absent" or "false". Engine floor. */
#ifndef IFK_JFIELD_H
#define IFK_JFIELD_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "status.h"

/* The types a field may have (or-ed); IFK_J_REQ: absent (or null without IFK_J_NULL) is refused too. */
enum {
    IFK_J_NULL = 1, /* null reads as absent */
    IFK_J_BOOL = 2,
    IFK_J_STR = 4,
    IFK_J_INT = 8, /* a number with no fraction, |v| <= 2^53 */
    IFK_J_NUM = 16,
    IFK_J_LIST = 32,
    IFK_J_OBJ = 64,
    IFK_J_REQ = 128,
};

/* Reads and parses the JSON file path (at most max bytes) into *out, which must be one object with
 * no key defined twice in any object (cJSON would take the first). Errors: the file's (ifk_read_file),
 * IFK_ERR_FORMAT "<path>: invalid JSON at line L, byte B", "<path>: not a JSON object", "<path>: key
 * "k" is defined twice". The caller frees *out with cJSON_Delete. */
ifk_status ifk_json_file(const char *path, size_t max, cJSON **out);

/* *out = field key of o: NULL when absent (or null, with IFK_J_NULL), else the value when its type
 * is one of types. Else IFK_ERR_FORMAT, "<path>: field "<name>" = <value> is not <the types>"
 * (name NULL: key), and *out = NULL. o that is not an object has no fields. */
ifk_status ifk_jfield(const cJSON *o, const char *key, int types, const char *path, const char *name,
                      const cJSON **out);

/* A true/false field (null refused unless IFK_J_NULL is in flags): *v = 1/0, def when absent. */
ifk_status ifk_jbool(const cJSON *o, const char *key, int flags, const char *path, const char *name, int def, int *v);

/* A string field: *v its text, NULL when absent (or null with IFK_J_NULL in flags). */
ifk_status ifk_jstr(const cJSON *o, const char *key, int flags, const char *path, const char *name, const char **v);

/* A non-negative integer field up to max: *v, def when absent (or null with IFK_J_NULL). */
ifk_status ifk_jint(const cJSON *o, const char *key, int flags, long max, const char *path, const char *name, long def,
                    long *v);

#endif
