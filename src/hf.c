/* hf.c — config.json and safetensors (hf.h). */
#include "hf.h"
#include "json.h"
#include "sys.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtype.h"

int ifk_hf_is_folder(const char *dir) {
    char p[2048];
    struct stat st;
    snprintf(p, sizeof p, "%s/config.json", dir);
    return stat(p, &st) == 0;
}

static int jint_(const cJSON *o, const char *k, long *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || fabs(x->valuedouble) > 1e15) return 0;
    *v = (long)x->valuedouble;
    return 1;
}

/* A JSON value as text for an error line, cut at 60 characters. */
static const char *jtext_(const cJSON *x) {
    static char bufs[4][80]; /* up to four in one message */
    static int next;
    char *buf = bufs[next++ % 4], *t = x ? cJSON_PrintUnformatted(x) : NULL;
    snprintf(buf, sizeof bufs[0], "%.60s%s", t ? t : "?", t && strlen(t) > 60 ? "..." : "");
    free(t);
    return buf;
}

/* Parses a whole JSON file; refuses text that is not one object, or has a key twice. */
static ifk_status json_file_(const char *path, cJSON **out) {
    size_t len;
    *out = NULL;
    char *txt;
    IFK_CHECK(ifk_read_file(path, (size_t)64 << 20, &txt, &len));
    cJSON *o = cJSON_ParseWithLength(txt, len);
    free(txt);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: not a JSON object", path);
    }
    const char *dup = ifk_json_dup_key(o);
    if (dup) {
        ifk_status st = IFK_FAIL(IFK_ERR_FORMAT, "%s: key \"%s\" is defined twice", path, dup);
        cJSON_Delete(o);
        return st;
    }
    *out = o;
    return IFK_OK;
}

/* ---- config.json and generation_config.json ----------------------------------------------------
 * Every key is known: read (implemented, or refused for the values not implemented) or listed as
 * having no effect on the numbers; any other key is refused. docs/models.md has the table and
 * tests/config_table.py walks it. Defaults are transformers' per architecture. */

enum { A_LLAMA, A_MISTRAL, A_QWEN2, A_QWEN3 };

static const char *const config_keys_[] = {
    /* read */
    "architectures", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings", "rope_theta", "rope_scaling",
    "rope_parameters", "partial_rotary_factor", "original_max_position_embeddings", "rms_norm_eps",
    "tie_word_embeddings", "attention_bias", "mlp_bias", "hidden_act", "sliding_window", "use_sliding_window",
    "max_window_layers", "layer_types", "bos_token_id", "eos_token_id", "use_mrope",
    /* no effect on the numbers */
    "model_type", "pad_token_id", "torch_dtype", "dtype", "transformers_version", "_name_or_path",
    "initializer_range", "use_cache", "attention_dropout", "pretraining_tp"};

static const char *const generation_keys_[] = {"bos_token_id", "eos_token_id", "do_sample", "temperature", "top_p",
                                               "top_k", "repetition_penalty", "max_length", "max_new_tokens",
                                               "pad_token_id", "transformers_version", "_from_model_config"};

/* The fields with no effect on the numbers still have a type in transformers (s string, i integer,
 * n number, b true/false; null passes): a value of another type means a damaged file, refused. */
typedef struct {
    const char *key;
    char type;
} typed_key_;
static const typed_key_ config_inert_[] = {{"model_type", 's'}, {"pad_token_id", 'i'}, {"torch_dtype", 's'},
                                           {"dtype", 's'}, {"transformers_version", 's'}, {"_name_or_path", 's'},
                                           {"initializer_range", 'n'}, {"use_cache", 'b'},
                                           {"attention_dropout", 'n'}, {"pretraining_tp", 'i'}};
static const typed_key_ generation_inert_[] = {{"pad_token_id", 'i'}, {"transformers_version", 's'},
                                               {"_from_model_config", 'b'}};

static ifk_status inert_types_(const cJSON *o, const char *path, const typed_key_ *k, size_t n) {
    static const char *const what[] = {"a string", "an integer", "a number", "true or false"};
    for (size_t i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k[i].key);
        long v;
        if (!x || cJSON_IsNull(x)) continue;
        const int t = k[i].type == 's' ? 0 : k[i].type == 'i' ? 1 : k[i].type == 'n' ? 2 : 3;
        const int ok = t == 0 ? cJSON_IsString(x) : t == 1 ? jint_(o, k[i].key, &v) : t == 2 ? cJSON_IsNumber(x)
                                                                                               : cJSON_IsBool(x);
        if (!ok)
            return IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" = %s is not %s", path, k[i].key, jtext_(x), what[t]);
    }
    return IFK_OK;
}

static ifk_status known_keys_(const cJSON *o, const char *path, const char *const *keys, size_t n) {
    for (const cJSON *e = o->child; e; e = e->next) {
        size_t i = 0;
        while (i < n && strcmp(e->string, keys[i])) i++;
        if (i == n)
            return IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" = %s is not supported (infoflow does not know what it "
                            "changes; docs/models.md lists the fields read)", path, e->string, jtext_(e));
    }
    return IFK_OK;
}

/* A present field whose value is not the one this architecture allows. */
#define REFUSE_(key, x, why)                                                                                     \
    do {                                                                                                         \
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" = %s is not supported%s", path, key, jtext_(x), why);   \
        goto done;                                                                                               \
    } while (0)

static int truthy_(const cJSON *x) { return x && !cJSON_IsNull(x) && !cJSON_IsFalse(x); }

/* eos_token_id: one id or a list of ids; every one of them ends generation. */
static ifk_status eos_ids_(ifk_config *c, const cJSON *x, const char *path) {
    if (!x) return IFK_OK;
    const cJSON *one = x;
    c->n_eos = 0;
    c->eos_id = -1;
    if (cJSON_IsNull(x)) return IFK_OK;
    if (cJSON_IsArray(x)) one = x->child;
    else if (!cJSON_IsNumber(x)) one = NULL;
    for (; one; one = cJSON_IsArray(x) ? one->next : NULL) {
        if (!cJSON_IsNumber(one) || one->valuedouble != floor(one->valuedouble) || one->valuedouble < 0 ||
            one->valuedouble >= (c->vocab_size ? c->vocab_size : 1 << 30) || c->n_eos == IFK_MAX_EOS)
            return IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"eos_token_id\" = %s is not a token id or a list of at most "
                            "%d token ids below vocab_size %d", path, jtext_(x), IFK_MAX_EOS, c->vocab_size);
        c->eos_ids[c->n_eos++] = (int)one->valuedouble;
        if (!cJSON_IsArray(x)) break;
    }
    if (cJSON_IsArray(x) && !c->n_eos)
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"eos_token_id\" = [] names no token", path);
    if (!cJSON_IsArray(x) && !c->n_eos)
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"eos_token_id\" = %s is not a token id", path, jtext_(x));
    c->eos_id = c->eos_ids[0];
    return IFK_OK;
}

