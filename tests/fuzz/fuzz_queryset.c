/* fuzz_queryset.c — query-set JSONL (own and LongBench items). */
#include "evalio.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ifk_qitem *it;
    int n;
    if (ifk_queryset_read(fuzz_file_(data, size, ".q.jsonl"), &it, &n) == IFK_OK) ifk_queryset_free(it, n);
    return 0;
}
