/* glassnet's float32 GEMM, for Linear's forward pass in inference (glassnet/ops/linalg.py).
 *
 * Why glassnet has one: NumPy's OpenBLAS picks its kernels by CPU model, and on some CPUs it picks
 * slower ones (on an AMD Zen 4 it runs its AVX-512 "SkylakeX" kernels, 10-15% slower on a Linear's
 * products than its own AVX2 ones). This GEMM is written for the shapes of a network's layers, in the
 * textbook way (Goto's: BLIS's loops, a register-blocked micro-kernel):
 *
 *   C = P Q^T, both operands read along k. Q is packed, a block of KC values of k at a time, into
 *   strips of NR rows laid out k-major (strip[k][j]); the micro-kernel keeps an MR x NR block of C
 *   in registers and, for each k, multiplies NR packed values of Q by MR values of P broadcast from
 *   P's rows as they are (P needs no copy). The caller packs the operand with fewer rows (ops/linalg.py
 *   chooses P and Q so), which makes the copy the smaller one.
 *
 * Each element of C is the sum over k in blocks of KC, each block summed in k order with fused
 * multiply-adds, then the bias added: the same for every split of the work between threads, so the
 * result does not depend on the number of threads. It differs from OpenBLAS's result by rounding.
 *
 * Threads: the work is split by strips of Q (or, with fewer strips than threads, by rows of P); the
 * GEMM has its own helper threads, which spin for about a millisecond after a job (a network's next
 * layer comes within microseconds; a sleeping thread takes 30-60 us to wake) and then sleep on a
 * condition variable. A fork resets the pool (the child starts its own threads). Two calls at once
 * (Python threads) do not wait for each other: the second runs its parts on the calling thread. */
#include "_gemm.h"

#ifdef HAVE_GEMM
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

typedef int64_t idx;

enum { KC = 384 }; /* values of k per packed block: a strip (KC x 64 floats, 96 KiB) stays in L2 */

static idx min_idx(idx a, idx b) { return a < b ? a : b; }

/* ---- Packing: rows [j0, j0 + nr) of Q, k in [k0, k0 + kc), into strip[k][jj] of width NR (zeros past nr). ---- */
/* Eight rows of Q, k in [0, kc): an 8 x 8 transpose in registers per 8 values of k, so that each row is read as
   one sequential run (8 streams the hardware prefetches) and each store writes 8 packed values. */
__attribute__((target("avx2"))) static void pack_rows8(const float *src, idx row, idx kc, idx NR, float *strip) {
    idx k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 r0 = _mm256_loadu_ps(src + 0 * row + k), r1 = _mm256_loadu_ps(src + 1 * row + k);
        __m256 r2 = _mm256_loadu_ps(src + 2 * row + k), r3 = _mm256_loadu_ps(src + 3 * row + k);
        __m256 r4 = _mm256_loadu_ps(src + 4 * row + k), r5 = _mm256_loadu_ps(src + 5 * row + k);
        __m256 r6 = _mm256_loadu_ps(src + 6 * row + k), r7 = _mm256_loadu_ps(src + 7 * row + k);
        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
        __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
        __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        float *d = strip + k * NR;
        _mm256_storeu_ps(d + 0 * NR, _mm256_permute2f128_ps(u0, u4, 0x20));
        _mm256_storeu_ps(d + 1 * NR, _mm256_permute2f128_ps(u1, u5, 0x20));
        _mm256_storeu_ps(d + 2 * NR, _mm256_permute2f128_ps(u2, u6, 0x20));
        _mm256_storeu_ps(d + 3 * NR, _mm256_permute2f128_ps(u3, u7, 0x20));
        _mm256_storeu_ps(d + 4 * NR, _mm256_permute2f128_ps(u0, u4, 0x31));
        _mm256_storeu_ps(d + 5 * NR, _mm256_permute2f128_ps(u1, u5, 0x31));
        _mm256_storeu_ps(d + 6 * NR, _mm256_permute2f128_ps(u2, u6, 0x31));
        _mm256_storeu_ps(d + 7 * NR, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; k < kc; k++)
        for (idx i = 0; i < 8; i++) strip[k * NR + i] = src[i * row + k];
}