/* RoPE: rope_scaling (the 4.x layout) or rope_parameters (transformers 5), with theta inside or
 * at the top. Precedence as transformers 5 (src/transformers/modeling_rope_utils.py,
 * RotaryEmbeddingConfigMixin.convert_rope_params_to_dict and standardize_rope_params):
 * `self.rope_parameters = rope_scaling or self.rope_parameters`, so a non-empty rope_scaling wins
 * whole; then rope_theta inside the dict, else the top-level rope_theta, else 10000; a llama3
 * entry takes original_max_position_embeddings from the top level first, then the dict, then
 * max_position_embeddings. Between "type" and "rope_type" the versions disagree (4.x configs copy
 * "type" over "rope_type": `self.rope_scaling["rope_type"] = self.rope_scaling["type"]`; 5.x keeps
 * "rope_type"), so a dict giving both with different values is refused. */
static ifk_status rope_(ifk_config *c, const cJSON *o, const char *path) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(o, "rope_scaling"),
                *rp = cJSON_GetObjectItemCaseSensitive(o, "rope_parameters"),
                *top = cJSON_GetObjectItemCaseSensitive(o, "rope_theta"),
                *prf = cJSON_GetObjectItemCaseSensitive(o, "partial_rotary_factor");
    ifk_status st = IFK_OK;
    for (int i = 0; i < 2; i++) {
        const cJSON *x = i ? rp : rs;
        if (x && !cJSON_IsNull(x) && !cJSON_IsObject(x)) REFUSE_(i ? "rope_parameters" : "rope_scaling", x, ": not an object");
    }
    const int rs_set = cJSON_IsObject(rs) && rs->child;
    const cJSON *d = rs_set ? rs : cJSON_IsObject(rp) && rp->child ? rp : NULL;
    const char *dn = rs_set ? "rope_scaling" : "rope_parameters";
    if (top && !(cJSON_IsNumber(top) && top->valuedouble > 0)) REFUSE_("rope_theta", top, ": not a positive number");
    if (prf && !cJSON_IsNull(prf) && !(cJSON_IsNumber(prf) && prf->valuedouble == 1.0))
        REFUSE_("partial_rotary_factor", prf, ": RoPE on part of the head is not implemented (1.0 only)");
    c->rope_theta = cJSON_IsNumber(top) ? top->valuedouble : 10000.0;
    if (!d) return IFK_OK;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(d, "type"), *rty = cJSON_GetObjectItemCaseSensitive(d, "rope_type");
    if (ty && rty && !(cJSON_IsString(ty) && cJSON_IsString(rty) && !strcmp(ty->valuestring, rty->valuestring))) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" gives \"type\" = %s and \"rope_type\" = %s: transformers 4 "
                      "takes the first, 5 the second; refused", path, dn, jtext_(ty), jtext_(rty));
        goto done;
    }
    const cJSON *t = rty ? rty : ty;
    const char *tn = !t ? "default" : cJSON_IsString(t) ? t->valuestring : "?";
    const int llama3 = !strcmp(tn, "llama3");
    if (!llama3 && strcmp(tn, "default")) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" = %s: RoPE type \"%s\" is not supported (default, llama3)", path,
                      dn, jtext_(d), tn);
        goto done;
    }
    static const char *const allowed[] = {"type", "rope_type", "rope_theta", "partial_rotary_factor", "factor",
                                          "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"};
    for (const cJSON *e = d->child; e; e = e->next) {
        size_t i = 0, n = llama3 ? 8 : 4;
        while (i < n && strcmp(e->string, allowed[i])) i++;
        if (i == n || (!strcmp(e->string, "partial_rotary_factor") && !(cJSON_IsNumber(e) && e->valuedouble == 1.0))) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" has \"%s\" = %s, not supported with RoPE type \"%s\"", path, dn,
                          e->string, jtext_(e), tn);
            goto done;
        }
    }
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(d, "rope_theta");
    if (th) {
        if (!(cJSON_IsNumber(th) && th->valuedouble > 0)) REFUSE_(dn, d, ": its rope_theta is not a positive number");
        c->rope_theta = th->valuedouble;
    }
    if (llama3) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(d, "factor"), *lo = cJSON_GetObjectItemCaseSensitive(d, "low_freq_factor"),
                    *hi = cJSON_GetObjectItemCaseSensitive(d, "high_freq_factor");
        long omax = c->seq_len;
        if (!jint_(o, "original_max_position_embeddings", &omax)) jint_(d, "original_max_position_embeddings", &omax);
        if (!cJSON_IsNumber(f) || !cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) || !(f->valuedouble > 0) || omax <= 0 ||
            !(hi->valuedouble > lo->valuedouble) || !(lo->valuedouble > 0))
            REFUSE_(dn, d, ": incomplete or inconsistent llama3 entry");
        c->rope_scaling = (ifk_rope_scaling){IFK_ROPE_SCALING_LLAMA3, f->valuedouble, lo->valuedouble, hi->valuedouble, (int)omax};
    }
done:
    return st;
}

/* Sliding-window attention as transformers sets it up: Mistral reads sliding_window (default
 * 4096; null: none) for every layer; Qwen2/Qwen3 only when use_sliding_window, for the layers
 * l >= max_window_layers (default 28); an explicit layer_types list names each layer's kind. */
