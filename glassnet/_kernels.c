/* glassnet._ckernels: the compiled kernels, the memory-bound passes of training, in C.
 *
 * Built when glassnet is installed, where a C compiler is found (setup.py: an optional extension;
 * without a compiler glassnet installs and runs its NumPy path). glassnet.compiled hands the module
 * to the ops (compiled.kernels(dtype)). Each kernel does the arithmetic of the NumPy path it
 * replaces (glassnet/ops/conv.py, pool.py, activation.py, norm.py; the optimizers' update functions
 * in glassnet/optim), which stays the reference; the tests compare the two, bit for bit where the
 * arithmetic is the same (float64 sums with a tolerance).
 *
 * What they gain over NumPy: one call per batch chunk that releases the GIL for all of it, so
 * glassnet's threads run their pieces side by side; no padded copy of the input (the bounds are
 * worked out per row); col2im in one pass that adds each column into its pixel, where NumPy makes
 * kh * kw read-modify-write passes; one pass where NumPy needs two or more (ReLU's backward mask and
 * product, BatchNorm's statistics, a transposition and a sum, an optimizer step: 4 passes for SGD
 * with momentum, 10 for Adam); transposing copies of contiguous runs; and, for convolutions with few
 * taps or output channels, a direct convolution and weight gradient that skip im2col's columns
 * (further down: the only kernels whose sums differ from the NumPy path's by rounding). Linear's
 * float32 GEMM for inference is in _gemm.c; its wrapper is here.
 *
 * Arrays come through the buffer protocol: C-contiguous, float32 ("f") or float64 ("d"), of the
 * shapes each kernel checks; a mismatch is a TypeError or ValueError naming the kernel and the
 * argument. Every kernel is written once as a macro over its element type T and built for float
 * (_f32) and double (_f64). Selections (max, ReLU, a window's first maximum) go through integer
 * masks rather than the ?: of floats, which the compiler turns into branches that random data
 * mispredicts (16x slower for 2x2 max pooling). Float64 sums over a channel let the compiler keep
 * several partial sums (`omp simd reduction`, -fopenmp-simd: no OpenMP runtime). No -ffast-math and
 * no FMA contraction: NaN and infinities propagate, and products round as in NumPy.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_gemm.h"
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef int64_t idx;

#define PRAGMA(text) _Pragma(#text)
#if defined(__GNUC__) || defined(_OPENMP)
#define SIMD_SUM(...) PRAGMA(omp simd reduction(+ : __VA_ARGS__))
#else
#define SIMD_SUM(...)
#endif

/* On x86-64 Linux, GCC builds each kernel for AVX-512, AVX2 and the baseline, and the loader picks the
   one this CPU runs (an ifunc): the installed library stays portable. Not the 2x2 pooling kernels:
   their stride-2 loads run 2-5x slower in GCC's AVX-512 and AVX2 code than in its baseline code. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

/* [*lo, *hi): the outputs k in [0, count) whose input index k * stride + offset lies in [0, size). */
static inline void span(idx offset, idx stride, idx size, idx count, idx *lo, idx *hi) {
    idx l = offset < 0 ? (-offset + stride - 1) / stride : 0;
    idx last = size - 1 - offset;
    idx h = last < 0 ? 0 : (last / stride + 1 < count ? last / stride + 1 : count);
    *lo = l;
    *hi = h > l ? h : l;
}

/* cond ? a : b for floats, through an integer mask (no branch). */
static inline float select_f32(int cond, float a, float b) {
    union { float f; int32_t i; } ua = {a}, ub = {b}, r;
    int32_t mask = -(int32_t)cond;
    r.i = (ua.i & mask) | (ub.i & ~mask);
    return r.f;
}

static inline double select_f64(int cond, double a, double b) {
    union { double f; int64_t i; } ua = {a}, ub = {b}, r;
    int64_t mask = -(int64_t)cond;
    r.i = (ua.i & mask) | (ub.i & ~mask);
    return r.f;
}

/* np.maximum of two scalars: the larger, or the first NaN. */
#define SQRT_f32 sqrtf /* correctly rounded, as NumPy's np.sqrt */
#define SQRT_f64 sqrt

#define MAXIMUM(S, a, b) select_##S(((a) > (b)) | ((a) != (a)), (a), (b))

