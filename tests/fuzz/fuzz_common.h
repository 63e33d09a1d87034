/* fuzz_common.h — helpers for the libFuzzer harnesses: fuzz input as a file the parser opens. */
#ifndef IFK_FUZZ_COMMON_H
#define IFK_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes data to a per-process file in /dev/shm (or /tmp) and returns its path. */
__attribute__((unused)) static const char *fuzz_file_(const uint8_t *data, size_t size, const char *suffix) {
    static char path[256];
    snprintf(path, sizeof path, "%s/ifk-fuzz-%d%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid(),
             suffix);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

#endif
