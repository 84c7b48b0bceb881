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
 * with momentum, 10 for Adam); transposing copies of contiguous runs.
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
#include <stdint.h>
#include <math.h>
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
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ckernels",
    "glassnet's compiled kernels (see glassnet/_kernels.c); the ops reach them through glassnet.compiled.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__ckernels(void) { return PyModule_Create(&module); }