#define KERNELS(T, S)                                                                                      \
                                                                                                           \
    /* cols[(c, i, j), (n, ho, wo)] = x[n, c, ho*sh + i*dh - top, wo*sw + j*dw - left], 0 outside x. */  \
    CLONES static void im2col_##S(const T *restrict x, T *restrict cols, idx N, idx C, idx H, idx W, idx kh,    \
                           idx kw, idx sh, idx sw, idx dh, idx dw, idx top, idx left, idx Ho, idx Wo) {  \
        idx P = Ho * Wo;                                                                                   \
        for (idx c = 0; c < C; c++)                                                                        \
            for (idx i = 0; i < kh; i++)                                                                   \
                for (idx j = 0; j < kw; j++) {                                                             \
                    idx offset = j * dw - left, lo, hi;                                                    \
                    span(offset, sw, W, Wo, &lo, &hi);                                                     \
                    T *row = cols + ((c * kh + i) * kw + j) * N * P;                                       \
                    for (idx n = 0; n < N; n++) {                                                          \
                        const T *plane = x + (n * C + c) * H * W;                                          \
                        for (idx ho = 0; ho < Ho; ho++) {                                                  \
                            idx h = ho * sh + i * dh - top;                                                \
                            T *dst = row + n * P + ho * Wo;                                                \
                            if (h < 0 || h >= H) {                                                         \
                                for (idx wo = 0; wo < Wo; wo++) dst[wo] = 0;                               \
                                continue;                                                                  \
                            }                                                                              \
                            const T *src = plane + h * W + offset;                                         \
                            for (idx wo = 0; wo < lo; wo++) dst[wo] = 0;                                   \
                            if (sw == 1)                                                                   \
                                for (idx wo = lo; wo < hi; wo++) dst[wo] = src[wo];                        \
                            else                                                                           \
                                for (idx wo = lo; wo < hi; wo++) dst[wo] = src[wo * sw];                   \
                            for (idx wo = hi; wo < Wo; wo++) dst[wo] = 0;                                  \
                        }                                                                                  \
                    }                                                                                      \
                }                                                                                          \
    }                                                                                                      \
                                                                                                           \
    /* grad_x[n, c, h, w] = the sum of the columns that read x[n, c, h, w], added in (i, j) order from    \
       zero as the NumPy path's kh * kw passes add them: the same bits. */                                 \
    CLONES static void col2im_##S(const T *restrict cols, T *restrict grad_x, idx N, idx C, idx H, idx W, idx kh, \
                           idx kw, idx sh, idx sw, idx dh, idx dw, idx top, idx left, idx Ho, idx Wo) {  \
        idx P = Ho * Wo;                                                                                   \
        memset(grad_x, 0, (size_t)(N * C * H * W) * sizeof(T));                                            \
        for (idx n = 0; n < N; n++)                                                                        \
            for (idx c = 0; c < C; c++) {                                                                  \
                T *plane = grad_x + (n * C + c) * H * W;                                                   \
                for (idx i = 0; i < kh; i++)                                                               \
                    for (idx j = 0; j < kw; j++) {                                                         \
                        idx offset = j * dw - left, lo, hi;                                                \
                        span(offset, sw, W, Wo, &lo, &hi);                                                 \
                        const T *row = cols + ((c * kh + i) * kw + j) * N * P + n * P;                     \
                        for (idx ho = 0; ho < Ho; ho++) {                                                  \
                            idx h = ho * sh + i * dh - top;                                                \
                            if (h < 0 || h >= H) continue;                                                 \
                            const T *src = row + ho * Wo;                                                  \
                            T *dst = plane + h * W + offset;                                               \
                            if (sw == 1)                                                                   \
                                for (idx wo = lo; wo < hi; wo++) dst[wo] += src[wo];                       \
                            else                                                                           \
                                for (idx wo = lo; wo < hi; wo++) dst[wo * sw] += src[wo];                  \
                        }                                                                                  \
                    }                                                                                      \
            }                                                                                              \
    }                                                                                                      \
                                                                                                           \
    /* out[n, o, p] = res[o, n, p] (+ bias[o] when bias is not NULL): the forward GEMM's (O, N, P) to    \
       NCHW; NumPy's transposing np.add is the same arithmetic. */                                         \
    CLONES static void gemm_to_nchw_##S(const T *restrict res, const T *restrict bias, T *restrict out, idx O,   \
                                 idx N, idx P) {                                                           \
        for (idx n = 0; n < N; n++)                                                                        \
            for (idx o = 0; o < O; o++) {                                                                  \
                const T *src = res + (o * N + n) * P;                                                      \
                T *dst = out + (n * O + o) * P;                                                            \
                if (bias) {                                                                                \
                    T b = bias[o];                                                                         \
                    for (idx p = 0; p < P; p++) dst[p] = src[p] + b;                                       \
                } else {                                                                                   \
                    memcpy(dst, src, (size_t)P * sizeof(T));                                               \
                }                                                                                          \
            }                                                                                              \
    }                                                                                                      \
                                                                                                           \
    /* g[o, n, p] = grad_out[n, o, p] (the backward GEMMs' layout); sums[o] += its float64 sum. */         \
    CLONES static void nchw_to_gemm_##S(const T *restrict grad_out, T *restrict g, double *restrict sums, idx N, \
                                 idx O, idx P) {                                                           \
        for (idx n = 0; n < N; n++)                                                                        \
            for (idx o = 0; o < O; o++) {                                                                  \
                const T *src = grad_out + (n * O + o) * P;                                                 \
                T *dst = g + (o * N + n) * P;                                                              \
                double s = 0.0;                                                                            \
                SIMD_SUM(s)                                                                                \
                for (idx p = 0; p < P; p++) {                                                              \
                    T v = src[p];                                                                          \
                    dst[p] = v;                                                                            \
                    s += (double)v;                                                                        \
                }                                                                                          \
                sums[o] += s;                                                                              \
            }                                                                                              \
    }                                                                                                      \
                                                                                                           \
    /* MaxPool2d(2) over NC planes of H x W: each output the maximum of its 2x2 window, taken in          \
       row-major order as the NumPy path's chained np.maximum (a NaN wins). */                             \
    static void max_pool2x2_##S(const T *restrict x, T *restrict out, idx NC, idx H, idx W, idx Ho,       \
                                idx Wo) {                                                                  \
        for (idx p = 0; p < NC; p++)                                                                       \
            for (idx ho = 0; ho < Ho; ho++) {                                                              \
                const T *r0 = x + p * H * W + 2 * ho * W, *r1 = r0 + W;                                    \
                T *dst = out + (p * Ho + ho) * Wo;                                                         \
                for (idx wo = 0; wo < Wo; wo++) {                                                          \
                    T a = r0[2 * wo], b = r0[2 * wo + 1], c = r1[2 * wo], d = r1[2 * wo + 1];              \
                    T m = MAXIMUM(S, a, b);                                                                \
                    m = MAXIMUM(S, m, c);                                                                  \
                    dst[wo] = MAXIMUM(S, m, d);                                                            \
                }                                                                                          \
            }                                                                                              \
    }                                                                                                      \
                                                                                                           \
    /* MaxPool2d(2)'s input gradient: each window's gradient goes to its first maximum in row-major       \
       order (a NaN counts as one); every element of grad_x is written, those in no window with zero. */  \
    static void max_pool2x2_backward_##S(const T *restrict x, const T *restrict out,                      \
                                         const T *restrict grad_out, T *restrict grad_x, idx NC, idx H,   \
                                         idx W, idx Ho, idx Wo) {                                         \
        for (idx p = 0; p < NC; p++) {                                                                     \
            const T *plane = x + p * H * W;                                                                \
            T *gplane = grad_x + p * H * W;                                                                \
            for (idx ho = 0; ho < Ho; ho++) {                                                              \
                const T *r0 = plane + 2 * ho * W, *r1 = r0 + W;                                            \
                T *g0 = gplane + 2 * ho * W, *g1 = g0 + W;                                                 \
                const T *m_row = out + (p * Ho + ho) * Wo, *g_row = grad_out + (p * Ho + ho) * Wo;         \
                for (idx wo = 0; wo < Wo; wo++) {                                                          \
                    T m = m_row[wo], g = g_row[wo];                                                        \
                    T a = r0[2 * wo], b = r0[2 * wo + 1], c = r1[2 * wo];                                  \
                    int hit_a = (a == m) | (a != a);                                                       \
                    int hit_b = ((b == m) | (b != b)) & !hit_a;                                            \
                    int hit_c = ((c == m) | (c != c)) & !(hit_a | hit_b);                                  \
                    int hit_d = !(hit_a | hit_b | hit_c);                                                  \
                    g0[2 * wo] = select_##S(hit_a, g, 0);                                                  \
                    g0[2 * wo + 1] = select_##S(hit_b, g, 0);                                              \
                    g1[2 * wo] = select_##S(hit_c, g, 0);                                                  \
                    g1[2 * wo + 1] = select_##S(hit_d, g, 0);                                              \
                }                                                                                          \
                for (idx w = 2 * Wo; w < W; w++) g0[w] = g1[w] = 0; /* an odd width's last column */       \
            }                                                                                              \
            for (idx h = 2 * Ho; h < H; h++) /* an odd height's last row */                                \
                for (idx w = 0; w < W; w++) gplane[h * W + w] = 0;                                         \
        }                                                                                                  \
    }                                                                                                      \
                                                                                                           \
    /* out = np.maximum(x, 0) (NaN stays NaN, -0.0 gives +0.0). */                                         \
    CLONES static void relu_##S(const T *restrict x, T *restrict out, idx n) {                                   \
        for (idx i = 0; i < n; i++) {                                                                      \
            T v = x[i];                                                                                    \
            out[i] = select_##S((v > 0) | (v != v), v, 0);                                                 \
        }                                                                                                  \
    }                                                                                                      \
                                                                                                           \
    /* grad_x = grad_out * (out > 0), as NumPy's product (inf * 0 is NaN), in one pass. */                 \
    CLONES static void relu_backward_##S(const T *restrict grad_out, const T *restrict out, T *restrict grad_x,  \
                                  idx n) {                                                                 \
        for (idx i = 0; i < n; i++) grad_x[i] = grad_out[i] * select_##S(out[i] > 0, 1, 0);                \
    }                                                                                                      \
                                                                                                           \
    /* sums[c] += sum of (x - shift[c]), sums[C + c] += sum of its squares, over n and l (float64), for    \
       an (N, C, L) x. A shift near the channel's mean keeps the variance free of cancellation. */         \
    CLONES static void channel_moments_##S(const T *restrict x, const double *restrict shift,                    \
                                    double *restrict sums, idx N, idx C, idx L) {                          \
        for (idx n = 0; n < N; n++)                                                                        \
            for (idx c = 0; c < C; c++) {                                                                  \
                const T *src = x + (n * C + c) * L;                                                        \
                double k = shift[c], s = 0.0, q = 0.0;                                                     \
                SIMD_SUM(s, q)                                                                             \
                for (idx i = 0; i < L; i++) {                                                              \
                    double d = (double)src[i] - k;                                                         \
                    s += d;                                                                                \
                    q += d * d;                                                                            \
                }                                                                                          \
                sums[c] += s;                                                                              \
                sums[C + c] += q;                                                                          \
            }                                                                                              \
    }                                                                                                      \
                                                                                                           \
    /* sums[c] += sum of g, sums[C + c] += sum of g * (x - mean[c]), over n and l (float64), for (N, C, L)   \
       g and x. */                                                                                         \
    CLONES static void channel_grad_sums_##S(const T *restrict g, const T *restrict x,                           \
                                      const double *restrict mean, double *restrict sums, idx N, idx C,   \
                                      idx L) {                                                             \
        for (idx n = 0; n < N; n++)                                                                        \
            for (idx c = 0; c < C; c++) {                                                                  \
                const T *gs = g + (n * C + c) * L, *xs = x + (n * C + c) * L;                              \
                double m = mean[c], s = 0.0, d = 0.0;                                                      \
                SIMD_SUM(s, d)                                                                             \
                for (idx i = 0; i < L; i++) {                                                              \
                    double gv = (double)gs[i];                                                             \
                    s += gv;                                                                               \
                    d += gv * ((double)xs[i] - m);                                                         \
                }                                                                                          \
                sums[c] += s;                                                                              \
                sums[C + c] += d;                                                                          \
            }                                                                                              \
    }                                                                                                      \
                                                                                                           \
    /* out[n, c, l] = (x[n, c, l] - mean[c]) * scale[c] + shift[c], for (N, C, L) arrays. */               \
    CLONES static void channel_affine_##S(const T *restrict x, const T *restrict mean, const T *restrict scale,  \
                                   const T *restrict shift, T *restrict out, idx N, idx C, idx L) {       \
        for (idx n = 0; n < N; n++)                                                                        \
            for (idx c = 0; c < C; c++) {                                                                  \
                const T *src = x + (n * C + c) * L;                                                        \
                T *dst = out + (n * C + c) * L, m = mean[c], a = scale[c], b = shift[c];                   \
                for (idx i = 0; i < L; i++) dst[i] = (src[i] - m) * a + b;                                 \
            }                                                                                              \
    }                                                                                                      \
                                                                                                           \
    /* out[n, c, l] = g * a[c] + (x * b[c] + cc[c]), for (N, C, L) arrays: BatchNorm's input gradient. */  \
    CLONES static void channel_affine2_##S(const T *restrict g, const T *restrict a, const T *restrict x,        \
                                    const T *restrict b, const T *restrict cc, T *restrict out, idx N,    \
                                    idx C, idx L) {                                                        \
        for (idx n = 0; n < N; n++)                                                                        \
            for (idx c = 0; c < C; c++) {                                                                  \
                const T *gs = g + (n * C + c) * L, *xs = x + (n * C + c) * L;                              \
                T *dst = out + (n * C + c) * L, av = a[c], bv = b[c], cv = cc[c];                          \
                for (idx i = 0; i < L; i++) dst[i] = gs[i] * av + (xs[i] * bv + cv);                       \
            }                                                                                              \
    }                                                                                                      \
                                                                                                           \
    /* SGD with momentum, in place and in one pass, the NumPy path's operations in its order:            \
       buf = buf * mu + g * damp;  param = param + (nesterov ? g + buf * mu : buf) * nlr. */              \
    CLONES static void sgd_momentum_##S(T *restrict param, const T *restrict grad, T *restrict buf, idx n,      \
                                        idx nesterov, T mu, T damp, T nlr) {                               \
        if (nesterov)                                                                                      \
            for (idx i = 0; i < n; i++) {                                                                  \
                T g = grad[i], b = buf[i] * mu + g * damp;                                                 \
                buf[i] = b;                                                                                \
                param[i] = param[i] + (g + b * mu) * nlr;                                                  \
            }                                                                                              \
        else                                                                                               \
            for (idx i = 0; i < n; i++) {                                                                  \
                T b = buf[i] * mu + grad[i] * damp;                                                        \
                buf[i] = b;                                                                                \
                param[i] = param[i] + b * nlr;                                                             \
            }                                                                                              \
    }                                                                                                      \
                                                                                                           \
    /* param = param + grad * alpha (plain SGD's step, alpha = -lr). */                                   \
    CLONES static void add_scaled_##S(T *restrict param, const T *restrict grad, idx n, T alpha) {         \
        for (idx i = 0; i < n; i++) param[i] = param[i] + grad[i] * alpha;                                 \
    }                                                                                                      \
                                                                                                           \
    /* One Adam / AdamW step in one pass, the NumPy path's operations in its order (glassnet/optim/adam.py): \
       the decoupled decay, exp_avg's lerp (w = 1 - beta1 in torch.lerp's formula for small weights, else  \
       1 - w), exp_avg_sq, its running maximum (amsgrad; ``vmax`` unused otherwise), the denominator      \
       sqrt(v) / bc2s + eps and the step (exp_avg / denominator) * nstep. */                              \
    CLONES static void adam_##S(T *restrict param, const T *restrict grad, T *restrict m, T *restrict v,        \
                                T *restrict vmax, idx n, idx small_weight, idx amsgrad, idx decoupled, T decay, \
                                T w, T beta2, T c2, T bc2s, T eps, T nstep) {                              \
        for (idx i = 0; i < n; i++) {                                                                      \
            T p = decoupled ? param[i] * decay : param[i], g = grad[i], d = g - m[i];                      \
            T mi = small_weight ? m[i] + d * w : g - d * w;                                                \
            T vi = v[i] * beta2 + (g * c2) * g, s = vi;                                                    \
            m[i] = mi;                                                                                     \
            v[i] = vi;                                                                                     \
            if (amsgrad) s = vmax[i] = MAXIMUM(S, vmax[i], vi);                                            \
            param[i] = p + (mi / (SQRT_##S(s) / bc2s + eps)) * nstep;                                      \
        }                                                                                                  \
    }                                                                                                      \
                                                                                                           \
    /* One RMSprop step in one pass, the NumPy path's operations in its order (glassnet/optim/rmsprop.py):   \
       square_avg, grad_avg's lerp (centered; w as in adam; ``ga`` unused otherwise), the denominator,     \
       the momentum buffer (momentum > 0; ``buf`` unused otherwise) and the step * nlr. */                \
    CLONES static void rmsprop_##S(T *restrict param, const T *restrict grad, T *restrict sq, T *restrict ga,   \
                                   T *restrict buf, idx n, idx small_weight, idx centered, idx use_momentum,    \
                                   T alpha, T c, T w, T eps, T momentum, T nlr) {                          \
        for (idx i = 0; i < n; i++) {                                                                      \
            T g = grad[i], si = sq[i] * alpha + (g * c) * g, den;                                          \
            sq[i] = si;                                                                                    \
            if (centered) {                                                                                \
                T d = g - ga[i], ai = small_weight ? ga[i] + d * w : g - d * w;                            \
                ga[i] = ai;                                                                                \
                den = SQRT_##S(si - ai * ai) + eps;                                                        \
            } else                                                                                         \
                den = SQRT_##S(si) + eps;                                                                  \
            T u;                                                                                           \
            if (use_momentum) {                                                                            \
                T b = buf[i] * momentum + g / den;                                                         \
                buf[i] = b;                                                                                \
                u = b * nlr;                                                                               \
            } else                                                                                         \
                u = (g / den) * nlr;                                                                       \
            param[i] = param[i] + u;                                                                       \
        }                                                                                                  \
    }

KERNELS(float, f32)
KERNELS(double, f64)

/* ---- Direct convolution: stride 1, no groups, few input taps (C * kh * kw). ----

   Where C * kh * kw is small (LeNet's or a CNN's first layer on one-channel images), im2col copies
   each input value kh * kw times into columns far larger than the input (LeNet's first convolution at
   batch 128: 10 MiB from a 0.4 MiB batch) for a GEMM that has almost nothing to compute per byte.
   These kernels read each image once instead, into zero-bordered planes of width Wp = Wo + (kw - 1) * dw
   (the "wide" grid of glassnet/ops/conv.py), where tap (c, i, j) of output q = ho * Wp + wo is the
   plane's value at q + i * dh * Wp + j * dw: every tap is one contiguous run, so the loops run over
   64-byte vectors (GCC's vector extension: one AVX-512 register, two AVX2 ones) with the accumulators of
   several output channels (forward) or channel x tap pairs (weight gradient) held in registers. The
   grid's columns wo >= Wo are computed and dropped (forward) or weighted by a zero gradient (weight
   gradient; ops/conv.py redoes a chunk whose gradient is not finite through the columns, where a zero
   times an infinity the exact sum never reads would make a NaN). Sums run in float32 (float64) as a
   GEMM's do, in tap order: the results equal the NumPy path's to rounding, not bit for bit. */
#if defined(__GNUC__)
#define HAVE_DIRECT 1
typedef float vec_f32 __attribute__((vector_size(64)));
typedef double vec_f64 __attribute__((vector_size(64)));

#define LOAD(v, p) memcpy(&(v), (p), sizeof(v)) /* an unaligned vector load */

enum { DIRECT_OB = 8, GRAD_OB = 4, GRAD_TB = 4 }; /* forward: output channels per pass; gradient: channels x taps */

/* The grid of a direct convolution: sizes and the scratch layout (the wrapper allocates it). */
typedef struct {
    idx Hp, Wp, L, Lr, Ps, K, Kp, Op;
} Grid;

static Grid direct_grid(idx C, idx O, idx kh, idx kw, idx dh, idx dw, idx Ho, idx Wo, idx lanes, idx ob, idx tb) {
    Grid d;
    d.Wp = Wo + (kw - 1) * dw;
    d.Hp = Ho + (kh - 1) * dh;
    d.L = Ho * d.Wp;
    d.Lr = (d.L + lanes - 1) / lanes * lanes;       /* the grid rounded up to whole vectors */
    d.Ps = d.Hp * d.Wp + (kw - 1) * dw + lanes;     /* plane stride: the last vector's shifted reads stay inside */
    d.K = C * kh * kw;
    d.Kp = (d.K + tb - 1) / tb * tb;
    d.Op = (O + ob - 1) / ob * ob;
    return d;
}

/* Bytes of scratch: tap offsets, padded planes, then (forward) packed weights and the output grid, or
   (gradient) the gradient grid and the vector accumulators. */
static size_t direct_scratch(Grid d, idx C, idx lanes, size_t item, int gradient) {
    size_t n = (size_t)(C * d.Ps) + (gradient ? (size_t)(d.Op * d.Lr + d.Op * d.Kp * lanes) : (size_t)(d.Op * d.K + d.Op * d.Lr));
    return (size_t)d.Kp * sizeof(idx) + n * item;
}

#define DIRECT_KERNELS(T, S)                                                                               \
    /* One image's channels into zero-bordered planes: xp[c * Ps + hp * Wp + wp] = x[c, hp - top, wp - left]; \
       and the offsets of the taps (c, i, j) in tap order (entries past K repeat the last). */             \
    static void direct_planes_##S(const T *restrict x, T *restrict xp, idx *restrict off, Grid d, idx C, idx H,  \
                                  idx W, idx kh, idx kw, idx dh, idx dw, idx top, idx left) {              \
        memset(xp, 0, (size_t)(C * d.Ps) * sizeof(T));                                                     \
        idx wn = W < d.Wp - left ? W : d.Wp - left; /* input columns inside the grid */                    \
        for (idx c = 0; c < C; c++)                                                                        \
            for (idx h = 0; h < H; h++) {                                                                  \
                idx hp = h + top;                                                                          \
                if (hp >= d.Hp || wn <= 0) continue;                                                       \
                memcpy(xp + c * d.Ps + hp * d.Wp + left, x + (c * H + h) * W, (size_t)wn * sizeof(T));     \
            }                                                                                              \
        for (idx t = 0; t < d.Kp; t++) {                                                                   \
            idx u = t < d.K ? t : d.K - 1, c = u / (kh * kw), i = u / kw % kh, j = u % kw;                 \
            off[t] = c * d.Ps + i * dh * d.Wp + j * dw;                                                    \
        }                                                                                                  \
    }                                                                                                      \
                                                                                                           \
    /* out[n, o] = bias[o] + the sum over taps t of w[o, t] * x's tap t (bias NULL: none). */              \
    CLONES static void conv_direct_##S(const T *restrict x, const T *restrict w, const T *restrict bias,    \
                                       T *restrict out, char *restrict scratch, idx N, idx C, idx H, idx W, idx O, \
                                       idx kh, idx kw, idx dh, idx dw, idx top, idx left, idx Ho, idx Wo) {  \
        enum { VL = sizeof(vec_##S) / sizeof(T), OB = DIRECT_OB };                                         \
        Grid d = direct_grid(C, O, kh, kw, dh, dw, Ho, Wo, VL, OB, 1);                                     \
        idx *off = (idx *)scratch;                                                                         \
        T *xp = (T *)(off + d.Kp), *wpk = xp + C * d.Ps, *grid = wpk + d.Op * d.K;                         \
        for (idx o = 0; o < d.Op; o++) /* packed: wpk[(o / OB) * K * OB + t * OB + o % OB], 0 past O */   \
            for (idx t = 0; t < d.K; t++) wpk[(o / OB * d.K + t) * OB + o % OB] = o < O ? w[o * d.K + t] : 0; \
        for (idx n = 0; n < N; n++) {                                                                      \
            direct_planes_##S(x + n * C * H * W, xp, off, d, C, H, W, kh, kw, dh, dw, top, left);          \
            for (idx b = 0; b < d.Op / OB; b++) {                                                          \
                const T *wb = wpk + b * d.K * OB;                                                          \
                for (idx q = 0; q < d.Lr; q += VL) {                                                       \
                    vec_##S acc[OB];                                                                       \
                    for (int a = 0; a < OB; a++) acc[a] = (vec_##S){0};                                    \
                    for (idx t = 0; t < d.K; t++) {                                                        \
                        vec_##S xv;                                                                        \
                        LOAD(xv, xp + off[t] + q);                                                         \
                        for (int a = 0; a < OB; a++) acc[a] += wb[t * OB + a] * xv;                        \
                    }                                                                                      \
                    for (int a = 0; a < OB; a++) memcpy(grid + (b * OB + a) * d.Lr + q, &acc[a], sizeof acc[a]); \
                }                                                                                          \
            }                                                                                              \
            for (idx o = 0; o < O; o++)                                                                    \
                for (idx ho = 0; ho < Ho; ho++) {                                                          \
                    const T *src = grid + o * d.Lr + ho * d.Wp;                                            \
                    T *dst = out + ((n * O + o) * Ho + ho) * Wo;                                           \
                    if (bias) {                                                                            \
                        T bo = bias[o];                                                                    \
                        for (idx wo = 0; wo < Wo; wo++) dst[wo] = src[wo] + bo;                            \
                    } else                                                                                 \
                        memcpy(dst, src, (size_t)Wo * sizeof(T));                                          \
                }                                                                                          \
        }                                                                                                  \
    }                                                                                                      \
                                                                                                           \
    /* sums[o] += the float64 sum of g[n, o] (as nchw_to_gemm: the same bits); gw (NULL: not wanted)      \
       [o, t] = the sum over images and outputs of g[n, o, q] * x's tap t at q, in float32 (float64). */  \
    CLONES static void conv_direct_grad_##S(const T *restrict x, const T *restrict g, T *restrict gw,       \
                                            double *restrict sums, char *restrict scratch, idx N, idx C, idx H, \
                                            idx W, idx O, idx kh, idx kw, idx dh, idx dw, idx top, idx left, \
                                            idx Ho, idx Wo) {                                              \
        enum { VL = sizeof(vec_##S) / sizeof(T), OB = GRAD_OB, TB = GRAD_TB };                             \
        Grid d = direct_grid(C, O, kh, kw, dh, dw, Ho, Wo, VL, OB, TB);                                    \
        idx *off = (idx *)scratch, P = Ho * Wo;                                                            \
        T *xp = (T *)(off + d.Kp), *ggrid = xp + C * d.Ps, *vacc = ggrid + d.Op * d.Lr;                    \
        if (gw) {                                                                                          \
            memset(ggrid, 0, (size_t)(d.Op * d.Lr) * sizeof(T)); /* zero at wo >= Wo, q >= L, o >= O */   \
            memset(vacc, 0, (size_t)(d.Op * d.Kp * VL) * sizeof(T));                                       \
        }                                                                                                  \
        for (idx n = 0; n < N; n++) {                                                                      \
            for (idx o = 0; o < O; o++) {                                                                  \
                const T *src = g + (n * O + o) * P;                                                        \
                double s = 0.0;                                                                            \
                SIMD_SUM(s)                                                                                \
                for (idx p = 0; p < P; p++) s += (double)src[p];                                           \
                sums[o] += s;                                                                              \
                if (gw)                                                                                    \
                    for (idx ho = 0; ho < Ho; ho++)                                                        \
                        memcpy(ggrid + o * d.Lr + ho * d.Wp, src + ho * Wo, (size_t)Wo * sizeof(T));       \
            }                                                                                              \
            if (!gw) continue;                                                                             \
            direct_planes_##S(x + n * C * H * W, xp, off, d, C, H, W, kh, kw, dh, dw, top, left);          \
            for (idx o0 = 0; o0 < d.Op; o0 += OB)                                                          \
                for (idx t0 = 0; t0 < d.Kp; t0 += TB) {                                                    \
                    vec_##S acc[OB][TB];                                                                   \
                    for (int a = 0; a < OB; a++)                                                           \
                        for (int b = 0; b < TB; b++) LOAD(acc[a][b], vacc + ((o0 + a) * d.Kp + t0 + b) * VL); \
                    for (idx q = 0; q < d.Lr; q += VL) {                                                   \
                        vec_##S gv[OB], xv[TB];                                                            \
                        for (int a = 0; a < OB; a++) LOAD(gv[a], ggrid + (o0 + a) * d.Lr + q);             \
                        for (int b = 0; b < TB; b++) LOAD(xv[b], xp + off[t0 + b] + q);                    \
                        for (int a = 0; a < OB; a++)                                                       \
                            for (int b = 0; b < TB; b++) acc[a][b] += gv[a] * xv[b];                       \
                    }                                                                                      \
                    for (int a = 0; a < OB; a++)                                                           \
                        for (int b = 0; b < TB; b++)                                                       \
                            memcpy(vacc + ((o0 + a) * d.Kp + t0 + b) * VL, &acc[a][b], sizeof acc[a][b]);  \
                }                                                                                          \
        }                                                                                                  \
        if (gw)                                                                                            \
            for (idx o = 0; o < O; o++)                                                                    \
                for (idx t = 0; t < d.K; t++) {                                                            \
                    const T *lane = vacc + (o * d.Kp + t) * VL;                                            \
                    T s = 0;                                                                               \
                    for (idx l = 0; l < VL; l++) s += lane[l];                                             \
                    gw[o * d.K + t] = s;                                                                   \
                }                                                                                          \
    }

DIRECT_KERNELS(float, f32)
DIRECT_KERNELS(double, f64)
#endif

/* ---- The Python side: arguments, checks, the GIL. ---- */

/* The arguments of one call: its buffers and integers, and whether the data is float64. */
typedef struct {
    const char *kernel;
    Py_buffer buf[6];
    int nbuf;
    idx num[14];
    double real[8];
    int f64;
} Call;

static void release(Call *call) {
    for (int i = 0; i < call->nbuf; i++) PyBuffer_Release(&call->buf[i]);
    call->nbuf = 0;
}

static int fail(Call *call, PyObject *type, const char *message) {
    release(call);
    PyErr_Format(type, "glassnet._ckernels.%s: %s", call->kernel, message);
    return -1;
}

/* 'f' or 'd' for a native float32 or float64 buffer, else 0. */
static char float_kind(const Py_buffer *view) {
    const char *f = view->format;
    if (f == NULL) return 0; /* unsigned bytes */
    if (f[0] == '@' || f[0] == '=' || f[0] == '<') f++; /* '<': little-endian, this machine's order */
    return (f[0] == 'f' || f[0] == 'd') && f[1] == '\0' ? f[0] : 0;
}

/* Parse ``args``: one buffer per letter of ``spec`` (r / w: read / written, of the kernel's dtype, the
   first one's; R / W: read / written float64), then ``nnum`` integers. */
static int parse(Call *call, const char *kernel, PyObject *const *args, Py_ssize_t nargs, const char *spec,
                 int nnum) {
    int nbuf = (int)strlen(spec);
    char kind = 0, message[160];
    call->kernel = kernel;
    call->nbuf = 0;
    if (nargs != nbuf + nnum) {
        PyErr_Format(PyExc_TypeError, "glassnet._ckernels.%s: expected %d arguments, got %zd", kernel,
                     nbuf + nnum, nargs);
        return -1;
    }
    for (int i = 0; i < nbuf; i++) {
        int writable = spec[i] == 'w' || spec[i] == 'W';
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(args[i], &call->buf[i], flags) < 0) {
            PyErr_Clear();
            snprintf(message, sizeof message, "argument %d must be a C-contiguous%s array", i + 1,
                     writable ? ", writable" : "");
            return fail(call, PyExc_TypeError, message);
        }
        call->nbuf = i + 1;
        char k = float_kind(&call->buf[i]);
        char want = (spec[i] == 'R' || spec[i] == 'W') ? 'd' : (kind ? kind : k);
        if (k == 0 || k != want) {
            snprintf(message, sizeof message, "argument %d has format '%s', expected '%c' (%s)", i + 1,
                     call->buf[i].format, want ? want : 'f', want == 'd' ? "float64" : "float32 or float64");
            return fail(call, PyExc_TypeError, message);
        }
        if (spec[i] == 'r' || spec[i] == 'w') kind = k;
    }
    for (int i = 0; i < nnum; i++) {
        call->num[i] = PyLong_AsLongLong(args[nbuf + i]);
        if (call->num[i] == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            snprintf(message, sizeof message, "argument %d must be an integer", nbuf + i + 1);
            return fail(call, PyExc_TypeError, message);
        }
    }
    call->f64 = kind == 'd';
    return 0;
}

/* Parse ``args`` as ``parse`` does, then ``nreal`` numbers (as doubles, into call->real). */
static int parse_with_reals(Call *call, const char *kernel, PyObject *const *args, Py_ssize_t nargs,
                            const char *spec, int nnum, int nreal) {
    int nfirst = (int)strlen(spec) + nnum;
    if (nargs != nfirst + nreal) {
        PyErr_Format(PyExc_TypeError, "glassnet._ckernels.%s: expected %d arguments, got %zd", kernel,
                     nfirst + nreal, nargs);
        return -1;
    }
    if (parse(call, kernel, args, nfirst, spec, nnum) < 0) return -1;
    for (int i = 0; i < nreal; i++) {
        call->real[i] = PyFloat_AsDouble(args[nfirst + i]);
        if (call->real[i] == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            char message[80];
            snprintf(message, sizeof message, "argument %d must be a number", nfirst + i + 1);
            return fail(call, PyExc_TypeError, message);
        }
    }
    return 0;
}

static idx items(const Call *call, int i) { return call->buf[i].len / call->buf[i].itemsize; }

/* Check a buffer's shape (ndim values); -1 in ``shape`` accepts any length on that axis. */
static int check_shape(Call *call, int i, int ndim, const idx *shape) {
    const Py_buffer *v = &call->buf[i];
    int ok = v->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = shape[d] < 0 || v->shape[d] == shape[d];
    if (ok) return 0;
    /* At most 4 axes of at most 20 digits each: well within the buffer. */
    char message[512];
    int at = snprintf(message, sizeof message, "argument %d has shape (", i + 1);
    for (int d = 0; d < v->ndim && d < 8; d++)
        at += snprintf(message + at, sizeof message - at, d ? ", %zd" : "%zd", v->shape[d]);
    at += snprintf(message + at, sizeof message - at, "), expected (");
    for (int d = 0; d < ndim; d++)
        at += snprintf(message + at, sizeof message - at, d ? ", %lld" : "%lld", (long long)shape[d]);
    snprintf(message + at, sizeof message - at, ")");
    return fail(call, PyExc_ValueError, message);
}

static int check_items(Call *call, int i, idx want) {
    if (items(call, i) == want) return 0;
    char message[120];
    snprintf(message, sizeof message, "argument %d has %lld elements, expected %lld", i + 1,
             (long long)items(call, i), (long long)want);
    return fail(call, PyExc_ValueError, message);
}

#define DATA(i) (call.buf[i].buf)
#define RUN(name, ...)                                                                                     \
    do {                                                                                                   \
        Py_BEGIN_ALLOW_THREADS if (call.f64) name##_f64(__VA_ARGS__);                                      \
        else name##_f32(__VA_ARGS__);                                                                      \
        Py_END_ALLOW_THREADS release(&call);                                                               \
        Py_RETURN_NONE;                                                                                    \
    } while (0)

/* The (N, C, H, W) of the image at buffer ``image``, after checking that buffer ``columns`` holds its
   (C kh kw, N Ho Wo) columns; num holds kh, kw, sh, sw, dh, dw, top, left, Ho, Wo. */
static int column_shapes(Call *call, int image, int columns, idx *d) {
    if (check_shape(call, image, 4, (idx[]){-1, -1, -1, -1}) < 0) return -1;
    const Py_ssize_t *s = call->buf[image].shape;
    const idx *k = call->num;
    d[0] = s[0], d[1] = s[1], d[2] = s[2], d[3] = s[3];
    return check_items(call, columns, d[1] * k[0] * k[1] * d[0] * k[8] * k[9]);
}

/* im2col(x, cols, kh, kw, sh, sw, dh, dw, top, left, Ho, Wo): x (N, C, H, W), cols (C kh kw, N Ho Wo). */
static PyObject *py_im2col(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    idx d[4], *k = call.num;
    if (parse(&call, "im2col", args, nargs, "rw", 10) < 0 || column_shapes(&call, 0, 1, d) < 0) return NULL;
    RUN(im2col, DATA(0), DATA(1), d[0], d[1], d[2], d[3], k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9]);
}

/* col2im(cols, grad_x, kh, kw, sh, sw, dh, dw, top, left, Ho, Wo): grad_x (N, C, H, W). */
static PyObject *py_col2im(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    idx d[4], *k = call.num;
    if (parse(&call, "col2im", args, nargs, "rw", 10) < 0 || column_shapes(&call, 1, 0, d) < 0) return NULL;
    RUN(col2im, DATA(0), DATA(1), d[0], d[1], d[2], d[3], k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9]);
}

/* gemm_to_nchw(res, bias, out): res (O, N, P), bias (O,) or empty (no bias), out (N, O, P). */
static PyObject *py_gemm_to_nchw(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    if (parse(&call, "gemm_to_nchw", args, nargs, "rrw", 0) < 0 || check_shape(&call, 0, 3, (idx[]){-1, -1, -1}) < 0)
        return NULL;
    const Py_ssize_t *s = call.buf[0].shape;
    idx O = s[0], N = s[1], P = s[2];
    if (check_shape(&call, 2, 3, (idx[]){N, O, P}) < 0) return NULL;
    void *bias = items(&call, 1) ? DATA(1) : NULL;
    if (bias && check_items(&call, 1, O) < 0) return NULL;
    RUN(gemm_to_nchw, DATA(0), bias, DATA(2), O, N, P);
}

/* nchw_to_gemm(grad_out, g, sums): grad_out (N, O, P), g (O, N P), sums (O,) float64. */
static PyObject *py_nchw_to_gemm(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    if (parse(&call, "nchw_to_gemm", args, nargs, "rwW", 0) < 0 || check_shape(&call, 0, 3, (idx[]){-1, -1, -1}) < 0)
        return NULL;
    const Py_ssize_t *s = call.buf[0].shape;
    idx N = s[0], O = s[1], P = s[2];
    if (check_items(&call, 1, N * O * P) < 0 || check_items(&call, 2, O) < 0) return NULL;
    RUN(nchw_to_gemm, DATA(0), DATA(1), DATA(2), N, O, P);
}

/* The (N C, H, W, Ho, Wo) of max pooling's x (N, C, H, W) and out (N, C, Ho, Wo) at buffers 0 and 1. */
static int pool_shapes(Call *call, idx *dims) {
    if (check_shape(call, 0, 4, (idx[]){-1, -1, -1, -1}) < 0) return -1;
    const Py_ssize_t *s = call->buf[0].shape;
    if (check_shape(call, 1, 4, (idx[]){s[0], s[1], s[2] / 2, s[3] / 2}) < 0) return -1;
    dims[0] = s[0] * s[1], dims[1] = s[2], dims[2] = s[3], dims[3] = s[2] / 2, dims[4] = s[3] / 2;
    return 0;
}

/* max_pool2x2(x, out): x (N, C, H, W), out (N, C, H // 2, W // 2). */
static PyObject *py_max_pool2x2(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    idx d[5];
    if (parse(&call, "max_pool2x2", args, nargs, "rw", 0) < 0 || pool_shapes(&call, d) < 0) return NULL;
    RUN(max_pool2x2, DATA(0), DATA(1), d[0], d[1], d[2], d[3], d[4]);
}

/* max_pool2x2_backward(x, out, grad_out, grad_x): grad_out shaped as out, grad_x as x. */
static PyObject *py_max_pool2x2_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    idx d[5];
    if (parse(&call, "max_pool2x2_backward", args, nargs, "rrrw", 0) < 0 || pool_shapes(&call, d) < 0 ||
        check_items(&call, 2, items(&call, 1)) < 0 || check_items(&call, 3, items(&call, 0)) < 0)
        return NULL;
    RUN(max_pool2x2_backward, DATA(0), DATA(1), DATA(2), DATA(3), d[0], d[1], d[2], d[3], d[4]);
}