static ifk_status window_(ifk_config *c, const cJSON *o, int arch, const char *path) {
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(o, "sliding_window"),
                *use = cJSON_GetObjectItemCaseSensitive(o, "use_sliding_window"),
                *mwl = cJSON_GetObjectItemCaseSensitive(o, "max_window_layers"),
                *lt = cJSON_GetObjectItemCaseSensitive(o, "layer_types");
    ifk_status st = IFK_OK;
    const int qwen = arch == A_QWEN2 || arch == A_QWEN3;
    if (use && !cJSON_IsBool(use)) REFUSE_("use_sliding_window", use, ": not true or false");
    if (!qwen && truthy_(use)) REFUSE_("use_sliding_window", use, " for this architecture (Qwen2, Qwen3 only)");
    if (arch == A_LLAMA && truthy_(sw)) REFUSE_("sliding_window", sw, ": LlamaForCausalLM has no sliding window "
                                                                      "(MistralForCausalLM has)");
    long w = arch == A_LLAMA ? 0 : 4096, from = 28, v;
    if (sw && !cJSON_IsNull(sw)) {
        if (!jint_(o, "sliding_window", &v) || v <= 0 || v > (1L << 30)) REFUSE_("sliding_window", sw, ": not a positive integer");
        w = v;
    } else if (sw) {
        w = 0;
    }
    if (qwen && !truthy_(use)) w = 0;
    if (mwl) {
        if (!jint_(o, "max_window_layers", &v) || v < 0) REFUSE_("max_window_layers", mwl, ": not a non-negative integer");
        from = v;
    }
    memset(c->window_layers, 0, sizeof c->window_layers);
    c->sliding_window = (int)w;
    for (int l = 0; l < c->n_layers; l++)
        if (w && (!qwen || l >= from)) c->window_layers[l / 64] |= 1ull << (l % 64);
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->n_layers)
            REFUSE_("layer_types", lt, ": not a list of num_hidden_layers entries");
        memset(c->window_layers, 0, sizeof c->window_layers);
        int l = 0;
        for (const cJSON *e = lt->child; e; e = e->next, l++) {
            const int slide = cJSON_IsString(e) && !strcmp(e->valuestring, "sliding_attention");
            if (!slide && !(cJSON_IsString(e) && !strcmp(e->valuestring, "full_attention")))
                REFUSE_("layer_types", lt, ": entries other than \"full_attention\" and \"sliding_attention\"");
            if (slide && !w) REFUSE_("layer_types", lt, ": a sliding_attention layer but no sliding window in effect");
            if (slide) c->window_layers[l / 64] |= 1ull << (l % 64);
        }
    }
done:
    return st;
}

/* generation_config.json beside config.json: its eos_token_id (and bos) replace config.json's,
 * as transformers' GenerationConfig.from_pretrained does for generate(). */
static ifk_status generation_config_(ifk_config *c, const char *cfg_path) {
    char path[2048];
    const char *slash = strrchr(cfg_path, '/');
    int n = slash ? (int)(slash - cfg_path) : 1;
    snprintf(path, sizeof path, "%.*s/generation_config.json", n, slash ? cfg_path : ".");
    struct stat sb;
    if (stat(path, &sb) != 0) return IFK_OK;
    cJSON *o;
    IFK_CHECK(json_file_(path, &o));
    ifk_status st = known_keys_(o, path, generation_keys_, sizeof generation_keys_ / sizeof *generation_keys_);
    if (st == IFK_OK) st = inert_types_(o, path, generation_inert_, sizeof generation_inert_ / sizeof *generation_inert_);
    long v;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "bos_token_id");
    if (st == IFK_OK && b && !cJSON_IsNull(b)) {
        if (!jint_(o, "bos_token_id", &v) || v < 0 || v >= c->vocab_size)
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"bos_token_id\" = %s is not a token id", path, jtext_(b));
        else c->bos_id = (int)v;
    }
    if (st == IFK_OK) st = eos_ids_(c, cJSON_GetObjectItemCaseSensitive(o, "eos_token_id"), path);
    /* generate's defaults: do_sample, temperature, top_p, top_k, repetition_penalty, max_length,
     * max_new_tokens (null: transformers' default) */
    static const char *const num[] = {"temperature", "top_p", "repetition_penalty"};
    double *dst[] = {&c->gen.temperature, &c->gen.top_p, &c->gen.repetition_penalty};
    const double hi[] = {1e6, 1.0, 1e6};
    for (int i = 0; i < 3 && st == IFK_OK; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, num[i]);
        if (!x || cJSON_IsNull(x)) continue;
        if (!cJSON_IsNumber(x))
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" = %s is not a number", path, num[i], jtext_(x));
        else if (x->valuedouble < 0 || x->valuedouble > hi[i] || (i == 2 && x->valuedouble == 0))
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" = %s is out of range (%s..%g)", path, num[i], jtext_(x),
                          i == 2 ? "above 0" : "0", hi[i]);
        else *dst[i] = x->valuedouble;
    }
    /* top_k 0 turns top-k off; max_new_tokens 0 is an error to transformers (GenerationConfig.validate:
     * "must be greater than 0"), and max_length 0 is shorter than any prompt (generate() refuses it) */
    static const char *const ints[] = {"top_k", "max_length", "max_new_tokens"};
    int *idst[] = {&c->gen.top_k, &c->gen.max_length, &c->gen.max_new_tokens};
    for (int i = 0; i < 3 && st == IFK_OK; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, ints[i]);
        if (!x || cJSON_IsNull(x)) continue;
        if (!jint_(o, ints[i], &v) || v < (i ? 1 : 0) || v > (1L << 30))
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"%s\" = %s is not a %s integer", path, ints[i], jtext_(x),
                          i ? "positive" : "non-negative");
        else *idst[i] = (int)v;
    }
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(o, "do_sample");
    if (st == IFK_OK && ds && !cJSON_IsNull(ds)) {
        if (!cJSON_IsBool(ds)) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"do_sample\" = %s is not true or false", path, jtext_(ds));
        else c->gen.do_sample = cJSON_IsTrue(ds);
    }
    cJSON_Delete(o);
    return st;
}

ifk_status ifk_hf_config(ifk_config *c, const char *path) {
    cJSON *o = NULL;
    memset(c, 0, sizeof *c);
    IFK_CHECK(json_file_(path, &o));
    ifk_status st = known_keys_(o, path, config_keys_, sizeof config_keys_ / sizeof *config_keys_);
    if (st == IFK_OK) st = inert_types_(o, path, config_inert_, sizeof config_inert_ / sizeof *config_inert_);
    if (st != IFK_OK) goto done;
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(o, "architectures"), *arch = cJSON_GetArrayItem(archs, 0);
    if (!archs) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"architectures\" is missing (give one of LlamaForCausalLM, "
                      "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)", path);
        goto done;
    }
    const char *a = cJSON_IsString(arch) ? arch->valuestring : "";
    static const char *const names[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"};
    int ar = 0;
    while (ar < 4 && strcmp(a, names[ar])) ar++;
    if (ar == 4 || cJSON_GetArraySize(archs) != 1) {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"architectures\" = %s is not supported (one of LlamaForCausalLM, "
                      "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)", path, jtext_(archs));
        goto done;
    }
    long v;
