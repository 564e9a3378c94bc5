// Appending decoding rows to a KV cache (see README.md and row_kernels.h): keys transposed
// into the cache's [n, d, C] layout (component c of position j at [h][c][j], which the
// attention row kernel reads eight or sixteen positions at a time), values copied token-major.
// Pure data movement: no arithmetic, so no variant.

#include "row_kernels.h"

#include <stdlib.h>
#include <string.h>

void mtp_kv_append(float *keysT, float *values, long capacity, long width, long length, const float *keys,
                   const float *newValues, long count) {
    if (length < 0 || count < 0 || length + count > capacity || width < 1) abort();
    for (long t = 0; t < count; t++) {
        const float *row = keys + t * width;
        float *column = keysT + length + t;
        for (long i = 0; i < width; i++) column[i * capacity] = row[i];
    }
    memcpy(values + length * width, newValues, (size_t)(count * width) * sizeof(float));
}