static void pack_strip(const GemmArgs *g, idx j0, idx nr, idx k0, idx kc, idx NR, float *strip) {
    if (g->q_k == 1) {
        idx jj = 0;
        for (; jj + 8 <= nr; jj += 8) pack_rows8(g->q + (j0 + jj) * g->q_row + k0, g->q_row, kc, NR, strip + jj);
        for (; jj < nr; jj++) {
            const float *src = g->q + (j0 + jj) * g->q_row + k0;
            for (idx k = 0; k < kc; k++) strip[k * NR + jj] = src[k];
        }
    } else if (g->q_row == 1) {
        for (idx k = 0; k < kc; k++) memcpy(strip + k * NR, g->q + j0 + (k0 + k) * g->q_k, nr * sizeof(float));
    } else {
        for (idx k = 0; k < kc; k++)
            for (idx jj = 0; jj < nr; jj++) strip[k * NR + jj] = g->q[(j0 + jj) * g->q_row + (k0 + k) * g->q_k];
    }
    if (nr < NR)
        for (idx k = 0; k < kc; k++) memset(strip + k * NR + nr, 0, (NR - nr) * sizeof(float));
}

/* ---- Micro-kernels: C[i0 .. i0 + MR, j0 .. j0 + nr] (+)= P[rows, k0 .. k0 + kc] strip, then the bias on the
   last block. ``last``: add the bias; ``first``: C is written, not added to. Written once as a macro over the
   vector type, and built for AVX-512 (4 x 64) and AVX2 + FMA (6 x 16). ---- */
