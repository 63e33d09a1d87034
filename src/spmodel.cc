// spmodel.cc — tokenizer.model through libsentencepiece (spmodel.h). Nothing throws across the
// C boundary: library failures become ifk_status messages.
#include <sentencepiece_processor.h>

#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "spmodel.h"

struct ifk_spm {
    sentencepiece::SentencePieceProcessor sp;
};

extern "C" {

ifk_status ifk_spm_load(ifk_spm **out, const char *path) {
    *out = nullptr;
    ifk_spm *s = new (std::nothrow) ifk_spm;
    if (!s) return IFK_FAIL(IFK_ERR_OOM, "%s: out of memory", path);
    try {
        const auto st = s->sp.Load(path);
        if (!st.ok()) {
            delete s;
            return IFK_FAIL(IFK_ERR_FORMAT, "%s: not a SentencePiece model: %s", path, st.ToString().c_str());
        }
    } catch (...) {
        delete s;
        return IFK_FAIL(IFK_ERR_FORMAT, "%s: not a SentencePiece model", path);
    }
    *out = s;
    return IFK_OK;
}

void ifk_spm_free(ifk_spm **s) {
    delete *s;
    *s = nullptr;
}

int ifk_spm_vocab(const ifk_spm *s) { return s->sp.GetPieceSize(); }
int ifk_spm_bos(const ifk_spm *s) { return s->sp.bos_id(); }
int ifk_spm_eos(const ifk_spm *s) { return s->sp.eos_id(); }

ifk_status ifk_spm_encode(const ifk_spm *s, const char *text, size_t len, int **ids, int *n, int *cap) {
    std::vector<int> v;
    try {
        const auto st = s->sp.Encode(std::string(text, len), &v);
        if (!st.ok()) return IFK_FAIL(IFK_ERR_ARG, "tokenizer.model: cannot encode: %s", st.ToString().c_str());
    } catch (...) {
        return IFK_FAIL(IFK_ERR_OOM, "tokenizer.model: out of memory encoding");
    }
    if (*n + v.size() > (size_t)*cap) {
        size_t c = *n + v.size() + 16;
        int *p = static_cast<int *>(realloc(*ids, sizeof(int) * c));
        if (!p) return IFK_FAIL(IFK_ERR_OOM, "out of memory tokenizing");
        *ids = p, *cap = (int)c;
    }
    for (int id : v) (*ids)[(*n)++] = id;
    return IFK_OK;
}

const char *ifk_spm_piece(const ifk_spm *s, int id, int *kind) {
    *kind = 0;
    if (id < 0 || id >= s->sp.GetPieceSize()) return "";
    *kind = s->sp.IsByte(id) ? 1 : s->sp.IsControl(id) ? 2 : s->sp.IsUnknown(id) ? 3 : 0;
    return s->sp.IdToPiece(id).c_str();
}

int ifk_spm_lookup(const ifk_spm *s, const char *piece, size_t len) {
    const std::string p(piece, len);
    const int id = s->sp.PieceToId(p); /* the unknown piece's id for a string that is no piece */
    return id >= 0 && s->sp.IdToPiece(id) == p ? id : -1;
}

}  // extern "C"
