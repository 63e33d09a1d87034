/* clones.h — IFK_CLONES: a loop function compiled for AVX-512, AVX2 and baseline x86-64, picked
 * at load time, so one binary runs anywhere and still uses the wide units where they exist
 * (kernels.c, dtype.c, storage/fletcher32.c). Private to the .c files that use it. */
#ifndef IFK_CLONES_H
#define IFK_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(IFK_NO_CLONES)
#define IFK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define IFK_CLONES
#endif

#endif