/* relu(x, out): flat arrays of one length. */
static PyObject *py_relu(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    if (parse(&call, "relu", args, nargs, "rw", 0) < 0 || check_items(&call, 1, items(&call, 0)) < 0) return NULL;
    RUN(relu, DATA(0), DATA(1), items(&call, 0));
}

/* relu_backward(grad_out, out, grad_x): flat arrays of one length. */
static PyObject *py_relu_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    if (parse(&call, "relu_backward", args, nargs, "rrw", 0) < 0 || check_items(&call, 1, items(&call, 0)) < 0 ||
        check_items(&call, 2, items(&call, 0)) < 0)
        return NULL;
    RUN(relu_backward, DATA(0), DATA(1), DATA(2), items(&call, 0));
}

/* The (N, C, L) of buffer 0, after checking that buffers [first, last) have C values each. */
static int channel_shapes(Call *call, idx *dims, int first, int last) {
    if (check_shape(call, 0, 3, (idx[]){-1, -1, -1}) < 0) return -1;
    const Py_ssize_t *s = call->buf[0].shape;
    dims[0] = s[0], dims[1] = s[1], dims[2] = s[2];
    for (int i = first; i < last; i++)
        if (check_items(call, i, s[1]) < 0) return -1;
    return 0;
}

/* channel_moments(x, shift, out): x (N, C, L), shift (C,) float64, out (2, C) float64. */
static PyObject *py_channel_moments(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    idx d[3];
    if (parse(&call, "channel_moments", args, nargs, "rRW", 0) < 0 || channel_shapes(&call, d, 1, 2) < 0 ||
        check_items(&call, 2, 2 * d[1]) < 0)
        return NULL;
    RUN(channel_moments, DATA(0), DATA(1), DATA(2), d[0], d[1], d[2]);
}