#define REQ_(key, dst)                                                                                   \
    if (!jint_(o, key, &v) || v <= 0 || v > (1L << 30)) {                                               \
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: \"%s\" missing or not a positive integer", path, key);         \
        goto done;                                                                                       \
    }                                                                                                    \
    dst = (int)v;
    REQ_("hidden_size", c->dim)
    REQ_("intermediate_size", c->hidden_dim)
    REQ_("num_hidden_layers", c->n_layers)
    REQ_("num_attention_heads", c->n_heads)
    REQ_("vocab_size", c->vocab_size)
#undef REQ_
    const cJSON *x;
    if ((x = cJSON_GetObjectItemCaseSensitive(o, "num_key_value_heads")) && !cJSON_IsNull(x)) {
        if (!jint_(o, "num_key_value_heads", &v) || v <= 0) REFUSE_("num_key_value_heads", x, ": not a positive integer");
        c->n_kv_heads = (int)v;
    } else if (ar == A_LLAMA || x) {
        c->n_kv_heads = c->n_heads; /* Llama's default, and every architecture's for null */
    } else {
        st = IFK_FAIL(IFK_ERR_FORMAT, "%s: \"num_key_value_heads\" missing (%s's default in transformers is not the head "
                      "count; give it)", path, names[ar]);
        goto done;
    }
    c->head_dim = c->dim / c->n_heads;
    if ((x = cJSON_GetObjectItemCaseSensitive(o, "head_dim")) && !cJSON_IsNull(x)) {
        if (!jint_(o, "head_dim", &v) || v <= 0) REFUSE_("head_dim", x, ": not a positive integer");
        c->head_dim = (int)v;
    }
    c->seq_len = 2048; /* absent or null: transformers' default */
    if ((x = cJSON_GetObjectItemCaseSensitive(o, "max_position_embeddings")) && !cJSON_IsNull(x)) {
        if (!jint_(o, "max_position_embeddings", &v) || v <= 0 || v > IFK_MAX_SEQ) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: field \"max_position_embeddings\" = %s is not a positive integer up to "
                          "%d", path, jtext_(x), IFK_MAX_SEQ);
            goto done;
        }
        c->seq_len = (int)v;
    }
    if ((x = cJSON_GetObjectItemCaseSensitive(o, "hidden_act")) && !(cJSON_IsString(x) && !strcmp(x->valuestring, "silu")))
        REFUSE_("hidden_act", x, " (silu only)");
    if ((x = cJSON_GetObjectItemCaseSensitive(o, "use_mrope")) && truthy_(x)) REFUSE_("use_mrope", x, " (multimodal RoPE)");
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(o, "rms_norm_eps"), *tie = cJSON_GetObjectItemCaseSensitive(o, "tie_word_embeddings"),
                *ab = cJSON_GetObjectItemCaseSensitive(o, "attention_bias"), *mb = cJSON_GetObjectItemCaseSensitive(o, "mlp_bias");
    if (eps && !(cJSON_IsNumber(eps) && eps->valuedouble > 0)) REFUSE_("rms_norm_eps", eps, ": not a positive number");
    c->norm_eps = cJSON_IsNumber(eps) ? (float)eps->valuedouble : 1e-6f;
    c->rope_style = IFK_ROPE_HALF;
    if (tie && !cJSON_IsBool(tie)) REFUSE_("tie_word_embeddings", tie, ": not true or false");
    c->shared_classifier = cJSON_IsTrue(tie);
    if (ab && !cJSON_IsBool(ab)) REFUSE_("attention_bias", ab, ": not true or false");
    if (mb && !cJSON_IsBool(mb)) REFUSE_("mlp_bias", mb, ": not true or false");
    /* Llama and Qwen3: attention_bias puts biases on q, k, v and o; Qwen2 always has q/k/v biases
     * and none on o; Mistral none (its projections are built with bias=False) */
    if (cJSON_IsTrue(ab) && (ar == A_MISTRAL || ar == A_QWEN2))
        REFUSE_("attention_bias", ab, ar == A_QWEN2 ? " for Qwen2ForCausalLM (q/k/v biases always, none on o_proj)"
                                                    : " for MistralForCausalLM (its projections have no bias)");
    if (cJSON_IsTrue(mb) && ar != A_LLAMA) REFUSE_("mlp_bias", mb, " (LlamaForCausalLM only)");
    c->qkv_bias = ar == A_QWEN2 || cJSON_IsTrue(ab);
    c->o_bias = cJSON_IsTrue(ab);
    c->mlp_bias = cJSON_IsTrue(mb);
    c->qk_norm = ar == A_QWEN3;
    /* absent: transformers' default for the architecture (LlamaConfig, MistralConfig: 1; Qwen2/3
     * configs have none); null or none: -1, and cache/query refuse the model (ifk_model_check_prefix) */
    c->bos_id = ar == A_LLAMA || ar == A_MISTRAL ? 1 : -1;
    if ((x = cJSON_GetObjectItemCaseSensitive(o, "bos_token_id")) && cJSON_IsNull(x)) c->bos_id = -1;
    else if (x) {
        if (!jint_(o, "bos_token_id", &v) || v < 0 || v >= c->vocab_size) REFUSE_("bos_token_id", x, ": not a token id");
        c->bos_id = (int)v;
    }
    c->eos_id = c->eos_ids[0] = 2;
    c->n_eos = 1;
    IFK_CHECK_GOTO(st, eos_ids_(c, cJSON_GetObjectItemCaseSensitive(o, "eos_token_id"), path), done);
    IFK_CHECK_GOTO(st, rope_(c, o, path), done);
    IFK_CHECK_GOTO(st, ifk_config_validate(c, path), done);
    IFK_CHECK_GOTO(st, window_(c, o, ar, path), done);
    c->gen = (ifk_gen_config){.hf = 1, .temperature = 1.0, .top_p = 1.0, .top_k = 50, .repetition_penalty = 1.0};
    IFK_CHECK_GOTO(st, generation_config_(c, path), done);
done:
    cJSON_Delete(o);
    return st;
}
#undef REFUSE_

/* ---- safetensors ----------------------------------------------------------------------------- */

typedef struct {
    char *path;
    const unsigned char *map;
    size_t len, data0; /* data starts after the 8-byte length and the header */
    cJSON *hdr;
} st_file_;

