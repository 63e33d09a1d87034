/* fuzz_jobspec.c — INI job specs. */
#include "evalio.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ifk_jobspec j;
    ifk_jobspec_load(&j, fuzz_file_(data, size, ".ini"));
    return 0;
}