/* channel_grad_sums(g, x, mean, out): g and x (N, C, L), mean (C,) float64, out (2, C) float64. */
static PyObject *py_channel_grad_sums(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    idx d[3];
    if (parse(&call, "channel_grad_sums", args, nargs, "rrRW", 0) < 0 || channel_shapes(&call, d, 2, 3) < 0 ||
        check_shape(&call, 1, 3, d) < 0 || check_items(&call, 3, 2 * d[1]) < 0)
        return NULL;
    RUN(channel_grad_sums, DATA(0), DATA(1), DATA(2), DATA(3), d[0], d[1], d[2]);
}

/* channel_affine(x, mean, scale, shift, out): x and out (N, C, L), the others (C,). */
static PyObject *py_channel_affine(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    idx d[3];
    if (parse(&call, "channel_affine", args, nargs, "rrrrw", 0) < 0 || channel_shapes(&call, d, 1, 4) < 0 ||
        check_shape(&call, 4, 3, d) < 0)
        return NULL;
    RUN(channel_affine, DATA(0), DATA(1), DATA(2), DATA(3), DATA(4), d[0], d[1], d[2]);
}

/* channel_affine2(g, a, x, b, c, out): g, x and out (N, C, L), a, b and c (C,). */
static PyObject *py_channel_affine2(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    idx d[3];
    if (parse(&call, "channel_affine2", args, nargs, "rrrrrw", 0) < 0 || channel_shapes(&call, d, 1, 2) < 0 ||
        check_shape(&call, 2, 3, d) < 0 || check_items(&call, 3, d[1]) < 0 || check_items(&call, 4, d[1]) < 0 ||
        check_shape(&call, 5, 3, d) < 0)
        return NULL;
    RUN(channel_affine2, DATA(0), DATA(1), DATA(2), DATA(3), DATA(4), DATA(5), d[0], d[1], d[2]);
}