static void st_close_(st_file_ *f) {
    if (f->map) munmap((void *)f->map, f->len);
    cJSON_Delete(f->hdr);
    free(f->path);
    memset(f, 0, sizeof *f);
}

typedef struct {
    size_t b, e;
} span_;
static int by_begin_(const void *x, const void *y) {
    const span_ *a = x, *b = y;
    return a->b < b->b ? -1 : a->b > b->b;
}

/* Maps a safetensors file and checks its header: length within the file, every tensor's dtype
 * known, offsets inside the data, sizes equal to the shape's, no two tensors overlapping. */
static ifk_status st_open_(st_file_ *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0) close(fd);
        return IFK_FAIL(IFK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    f->len = (size_t)sb.st_size;
    if (f->len < 8) {
        close(fd);
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: %zu bytes, too short for a safetensors header", path, f->len);
    }
    void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return IFK_FAIL(IFK_ERR_IO, "%s: mmap failed", path);
    f->map = m;
    uint64_t hl;
    memcpy(&hl, f->map, 8);
    if (hl > f->len - 8) return IFK_FAIL(IFK_ERR_FORMAT, "%s: header length %llu runs past the end of the file", path,
                                         (unsigned long long)hl);
    f->data0 = 8 + (size_t)hl;
    f->hdr = cJSON_ParseWithLength((const char *)f->map + 8, (size_t)hl);
    if (!cJSON_IsObject(f->hdr)) return IFK_FAIL(IFK_ERR_FORMAT, "%s: header is not a JSON object", path);
    const char *dup = ifk_json_dup_key(f->hdr);
    if (dup) return IFK_FAIL(IFK_ERR_FORMAT, "%s: header names \"%s\" twice", path, dup);
    int n = cJSON_GetArraySize(f->hdr), k = 0;
    span_ *sp = calloc((size_t)n + 1, sizeof *sp);
    if (!sp) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
    ifk_status st = IFK_OK;
    for (const cJSON *t = f->hdr->child; t && st == IFK_OK; t = t->next) {
        if (!strcmp(t->string, "__metadata__")) continue;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(t, "shape"),
                    *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        size_t es = cJSON_IsString(dt) ? (!strcmp(dt->valuestring, "F32") ? 4 : !strcmp(dt->valuestring, "F16") ||
                                          !strcmp(dt->valuestring, "BF16") ? 2 : 0) : 0;
        if (!es) { st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s: dtype %s is not F32, F16 or BF16", path, t->string,
                                 cJSON_IsString(dt) ? dt->valuestring : "?"); break; }
        if (!cJSON_IsArray(sh) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s: shape or data_offsets malformed", path, t->string);
            break;
        }
        double numel = 1;
        for (const cJSON *d = sh->child; d; d = d->next) numel *= cJSON_IsNumber(d) && d->valuedouble >= 0 ? d->valuedouble : NAN;
        double b = cJSON_GetArrayItem(off, 0)->valuedouble, e = cJSON_GetArrayItem(off, 1)->valuedouble;
        if (!(numel >= 0) || !(b >= 0) || !(e >= b) || e > (double)(f->len - f->data0) || e - b != numel * es) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s: data_offsets [%.0f, %.0f) do not hold its shape or run past "
                          "the end of the file", path, t->string, b, e);
            break;
        }
        sp[k++] = (span_){(size_t)b, (size_t)e};
    }
    if (st == IFK_OK) {
        qsort(sp, (size_t)k, sizeof *sp, by_begin_);
        for (int i = 1; i < k; i++)
            if (sp[i].b < sp[i - 1].e) { st = IFK_FAIL(IFK_ERR_FORMAT, "%s: two tensors' data overlap", path); break; }
    }
    free(sp);
    return st;
}

/* Copies tensor name (expected shape rows x cols; cols 0 for 1-D) into dst as f32. */
/* Copies rows [ra, ra+nr) x columns [ca, ca+nc) of tensor name (whose shape must be rows x cols;
 * cols 0 for 1-D, then elements [ra, ra+nr)) into dst as f32: a rank reads only its slice. */
static ifk_status st_block_(st_file_ *fs, int nf, const char *name, long rows, long cols, long ra, long nr, long ca,
                            long nc, ifk_wdtype tgt, void *dst);

static ifk_status st_take_(st_file_ *fs, int nf, const char *name, long rows, long cols, ifk_wdtype tgt, void *dst) {
    return st_block_(fs, nf, name, rows, cols, 0, rows, 0, cols, tgt, dst);
}

static ifk_wdtype st_wdtype_(const char *dt) {
    return !strcmp(dt, "F32") ? IFK_W_F32 : !strcmp(dt, "F16") ? IFK_W_F16 : IFK_W_BF16;
}

/* The dtype a tensor is stored in (IFK_W_F32 when no file has it: the load then reports it missing). */
static ifk_wdtype st_stored_(st_file_ *fs, int nf, const char *name) {
    for (int i = 0; i < nf; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(fs[i].hdr, name);
        if (t) return st_wdtype_(cJSON_GetObjectItemCaseSensitive(t, "dtype")->valuestring);
    }
    return IFK_W_F32;
}

