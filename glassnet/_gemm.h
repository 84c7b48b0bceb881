/* glassnet's float32 GEMM for Linear's inference (glassnet/_gemm.c); the Python wrapper is in _kernels.c. */
#ifndef GLASSNET_GEMM_H
#define GLASSNET_GEMM_H

#include <stdint.h>

#if defined(__GNUC__) && defined(__x86_64__) && (defined(__linux__) || defined(__APPLE__))
#define HAVE_GEMM 1

/* C = P Q^T (+ bias): P (m, k) with row stride p_row and its k axis contiguous; Q (n, k) with strides
   q_row and q_k, one of them 1; C (m, n) with row stride c_row and its n axis contiguous. bias_row
   (m,) or bias_col (n,) (NULL: none) is added to the finished sums, as ``out += bias`` after a GEMM. */
typedef struct {
    const float *p, *q, *bias_row, *bias_col;
    float *c;
    int64_t m, n, k, p_row, q_row, q_k, c_row;
} GemmArgs;

/* The instruction set the GEMM runs on: "avx512f", "avx2" (with FMA), or NULL (none: not available). */
const char *gemm_isa(void);

/* Restrict the GEMM to "avx2" (tests of the AVX2 kernel on an AVX-512 machine) or back to the best
   ("best"); returns 0, or -1 for a name this CPU cannot run. */
int gemm_use_isa(const char *name);

/* Bytes of scratch gemm_f32 needs for ``parts`` threads. */
int64_t gemm_scratch_bytes(const GemmArgs *g, int parts);

/* Compute C on ``parts`` threads (the calling one and parts - 1 of the GEMM's own, which spin for about
   a millisecond after a job and then sleep); scratch: gemm_scratch_bytes bytes, 64-byte aligned. Every
   element of C is summed the same way whatever ``parts`` is. Where a thread cannot start, or another call
   holds the helpers, the calling thread does all the parts. */
void gemm_f32(const GemmArgs *g, int parts, float *scratch);

#endif
#endif