/* The flat arrays of an optimizer step (param first) have one length. */
static int same_lengths(Call *call) {
    for (int i = 1; i < call->nbuf; i++)
        if (check_items(call, i, items(call, 0)) < 0) return -1;
    return 0;
}

/* sgd_momentum(param, grad, buf, nesterov, momentum, damp, nlr): flat arrays of one length, updated in
   place (param, buf); damp = 1 - dampening, nlr = -lr. */
static PyObject *py_sgd_momentum(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    if (parse_with_reals(&call, "sgd_momentum", args, nargs, "wrw", 1, 3) < 0 || same_lengths(&call) < 0) return NULL;
    const double *r = call.real;
    RUN(sgd_momentum, DATA(0), DATA(1), DATA(2), items(&call, 0), call.num[0], r[0], r[1], r[2]);
}

/* add_scaled(param, grad, alpha): flat arrays of one length; param += grad * alpha. */
static PyObject *py_add_scaled(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    if (parse_with_reals(&call, "add_scaled", args, nargs, "wr", 0, 1) < 0 || same_lengths(&call) < 0) return NULL;
    RUN(add_scaled, DATA(0), DATA(1), items(&call, 0), call.real[0]);
}

/* adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, small_weight, amsgrad, decoupled, decay, w, beta2,
   c2, bc2s, eps, nstep). */