static ifk_status st_block_(st_file_ *fs, int nf, const char *name, long rows, long cols, long ra, long nr, long ca,
                            long nc, ifk_wdtype tgt, void *dst) {
    for (int i = 0; i < nf; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(fs[i].hdr, name);
        if (!t) continue;
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape"), *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
        int rank = cJSON_GetArraySize(sh);
        long r0 = rank > 0 ? (long)cJSON_GetArrayItem(sh, 0)->valuedouble : -1, r1 = rank > 1 ? (long)cJSON_GetArrayItem(sh, 1)->valuedouble : 0;
        if (rank != (cols ? 2 : 1) || r0 != rows || (cols && r1 != cols))
            return IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s has shape [%ld%s%ld], the config implies [%ld%s%ld]", fs[i].path, name,
                            r0, rank > 1 ? ", " : "", rank > 1 ? r1 : 0L, rows, cols ? ", " : "", cols ? cols : 0L);
        const unsigned char *src = fs[i].map + fs[i].data0 + (size_t)cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "data_offsets"), 0)->valuedouble;
        const size_t es = !strcmp(dt->valuestring, "F32") ? 4 : 2, width = (size_t)(cols ? cols : 1);
        const size_t seg = cols ? (size_t)nc : (size_t)nr, nseg = cols ? (size_t)nr : 1;
        const ifk_wdtype sdt = st_wdtype_(dt->valuestring);
        const size_t tes = ifk_wdtype_size(tgt);
        float *tmp = NULL;
        if (sdt != tgt && tgt != IFK_W_F32 && !(tmp = ifk_malloc(sizeof(float) * seg, "conversion row")))
            return IFK_ERR_OOM;
        for (size_t r = 0; r < nseg; r++) { /* one contiguous run per row of the block */
            const unsigned char *p = src + (((size_t)ra + r) * width + (cols ? (size_t)ca : 0)) * es;
            if (!cols) p = src + (size_t)ra * es;
            const size_t bad = ifk_weights_nonfinite(p, sdt, seg); /* as it is copied: one read */
            if (bad < seg) {
                free(tmp);
                return IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s holds NaN or infinity (row %zu, column %zu)", fs[i].path,
                                name, cols ? (size_t)ra + r : 0, (cols ? (size_t)ca : (size_t)ra) + bad);
            }
            unsigned char *d = (unsigned char *)dst + r * seg * tes;
            if (sdt == tgt) {
                memcpy(d, p, seg * es); /* kept as stored */
            } else if (tgt == IFK_W_F32) {
                ifk_weights_to_f32((float *)d, sdt, p, seg);
            } else {
                ifk_weights_to_f32(tmp, sdt, p, seg);
                ifk_weights_from_f32(d, tgt, tmp, seg);
                if (ifk_weights_nonfinite(d, tgt, seg) < seg) { /* f16's range ends at 65504 */
                    free(tmp);
                    return IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s overflows %s (a weight beyond its range): keep "
                                    "another --weights", fs[i].path, name, ifk_wdtype_name(tgt));
                }
            }
        }
        free(tmp);
        /* each tensor is read once: its pages go back now, so that the load's peak is the slice plus
         * about one tensor, not the pages of the file it touched (all of a column-cut matrix's) */
        ifk_drop_pages(src, src + (size_t)rows * width * es);
        return IFK_OK;
    }
    return IFK_FAIL(IFK_ERR_FORMAT, "%s: tensor %s is missing", fs[0].path, name);
}

/* Opens the safetensors files of the HF folder dir: model.safetensors, or each shard that
 * model.safetensors.index.json names (64 at most) once. *nf counts those opened, also on failure
 * (the caller closes them). */
static ifk_status open_files_(const char *dir, st_file_ fs[64], int *nf) {
    char path[2048];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        return st_open_(&fs[(*nf)++], path);
    }
    cJSON *o;
    IFK_CHECK(json_file_(path, &o));
    ifk_status st = IFK_OK;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(o, "weight_map");
    if (!cJSON_IsObject(wm)) st = IFK_FAIL(IFK_ERR_FORMAT, "%s: no \"weight_map\" object", path);
    for (const cJSON *e = wm ? wm->child : NULL; st == IFK_OK && e; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) {
            st = IFK_FAIL(IFK_ERR_FORMAT, "%s: weight_map[%s] is not a file name", path, e->string);
            break;
        }
        int have = 0;
        char fp[2048];
        snprintf(fp, sizeof fp, "%s/%s", dir, e->valuestring);
        for (int i = 0; i < *nf; i++) have |= !strcmp(fs[i].path, fp);
        if (!have) {
            if (*nf == 64) {
                st = IFK_FAIL(IFK_ERR_FORMAT, "%s: more than 64 shards", path);
                break;
            }
            st = st_open_(&fs[(*nf)++], fp);
        }
    }
    cJSON_Delete(o);
    return st;
}

ifk_status ifk_hf_load(ifk_model *m, const char *dir) { return ifk_hf_load_slice(m, dir, 0, 1); }