#define MICRO(NAME, TARGET, V, VW, MR, NV, LOAD, SET1, FMA, ADD, STORE, ZERO)                               \
    TARGET static void NAME(const GemmArgs *g, const float *restrict p, idx p_row, const float *restrict strip,  \
                            idx kc, idx i0, idx j0, idx nr, int first, int last) {                              \
        enum { NR = VW * NV };                                                                              \
        V acc[MR][NV];                                                                                      \
        for (int i = 0; i < MR; i++)                                                                        \
            for (int v = 0; v < NV; v++) acc[i][v] = ZERO();                                                \
        for (idx k = 0; k < kc; k++) {                                                                      \
            V b[NV];                                                                                        \
            for (int v = 0; v < NV; v++) b[v] = LOAD(strip + k * NR + v * VW);                              \
            for (int i = 0; i < MR; i++) {                                                                  \
                V a = SET1(p[i * p_row + k]);                                                               \
                for (int v = 0; v < NV; v++) acc[i][v] = FMA(a, b[v], acc[i][v]);                           \
            }                                                                                               \
        }                                                                                                   \
        const float *br = last ? g->bias_row : NULL, *bc = last ? g->bias_col : NULL;                       \
        for (int i = 0; i < MR && i0 + i < g->m; i++) {                                                     \
            float *c = g->c + (i0 + i) * g->c_row + j0;                                                     \
            if (nr == NR) {                                                                                 \
                for (int v = 0; v < NV; v++) {                                                              \
                    V r = first ? acc[i][v] : ADD(LOAD(c + v * VW), acc[i][v]);                             \
                    if (br) r = ADD(r, SET1(br[i0 + i]));                                                   \
                    if (bc) r = ADD(r, LOAD(bc + j0 + v * VW));                                             \
                    STORE(c + v * VW, r);                                                                   \
                }                                                                                           \
            } else {                                                                                        \
                float row[NR] __attribute__((aligned(64)));                                                 \
                for (int v = 0; v < NV; v++) STORE(row + v * VW, acc[i][v]);                                \
                for (idx j = 0; j < nr; j++) {                                                              \
                    float r = first ? row[j] : c[j] + row[j];                                               \
                    if (br) r += br[i0 + i];                                                                \
                    if (bc) r += bc[j0 + j];                                                                \
                    c[j] = r;                                                                               \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
    }

#define Z512() _mm512_setzero_ps()
#define Z256() _mm256_setzero_ps()
MICRO(micro_avx512, __attribute__((target("avx512f"))), __m512, 16, 4, 4, _mm512_loadu_ps, _mm512_set1_ps,
      _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, Z512)
MICRO(micro_avx2, __attribute__((target("avx2,fma"))), __m256, 8, 6, 2, _mm256_loadu_ps, _mm256_set1_ps,
      _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, Z256)

typedef void (*MicroFn)(const GemmArgs *, const float *, idx, const float *, idx, idx, idx, idx, int, int);

typedef struct {
    const char *name;
    MicroFn micro;
    idx mr, nr;
} Isa;

static const Isa ISAS[] = {{"avx512f", micro_avx512, 4, 64}, {"avx2", micro_avx2, 6, 16}};
static const Isa *isa_now; /* NULL until first asked */
static int isa_forced;

static const Isa *best_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return &ISAS[0];
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &ISAS[1];
    return NULL;
}

static const Isa *isa(void) {
    if (!isa_forced && isa_now == NULL) isa_now = best_isa();
    return isa_now;
}

const char *gemm_isa(void) { return isa() ? isa()->name : NULL; }

int gemm_use_isa(const char *name) {
    const Isa *best = best_isa();
    if (strcmp(name, "best") == 0) {
        isa_now = best, isa_forced = 0;
        return 0;
    }
    if (best == NULL) return -1;
    for (const Isa *i = best; i < ISAS + sizeof ISAS / sizeof ISAS[0]; i++) /* this CPU runs ISAs after its best */
        if (strcmp(name, i->name) == 0) {
            isa_now = i, isa_forced = 1;
            return 0;
        }
    return -1;
}

/* ---- One thread's part: strips [s0, s1) of Q, rows [r0, r1) of P. ---- */
typedef struct {
    const GemmArgs *g;
    const Isa *isa;
    float *scratch;
    idx strips, per_part; /* strips of Q; floats of scratch per part */
} Job;

static void split(idx count, int part, int parts, idx unit, idx *lo, idx *hi) {
    idx units = (count + unit - 1) / unit;
    *lo = min_idx(count, unit * (units * part / parts));
    *hi = part == parts - 1 ? count : min_idx(count, unit * (units * (part + 1) / parts));
}

static void run_part(const Job *job, int part, int parts) {
    const GemmArgs *g = job->g;
    const Isa *I = job->isa;
    idx s0 = 0, s1 = job->strips, r0 = 0, r1 = g->m;
    if (job->strips >= parts)
        split(job->strips, part, parts, 1, &s0, &s1);
    else
        split(g->m, part, parts, I->mr, &r0, &r1);
    if (s0 >= s1 || r0 >= r1) return;
    float *strips = job->scratch + part * job->per_part;
    float *tail = strips + (s1 - s0) * KC * I->nr; /* the last rows of P when fewer than MR: MR x KC */
    for (idx k0 = 0; k0 < g->k; k0 += KC) {
        idx kc = min_idx(KC, g->k - k0);
        for (idx s = s0; s < s1; s++)
            pack_strip(g, s * I->nr, min_idx(I->nr, g->n - s * I->nr), k0, kc, I->nr, strips + (s - s0) * kc * I->nr);
        idx full = r0 + (r1 - r0) / I->mr * I->mr;
        if (full < r1) {
            for (idx i = 0; i < I->mr; i++)
                if (full + i < r1)
                    memcpy(tail + i * kc, g->p + (full + i) * g->p_row + k0, kc * sizeof(float));
                else
                    memset(tail + i * kc, 0, kc * sizeof(float));
        }
        int first = k0 == 0, last = k0 + kc >= g->k;
        for (idx s = s0; s < s1; s++) {
            const float *strip = strips + (s - s0) * kc * I->nr;
            idx j0 = s * I->nr, nr = min_idx(I->nr, g->n - j0);
            for (idx i = r0; i < full; i += I->mr)
                I->micro(g, g->p + i * g->p_row + k0, g->p_row, strip, kc, i, j0, nr, first, last);
            if (full < r1) I->micro(g, tail, kc, strip, kc, full, j0, nr, first, last);
        }
    }
}

/* Floats of scratch for one part: its strips and the tail of P, rounded up to 64 bytes. */
static idx floats_per_part(const Isa *I, idx strips, int parts) {
    idx most = strips >= parts ? (strips + parts - 1) / parts : strips;
    return ((most * I->nr + I->mr) * KC + 15) / 16 * 16;
}

int64_t gemm_scratch_bytes(const GemmArgs *g, int parts) {
    const Isa *I = isa();
    if (I == NULL) return 0;
    return (int64_t)(floats_per_part(I, (g->n + I->nr - 1) / I->nr, parts) * parts * sizeof(float));
}

/* ---- The pool: helper threads that run parts 1 .. parts - 1 of one job at a time. ---- */
enum { MAX_HELPERS = 63 };
static const double SPIN_SECONDS = 1e-3;

static struct {
    pthread_mutex_t busy; /* held by the call whose job the helpers run */
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    atomic_ullong posted;   /* job number */
    atomic_int remaining;   /* helpers that have not finished the job (all answer, even those without a part) */
    atomic_int sleepers;
    const Job *job;
    unsigned long long base; /* the job number when the helpers were started */
    int parts, helpers;
    int at_fork; /* the fork handler is registered */
} pool = {.busy = PTHREAD_MUTEX_INITIALIZER, .sleep_lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* One turn of a wait loop. Every 16th turn gives the core away: a thread woken on the core where another
   spins would otherwise wait for the scheduler's next tick (1 ms, measured). */
static void relax(int n) {
    if (n % 16 == 15)
        sched_yield();
    else
        _mm_pause();
}

static void *helper(void *arg) {
    int me = (int)(intptr_t)arg;
    unsigned long long seen = pool.base; /* not posted now: a job may have been posted since the start */
    for (;;) {
        double until = seconds() + SPIN_SECONDS;
        for (int n = 0; atomic_load(&pool.posted) == seen; n++) {
            relax(n);
            if ((n & 255) == 0 && seconds() > until) {
                pthread_mutex_lock(&pool.sleep_lock);
                atomic_fetch_add(&pool.sleepers, 1);
                while (atomic_load(&pool.posted) == seen) pthread_cond_wait(&pool.wake, &pool.sleep_lock);
                atomic_fetch_sub(&pool.sleepers, 1);
                pthread_mutex_unlock(&pool.sleep_lock);
            }
        }
        seen = atomic_load(&pool.posted);
        if (me < pool.parts) run_part(pool.job, me, pool.parts);
        atomic_fetch_sub(&pool.remaining, 1); /* every helper answers, so none lags into the next job */
    }
    return NULL;
}

/* In a forked child the helpers are gone: start afresh (the child's first parallel call starts its own). */
static void reset_after_fork(void) {
    pthread_mutex_init(&pool.busy, NULL);
    pthread_mutex_init(&pool.sleep_lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    atomic_store(&pool.remaining, 0);
    atomic_store(&pool.sleepers, 0);
    pool.helpers = 0;
}

/* Start helpers up to ``wanted``; returns how many there are. Called with pool.busy held. */
static int start_helpers(int wanted) {
    if (!pool.at_fork) {
        pool.at_fork = 1;
        pthread_atfork(NULL, NULL, reset_after_fork);
    }
    pool.base = atomic_load(&pool.posted);
    while (pool.helpers < wanted && pool.helpers < MAX_HELPERS) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, helper, (void *)(intptr_t)(pool.helpers + 1));
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool.helpers++;
    }
    return pool.helpers;
}

void gemm_f32(const GemmArgs *g, int parts, float *scratch) {
    const Isa *I = isa();
    idx strips = (g->n + I->nr - 1) / I->nr;
    Job job = {g, I, scratch, strips, floats_per_part(I, strips, parts)};
    if (g->m == 0 || g->n == 0) return;
    if (g->k == 0) { /* no products: C is the bias, or zeros */
        for (idx i = 0; i < g->m; i++)
            for (idx j = 0; j < g->n; j++)
                g->c[i * g->c_row + j] = (g->bias_row ? g->bias_row[i] : 0.0f) + (g->bias_col ? g->bias_col[j] : 0.0f);
        return;
    }
    if (parts > 1 && pthread_mutex_trylock(&pool.busy) == 0) {
        if (start_helpers(parts - 1) >= parts - 1) {
            pool.job = &job;
            pool.parts = parts;
            atomic_store(&pool.remaining, pool.helpers);
            atomic_fetch_add(&pool.posted, 1);
            if (atomic_load(&pool.sleepers) > 0) {
                pthread_mutex_lock(&pool.sleep_lock);
                pthread_cond_broadcast(&pool.wake);
                pthread_mutex_unlock(&pool.sleep_lock);
            }
            run_part(&job, 0, parts);
            for (int n = 0; atomic_load(&pool.remaining) > 0; n++) relax(n);
            pthread_mutex_unlock(&pool.busy);
            return;
        }
        pthread_mutex_unlock(&pool.busy); /* a helper could not start */
    }
    for (int part = 0; part < parts; part++) run_part(&job, part, parts); /* the same sums, one thread */
}
#endif