static PyObject *py_adam(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    if (parse_with_reals(&call, "adam", args, nargs, "wrwww", 3, 7) < 0 || same_lengths(&call) < 0) return NULL;
    const idx *k = call.num;
    const double *r = call.real;
    RUN(adam, DATA(0), DATA(1), DATA(2), DATA(3), DATA(4), items(&call, 0), k[0], k[1], k[2], r[0], r[1], r[2],
        r[3], r[4], r[5], r[6]);
}

/* rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, small_weight, centered, use_momentum, alpha, c,
   w, eps, momentum, nlr). */
static PyObject *py_rmsprop(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    if (parse_with_reals(&call, "rmsprop", args, nargs, "wrwww", 3, 6) < 0 || same_lengths(&call) < 0) return NULL;
    const idx *k = call.num;
    const double *r = call.real;
    RUN(rmsprop, DATA(0), DATA(1), DATA(2), DATA(3), DATA(4), items(&call, 0), k[0], k[1], k[2], r[0], r[1], r[2],
        r[3], r[4], r[5]);
}

#ifdef HAVE_DIRECT
/* The checks shared by the direct convolution's calls: x (N, C, H, W) at buffer 0, the output or its
   gradient (N, O, Ho, Wo) at buffer ``io``, the weight or its gradient (O C kh kw elements; ``empty_ok``:
   or none) at buffer ``iw``; num holds kh, kw, dh, dw, top, left. Any Ho, Wo >= 1 is safe (rows and
   columns past the input read as zeros); the caller works them out. Fills dims with N, C, H, W, O, Ho,
   Wo and the grid. */