ifk_status ifk_hf_load_slice(ifk_model *m, const char *dir, int rank, int P) {
    memset(m, 0, sizeof *m);
    snprintf(m->source, sizeof m->source, "%s", dir);
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    ifk_config full;
    IFK_CHECK(ifk_hf_config(&full, path));
    IFK_CHECK(ifk_check_ranks(full.n_kv_heads, P));
    IFK_CHECK(ifk_hf_fingerprint(dir, m->fingerprint));
    /* this rank's slice: KV heads with their query heads, MLP columns (the whole model when P = 1) */
    const long G = full.n_heads / full.n_kv_heads, kvl = full.n_kv_heads / P, hl = kvl * G, Dhf = full.head_dim;
    const long f0 = (long)full.hidden_dim * rank / P, f1 = (long)full.hidden_dim * (rank + 1) / P;
    m->cfg = full;
    m->cfg.n_kv_heads = (int)kvl;
    m->cfg.n_heads = (int)hl;
    m->cfg.hidden_dim = (int)(f1 - f0);
    const long qf = (long)full.n_heads * Dhf, kvf = (long)full.n_kv_heads * Dhf, Ff = full.hidden_dim;
    const long q0 = rank * hl * Dhf, kv0 = rank * kvl * Dhf;
    const ifk_config *c = &m->cfg;
    /* the files: one model.safetensors, or the shards an index names */
    st_file_ fs[64];
    int nf = 0;
    ifk_status st = open_files_(dir, fs, &nf);
    if (st != IFK_OK) goto done;
    const long D = c->dim, F = c->hidden_dim, L = c->n_layers, q = (long)c->n_heads * c->head_dim,
               kv = (long)c->n_kv_heads * c->head_dim, V = c->vocab_size, Dh = c->head_dim;
    /* matrices as stored (--weights auto) or as requested; norms and biases f32 */
    const ifk_wdtype tgt = ifk_weights_requested() >= 0 ? (ifk_wdtype)ifk_weights_requested()
                                                        : st_stored_(fs, nf, "model.layers.0.self_attn.q_proj.weight");
    const size_t tes = ifk_wdtype_size(tgt);
    m->wdtype = tgt;
    size_t mats = (size_t)V * D * (c->shared_classifier ? 1 : 2) + (size_t)L * (q * D + 2 * kv * D + D * q + 3 * F * D);
    size_t vecs = (size_t)L * (2 * D + (c->qkv_bias ? q + 2 * kv : 0) + (c->qk_norm ? 2 * Dh : 0) +
                                 (c->o_bias ? D : 0) + (c->mlp_bias ? 2 * F + D : 0)) + (size_t)D;
    m->owned = ifk_malloc(tes * mats + 4 * vecs, "model weights");
    m->layers = ifk_calloc((size_t)L, sizeof *m->layers, "layer table");
    m->inv_freq = ifk_malloc(sizeof(double) * (size_t)(Dh / 2), "RoPE frequencies");
    if (!m->owned || !m->layers || !m->inv_freq) { st = IFK_ERR_OOM; goto done; }
    ifk_rope_inv_freq(c, m->inv_freq);
    unsigned char *p = m->owned; /* matrices (cols > 0) in tgt, vectors in f32 */
#define TAKE_(name, rows, cols, field)                                                                  \
    do {                                                                                                \
        IFK_CHECK_GOTO(st, st_take_(fs, nf, name, rows, cols, (cols) ? tgt : IFK_W_F32, p), done);      \
        field = (void *)p;                                                                              \
        p += (size_t)(rows) * (size_t)((cols) ? (cols) : 1) * ((cols) ? tes : 4);                       \
    } while (0)
#define PART_(name, rows, cols, ra, nr, ca, nc, field)                                                            \
    do {                                                                                                          \
        IFK_CHECK_GOTO(st, st_block_(fs, nf, name, rows, cols, ra, nr, ca, nc, (cols) ? tgt : IFK_W_F32, p), done); \
        field = (void *)p;                                                                                        \
        p += (size_t)(nr) * (size_t)((cols) ? (nc) : 1) * ((cols) ? tes : 4);                                     \
    } while (0)
    TAKE_("model.embed_tokens.weight", V, D, m->tok_emb);
    for (long l = 0; l < L; l++) {
        ifk_layer_weights *w = &m->layers[l];
        char n[128];
#define LT_(suffix, rows, cols, field) snprintf(n, sizeof n, "model.layers.%ld.%s", l, suffix); TAKE_(n, rows, cols, field)
#define LP_(suffix, rows, cols, ra, nr, ca, nc, field) snprintf(n, sizeof n, "model.layers.%ld.%s", l, suffix); PART_(n, rows, cols, ra, nr, ca, nc, field)
        LT_("input_layernorm.weight", D, 0, w->rms_att);
        LP_("self_attn.q_proj.weight", qf, D, q0, q, 0, D, w->wq);
        LP_("self_attn.k_proj.weight", kvf, D, kv0, kv, 0, D, w->wk);
        LP_("self_attn.v_proj.weight", kvf, D, kv0, kv, 0, D, w->wv);
        LP_("self_attn.o_proj.weight", D, qf, 0, D, q0, q, w->wo);
        if (c->qkv_bias) {
            LP_("self_attn.q_proj.bias", qf, 0, q0, q, 0, 0, w->bq);
            LP_("self_attn.k_proj.bias", kvf, 0, kv0, kv, 0, 0, w->bk);
            LP_("self_attn.v_proj.bias", kvf, 0, kv0, kv, 0, 0, w->bv);
        }
        if (c->qk_norm) {
            LT_("self_attn.q_norm.weight", Dh, 0, w->q_norm);
            LT_("self_attn.k_norm.weight", Dh, 0, w->k_norm);
        }
        if (c->o_bias) { LT_("self_attn.o_proj.bias", D, 0, w->bo); }
        LT_("post_attention_layernorm.weight", D, 0, w->rms_ffn);
        LP_("mlp.gate_proj.weight", Ff, D, f0, F, 0, D, w->w1);
        LP_("mlp.down_proj.weight", D, Ff, 0, D, f0, F, w->w2);
        LP_("mlp.up_proj.weight", Ff, D, f0, F, 0, D, w->w3);
        if (c->mlp_bias) {
            LP_("mlp.gate_proj.bias", Ff, 0, f0, F, 0, 0, w->b1);
            LT_("mlp.down_proj.bias", D, 0, w->b2);
            LP_("mlp.up_proj.bias", Ff, 0, f0, F, 0, 0, w->b3);
        }
#undef LT_
#undef LP_
    }
    TAKE_("model.norm.weight", D, 0, m->rms_final);
    if (c->shared_classifier) m->wcls = m->tok_emb;
    else TAKE_("lm_head.weight", V, D, m->wcls);
#undef TAKE_
#undef PART_
done:
    for (int i = 0; i < nf; i++) st_close_(&fs[i]);
    if (st != IFK_OK) ifk_model_free(m);
    return st;
}

/* ---- fingerprint ------------------------------------------------------------------------------ */

/* The fingerprint hash: FNV-1a's step from the offset basis 1469598103934665603 (one digit short
 * of the standard 14695981039346656037). Kept exactly as it is because fingerprints are written
 * into stores: changing it would orphan every existing store. Not a table hash (strmap.h). */
static uint64_t fmix_(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

ifk_status ifk_hf_fingerprint(const char *dir, char out[17]) {
    /* config.json, every tensor's name/dtype/shape/offsets, and 64 values spread over each tensor:
     * cheap enough for every rank of a tensor-parallel job (it touches a few pages per tensor) */
    char path[2048];
    size_t len;
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *cfg;
    IFK_CHECK(ifk_read_file(path, (size_t)64 << 20, &cfg, &len));
    uint64_t h = fmix_(1469598103934665603ull, cfg, len);
    free(cfg);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    char *ix = NULL;
    if (ifk_read_file(path, (size_t)256 << 20, &ix, &len) != IFK_OK) ifk_err_clear(); /* one file: no index */
    char files[64][512];
    int nfile = 0;
    if (ix) {
        cJSON *o = cJSON_Parse(ix);
        free(ix);
        for (const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "weight_map") ? cJSON_GetObjectItemCaseSensitive(o, "weight_map")->child : NULL; e; e = e->next) {
            int have = 0;
            for (int i = 0; i < nfile; i++) have |= cJSON_IsString(e) && !strcmp(files[i], e->valuestring);
            if (!have && cJSON_IsString(e) && nfile < 64) snprintf(files[nfile++], 512, "%s", e->valuestring);
        }
        cJSON_Delete(o);
    } else {
        snprintf(files[nfile++], 512, "model.safetensors");
    }
    for (int i = 0; i < nfile; i++) {
        st_file_ f;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, files[i]) >= sizeof path)
            return IFK_FAIL(IFK_ERR_ARG, "%s: path too long", dir);
        ifk_status st = st_open_(&f, path);
        if (st != IFK_OK) { st_close_(&f); return st; }
        h = fmix_(h, f.map + 8, f.data0 - 8); /* the header */
        /* the samples are read, not touched through the mapping: a touch maps the pages around it
         * that the page cache holds (fault-around), and 64 touches a tensor made the whole file
         * resident for a moment on every rank */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        for (const cJSON *t = f.hdr->child; t; t = t->next) {
            const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
            if (!cJSON_IsArray(off)) continue;
            size_t b = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, e = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
            for (int k = 0; k < 64 && e > b; k++) {
                const size_t at = f.data0 + b + (e - b - 1) * (size_t)k / 63;
                unsigned char v;
                if (fd < 0 || pread(fd, &v, 1, (off_t)at) != 1) v = f.map[at]; /* as mapped, if the read fails */
                h = fmix_(h, &v, 1);
            }
        }
        if (fd >= 0) close(fd);
        st_close_(&f);
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return IFK_OK;
}

/* ---- writing (the converter) --------------------------------------------------------------- */

ifk_status ifk_hf_write_llama(const ifk_model *m, const char *dir) {
    const ifk_config *c = &m->cfg;
    mkdir(dir, 0755);
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return IFK_FAIL(IFK_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n  \"hidden_size\": %d,\n"
               "  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
               "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n"
               "  \"rope_theta\": %.1f,\n  \"rms_norm_eps\": %g,\n  \"tie_word_embeddings\": %s,\n  \"bos_token_id\": %d,\n"
               "  \"eos_token_id\": %d,\n  \"torch_dtype\": \"float32\"\n}\n",
            c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size, c->seq_len,
            c->rope_theta, c->norm_eps, c->shared_classifier ? "true" : "false", c->bos_id, c->eos_id);
    fclose(f);
    /* tensors: name, data, rows, cols, permute (heads) */
    if (m->wdtype != IFK_W_F32)
        return IFK_FAIL(IFK_ERR_ARG, "%s: the HF writer takes f32 weights; this model holds %s (load it with --weights f32)",
                        dir, ifk_wdtype_name(m->wdtype));
    typedef struct { char name[96]; const float *data; long rows, cols; int perm_heads; } t_;
    const long D = c->dim, F = c->hidden_dim, q = (long)c->n_heads * c->head_dim, kv = (long)c->n_kv_heads * c->head_dim;
    int nt = 0, cap = 8 + 9 * c->n_layers;
    t_ *ts = calloc((size_t)cap, sizeof *ts);
    if (!ts) return IFK_FAIL(IFK_ERR_OOM, "out of memory");
#define ADD_(nm, d, r, cc, ph) do { snprintf(ts[nt].name, 96, "%s", nm); ts[nt].data = (const float *)(d); ts[nt].rows = r; ts[nt].cols = cc; ts[nt].perm_heads = ph; nt++; } while (0)
    ADD_("model.embed_tokens.weight", m->tok_emb, (long)c->vocab_size, D, 0);
    char n[96];
    for (int l = 0; l < c->n_layers; l++) {
        const ifk_layer_weights *w = &m->layers[l];
        snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l); ADD_(n, w->rms_att, D, 0, 0);
        snprintf(n, sizeof n, "model.layers.%d.self_attn.q_proj.weight", l); ADD_(n, w->wq, q, D, c->n_heads);
        snprintf(n, sizeof n, "model.layers.%d.self_attn.k_proj.weight", l); ADD_(n, w->wk, kv, D, c->n_kv_heads);
        snprintf(n, sizeof n, "model.layers.%d.self_attn.v_proj.weight", l); ADD_(n, w->wv, kv, D, 0);
        snprintf(n, sizeof n, "model.layers.%d.self_attn.o_proj.weight", l); ADD_(n, w->wo, D, q, 0);
        snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", l); ADD_(n, w->rms_ffn, D, 0, 0);
        snprintf(n, sizeof n, "model.layers.%d.mlp.gate_proj.weight", l); ADD_(n, w->w1, F, D, 0);
        snprintf(n, sizeof n, "model.layers.%d.mlp.down_proj.weight", l); ADD_(n, w->w2, D, F, 0);
        snprintf(n, sizeof n, "model.layers.%d.mlp.up_proj.weight", l); ADD_(n, w->w3, F, D, 0);
    }
    ADD_("model.norm.weight", m->rms_final, D, 0, 0);
    if (!c->shared_classifier) ADD_("lm_head.weight", m->wcls, (long)c->vocab_size, D, 0);
#undef ADD_
    cJSON *h = cJSON_CreateObject();
    size_t off = 0;
    for (int i = 0; i < nt; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dtype", "F32");
        cJSON *sh = cJSON_CreateArray();
        cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)ts[i].rows));
        if (ts[i].cols) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)ts[i].cols));
        cJSON_AddItemToObject(o, "shape", sh);
        size_t bytes = 4 * (size_t)ts[i].rows * (size_t)(ts[i].cols ? ts[i].cols : 1);
        cJSON *of = cJSON_CreateArray();
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + bytes)));
        cJSON_AddItemToObject(o, "data_offsets", of);
        cJSON_AddItemToObject(h, ts[i].name, o);
        off += bytes;
    }
    char *hj = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t hl = strlen(hj), pad = (8 - hl % 8) % 8;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    f = fopen(path, "wb");
    ifk_status st = IFK_OK;
    if (!f) { st = IFK_FAIL(IFK_ERR_IO, "%s: cannot create: %s", path, strerror(errno)); goto out; }
    uint64_t L64 = hl + pad;
    fwrite(&L64, 8, 1, f);
    fwrite(hj, 1, hl, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    for (int i = 0; i < nt; i++) {
        const long rows = ts[i].rows, cols = ts[i].cols ? ts[i].cols : 1;
        if (!ts[i].perm_heads) { fwrite(ts[i].data, 4, (size_t)rows * cols, f); continue; }
        /* interleaved pairs (2j, 2j+1) of each head become (j, j + Dh/2): row j*... of HF's permute */
        const int Dh = c->head_dim, half = Dh / 2;
        for (int hh = 0; hh < ts[i].perm_heads; hh++)
            for (int r = 0; r < Dh; r++) {
                int src = r < half ? 2 * r : 2 * (r - half) + 1;
                fwrite(ts[i].data + ((size_t)hh * Dh + src) * cols, 4, (size_t)cols, f);
            }
    }
    if (fclose(f) != 0) st = IFK_FAIL(IFK_ERR_IO, "%s: write failed", path);
out:
    free(hj);
    free(ts);
    return st;
}