static int direct_shapes(Call *call, int io, int iw, int empty_ok, int gradient, idx *dims, Grid *grid) {
    const idx *k = call->num;
    if (check_shape(call, 0, 4, (idx[]){-1, -1, -1, -1}) < 0) return -1;
    const Py_ssize_t *s = call->buf[0].shape;
    if (check_shape(call, io, 4, (idx[]){s[0], -1, -1, -1}) < 0) return -1;
    const Py_ssize_t *t = call->buf[io].shape;
    if (k[0] < 1 || k[1] < 1 || k[2] < 1 || k[3] < 1 || k[4] < 0 || k[5] < 0 || t[1] < 1 || t[2] < 1 || t[3] < 1)
        return fail(call, PyExc_ValueError, "kernel size and dilation must be positive, padding non-negative and "
                                            "the output non-empty");
    if (!(empty_ok && items(call, iw) == 0) && check_items(call, iw, t[1] * s[1] * k[0] * k[1]) < 0) return -1;
    dims[0] = s[0], dims[1] = s[1], dims[2] = s[2], dims[3] = s[3], dims[4] = t[1], dims[5] = t[2], dims[6] = t[3];
    idx lanes = 64 / (idx)call->buf[0].itemsize;
    *grid = direct_grid(s[1], t[1], k[0], k[1], k[2], k[3], t[2], t[3], lanes, gradient ? GRAD_OB : DIRECT_OB,
                        gradient ? GRAD_TB : 1);
    return 0;
}

#define RUN_WITH_SCRATCH(name, bytes, ...)                                                                 \
    do {                                                                                                   \
        char *scratch = malloc(bytes);                                                                     \
        if (scratch == NULL) {                                                                             \
            release(&call);                                                                                \
            return PyErr_NoMemory();                                                                       \
        }                                                                                                  \
        Py_BEGIN_ALLOW_THREADS if (call.f64) name##_f64(__VA_ARGS__);                                      \
        else name##_f32(__VA_ARGS__);                                                                      \
        Py_END_ALLOW_THREADS free(scratch);                                                                \
        release(&call);                                                                                    \
        Py_RETURN_NONE;                                                                                    \
    } while (0)

/* conv_direct(x, weight, bias, out, kh, kw, dh, dw, top, left): out (N, O, Ho, Wo), stride 1, no groups. */
static PyObject *py_conv_direct(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    idx d[7], *k = call.num;
    Grid grid;
    if (parse(&call, "conv_direct", args, nargs, "rrrw", 6) < 0 || direct_shapes(&call, 3, 1, 0, 0, d, &grid) < 0)
        return NULL;
    void *bias = items(&call, 2) ? DATA(2) : NULL;
    if (bias && check_items(&call, 2, d[4]) < 0) return NULL;
    size_t bytes = direct_scratch(grid, d[1], 64 / call.buf[0].itemsize, call.buf[0].itemsize, 0);
    RUN_WITH_SCRATCH(conv_direct, bytes, DATA(0), DATA(1), bias, DATA(3), scratch, d[0], d[1], d[2], d[3], d[4], k[0],
                     k[1], k[2], k[3], k[4], k[5], d[5], d[6]);
}

/* conv_direct_grad(x, grad_out, grad_weight, sums, kh, kw, dh, dw, top, left): grad_weight (O, C, kh, kw) or
   empty (not wanted), sums (O,) float64 (added to). */
static PyObject *py_conv_direct_grad(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    idx d[7], *k = call.num;
    Grid grid;
    if (parse(&call, "conv_direct_grad", args, nargs, "rrwW", 6) < 0 || direct_shapes(&call, 1, 2, 1, 1, d, &grid) < 0 ||
        check_items(&call, 3, d[4]) < 0)
        return NULL;
    void *gw = items(&call, 2) ? DATA(2) : NULL;
    size_t bytes = direct_scratch(grid, d[1], 64 / call.buf[0].itemsize, call.buf[0].itemsize, 1);
    RUN_WITH_SCRATCH(conv_direct_grad, bytes, DATA(0), DATA(1), gw, DATA(3), scratch, d[0], d[1], d[2], d[3], d[4],
                     k[0], k[1], k[2], k[3], k[4], k[5], d[5], d[6]);
}
#endif

#ifdef HAVE_GEMM
/* gemm(p, q, c, bias, q_is_kn, bias_per_row, threads): c = p q^T (+ bias), float32. p (m, k); q (n, k), or its
   transpose (k, n) when q_is_kn; c (m, n); bias empty, (m,) when bias_per_row, else (n,). */
static PyObject *py_gemm(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Call call;
    idx *f = call.num;
    if (parse(&call, "gemm", args, nargs, "rrwr", 3) < 0) return NULL;
    if (call.f64) {
        fail(&call, PyExc_TypeError, "float32 arrays only (float64 products go to NumPy's BLAS)");
        return NULL;
    }
    if (gemm_isa() == NULL) {
        fail(&call, PyExc_RuntimeError, "this CPU has neither AVX-512 nor AVX2 with FMA");
        return NULL;
    }
    if (check_shape(&call, 0, 2, (idx[]){-1, -1}) < 0) return NULL;
    idx m = call.buf[0].shape[0], k = call.buf[0].shape[1];
    if (check_shape(&call, 1, 2, f[0] ? (idx[]){k, -1} : (idx[]){-1, k}) < 0) return NULL;
    idx n = call.buf[1].shape[f[0] ? 1 : 0];
    if (check_shape(&call, 2, 2, (idx[]){m, n}) < 0) return NULL;
    if (items(&call, 3) && check_items(&call, 3, f[1] ? m : n) < 0) return NULL;
    if (f[2] < 1) {
        fail(&call, PyExc_ValueError, "threads must be at least 1");
        return NULL;
    }
    const float *bias = items(&call, 3) ? DATA(3) : NULL;
    GemmArgs g = {.p = DATA(0), .q = DATA(1), .c = DATA(2), .bias_row = f[1] ? bias : NULL,
                  .bias_col = f[1] ? NULL : bias, .m = m, .n = n, .k = k, .p_row = k, .q_row = f[0] ? 1 : k,
                  .q_k = f[0] ? n : 1, .c_row = n};
    int parts = (int)(f[2] < 64 ? f[2] : 64);
    float *scratch = aligned_alloc(64, (size_t)gemm_scratch_bytes(&g, parts));
    if (scratch == NULL) {
        release(&call);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS gemm_f32(&g, parts, scratch);
    Py_END_ALLOW_THREADS free(scratch);
    release(&call);
    Py_RETURN_NONE;
}

/* gemm_isa(name=None): the instruction set the GEMM runs on ("avx512f", "avx2" or None); with a name, use that
   one ("avx2" on an AVX-512 CPU, for tests; "best" to go back). */
static PyObject *py_gemm_isa(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs > 1) return PyErr_Format(PyExc_TypeError, "glassnet._ckernels.gemm_isa: expected at most 1 argument");
    if (nargs == 1 && args[0] != Py_None) {
        const char *name = PyUnicode_AsUTF8(args[0]);
        if (name == NULL) return NULL;
        if (gemm_use_isa(name) < 0)
            return PyErr_Format(PyExc_ValueError, "glassnet._ckernels.gemm_isa: this CPU cannot run '%s' (it runs %s)",
                                name, gemm_isa() ? gemm_isa() : "none");
    }
    const char *now = gemm_isa();
    if (now == NULL) Py_RETURN_NONE;
    return PyUnicode_FromString(now);
}
#endif

#define METHOD(name, doc) {#name, (PyCFunction)(void (*)(void))py_##name, METH_FASTCALL, doc}

static PyMethodDef methods[] = {
    METHOD(im2col, "im2col(x, cols, kh, kw, sh, sw, dh, dw, top, left, Ho, Wo): cols[(c, i, j), (n, ho, wo)] = "
                   "x[n, c, ho*sh + i*dh - top, wo*sw + j*dw - left], 0 outside x."),
    METHOD(col2im, "col2im(cols, grad_x, kh, kw, sh, sw, dh, dw, top, left, Ho, Wo): grad_x = the sums of the "
                   "columns that read each pixel."),
    METHOD(gemm_to_nchw, "gemm_to_nchw(res, bias, out): out[n, o, p] = res[o, n, p] (+ bias[o]; empty bias: none)."),
    METHOD(nchw_to_gemm, "nchw_to_gemm(grad_out, g, sums): g[o, n, p] = grad_out[n, o, p]; sums[o] += its "
                         "float64 sum."),
    METHOD(max_pool2x2, "max_pool2x2(x, out): MaxPool2d(2) (a NaN wins)."),
    METHOD(max_pool2x2_backward, "max_pool2x2_backward(x, out, grad_out, grad_x): each window's gradient to its "
                                 "first maximum in row-major order."),
    METHOD(relu, "relu(x, out): out = np.maximum(x, 0)."),
    METHOD(relu_backward, "relu_backward(grad_out, out, grad_x): grad_x = grad_out * (out > 0)."),
    METHOD(channel_moments, "channel_moments(x, shift, out): out[0, c] += sum (x - shift[c]), out[1, c] += sum of "
                            "squares, float64."),
    METHOD(channel_grad_sums, "channel_grad_sums(g, x, mean, out): out[0, c] += sum g, out[1, c] += "
                              "sum g * (x - mean[c]), float64."),
    METHOD(channel_affine, "channel_affine(x, mean, scale, shift, out): out = (x - mean) * scale + shift per channel."),
    METHOD(channel_affine2, "channel_affine2(g, a, x, b, c, out): out = g * a + (x * b + c) per channel."),
    METHOD(sgd_momentum, "sgd_momentum(param, grad, buf, nesterov, momentum, damp, nlr): buf = buf * momentum + "
                         "grad * damp; param += (grad + buf * momentum if nesterov else buf) * nlr."),
    METHOD(add_scaled, "add_scaled(param, grad, alpha): param += grad * alpha."),
    METHOD(adam, "adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, small_weight, amsgrad, decoupled, decay, w, "
                 "beta2, c2, bc2s, eps, nstep): one Adam step (glassnet.optim.adam.adam_update)."),
    METHOD(rmsprop, "rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, small_weight, centered, "
                    "use_momentum, alpha, c, w, eps, momentum, nlr): one RMSprop step "
                    "(glassnet.optim.rmsprop.rmsprop_update)."),
#ifdef HAVE_DIRECT
    METHOD(conv_direct, "conv_direct(x, weight, bias, out, kh, kw, dh, dw, top, left): a stride-1, ungrouped "
                        "convolution without columns (bias empty: none)."),
    METHOD(conv_direct_grad, "conv_direct_grad(x, grad_out, grad_weight, sums, kh, kw, dh, dw, top, left): its "
                             "weight gradient (grad_weight empty: none) and sums[o] += the float64 sum of grad_out[:, o]."),
#endif
#ifdef HAVE_GEMM
    METHOD(gemm, "gemm(p, q, c, bias, q_is_kn, bias_per_row, threads): c = p @ q.T (+ bias), float32 (q given as q.T "
                 "when q_is_kn; bias empty, per row of c or per column)."),
    METHOD(gemm_isa, "gemm_isa(name=None): the instruction set of gemm ('avx512f', 'avx2' or None); a name switches."),
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ckernels",
    "glassnet's compiled kernels (see glassnet/_kernels.c); the ops reach them through glassnet.compiled.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__ckernels(void) { return PyModule_Create(&module); }
