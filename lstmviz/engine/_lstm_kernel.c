/*
 * Optional compiled kernel for lstmviz.engine.cell.run_lstm: the whole T-step recurrence
 * in one call, without the Python interpreter between the steps.
 *
 * Per step t (time-major buffers, internal gate blocks i, f, o, g):
 *
 *     pre[t] += h_tm1 @ U            one BLAS sgemv (batch 1) / sgemm (batch > 1), beta = 1
 *     act[t]  = sigma(pre[t][:, :3U]), tanh(pre[t][:, 3U:])
 *     c[t]    = f * c_tm1 + i * g
 *     h[t]    = o * tanh(c[t])
 *
 * The recurrent product goes through a BLAS sgemm/sgemv whose address the Python side
 * hands in (NumPy's own OpenBLAS, or SciPy's cython_blas), in the Fortran calling
 * convention with 32-bit (LP64) or 64-bit (ILP64) integers.  This file needs only
 * Python.h: no NumPy headers, no BLAS headers, no BLAS to link against.
 *
 * The NumPy loop in cell.py stays the reference; tests/engine/test_cell.py checks that
 * both agree to 1e-6.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#if defined(__GNUC__) && defined(__x86_64__) && !defined(LSTMVIZ_NO_PACKED)
#include <immintrin.h>
#include <stdatomic.h>
#include <time.h>
#define LSTMVIZ_PACKED 1
#if !defined(_WIN32) && !defined(LSTMVIZ_NO_THREADS)
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#define LSTMVIZ_THREADS 1
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif
#endif

typedef void (*sgemm32_fn)(const char *, const char *, const int32_t *, const int32_t *,
                           const int32_t *, const float *, const float *, const int32_t *,
                           const float *, const int32_t *, const float *, float *,
                           const int32_t *);
typedef void (*sgemm64_fn)(const char *, const char *, const int64_t *, const int64_t *,
                           const int64_t *, const float *, const float *, const int64_t *,
                           const float *, const int64_t *, const float *, float *,
                           const int64_t *);
typedef void (*sgemv32_fn)(const char *, const int32_t *, const int32_t *, const float *,
                           const float *, const int32_t *, const float *, const int32_t *,
                           const float *, float *, const int32_t *);
typedef void (*sgemv64_fn)(const char *, const int64_t *, const int64_t *, const float *,
                           const float *, const int64_t *, const float *, const int64_t *,
                           const float *, float *, const int64_t *);

/* Activation codes; must match _ACT_CODES in lstmviz/engine/_accel.py. */
enum {
    ACT_LINEAR = 0,
    ACT_SIGMOID = 1,
    ACT_TANH = 2,
    ACT_HARD_SIGMOID = 3,        /* Keras 3: relu6(x + 3) / 6 */
    ACT_HARD_SIGMOID_KERAS2 = 4, /* Keras 2: clip(0.2 x + 0.5, 0, 1) */
    ACT_RELU = 5,
    ACT_RELU6 = 6,
    ACT_SOFTSIGN = 7,
    ACT_COUNT = 8
};

#if defined(_MSC_VER) && !defined(__clang__)
#define restrict __restrict /* MSVC's C mode spells C99's restrict this way */
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(LSTMVIZ_NO_CLONES)
/* One build runs everywhere; the loader picks the AVX2 clone where the CPU has it.  (The
 * ThreadSanitizer build turns the clones off: their resolvers run before its runtime.) */
#define LSTMVIZ_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LSTMVIZ_CLONES
#endif

/* float32 tanh, branch-free so that the loops below vectorise; absolute error < 1.5e-7
 * (NumPy's own float32 tanh: 6e-8).  Small |x|: the rational minimax approximation Eigen
 * uses for its vectorised tanh (relative error < 3e-7 there); larger |x|:
 * 1 - 2 / (exp(2|x|) + 1) with a Cephes-style expf (range reduction by 2^n, degree-6
 * polynomial, ~1 ulp). */
static inline float fast_tanhf(float x)
{
    const float ax0 = fabsf(x);
    const float ax = ax0 > 9.5f ? 9.5f : ax0; /* tanh(9.5) rounds to 1.0f */
    /* e = exp(2 ax), 2 ax in [0, 19]: n = round(2 ax / ln 2) by the 1.5 * 2^23 trick (no
     * float -> int conversion), r = 2 ax - n ln 2 in [-0.35, 0.35], e = 2^n * exp(r). */
    const float v = 2.0f * ax;
    const float fr = v * 1.44269504088896341f + 12582912.0f;
    const float nf = fr - 12582912.0f;
    float r = v - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    uint32_t bits; /* unsigned: a NaN's bits shift out without undefined behaviour */
    memcpy(&bits, &fr, sizeof bits);
    bits = (bits - 0x4B400000u + 127u) << 23; /* the float 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    const float big = 1.0f - 2.0f / (y * scale + 1.0f);
    /* |x| <= 0.625: odd rational function */
    const float xs = ax > 0.625f ? 0.625f : ax;
    const float x2 = xs * xs;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = x2 * p + -8.60467152213735e-11f;
    p = x2 * p + 5.12229709037114e-08f;
    p = x2 * p + 1.48572235717979e-05f;
    p = x2 * p + 6.37261928875436e-04f;
    p = x2 * p + 4.89352455891786e-03f;
    p = xs * p;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = x2 * q + 2.26843463243900e-03f;
    q = x2 * q + 4.89352518554385e-03f;
    /* NaN: every comparison above is false, so the small branch carries the NaN through */
    const float t = ax > 0.625f ? big : p / q;
    return copysignf(t, x);
}

/* out[j] = act(x[j]) for j < n; each case is one vectorisable loop.  The formulas follow
 * lstmviz/engine/activations.py operation by operation. */
LSTMVIZ_CLONES
static void apply_act(int code, const float *restrict x, float *restrict out, Py_ssize_t n)
{
    Py_ssize_t j;
    switch (code) {
    case ACT_SIGMOID: /* 0.5 * tanh(0.5 x) + 0.5 */
        for (j = 0; j < n; j++) out[j] = fast_tanhf(x[j] * 0.5f) * 0.5f + 0.5f;
        break;
    case ACT_TANH:
        for (j = 0; j < n; j++) out[j] = fast_tanhf(x[j]);
        break;
    case ACT_HARD_SIGMOID:
        for (j = 0; j < n; j++) {
            float v = x[j] + 3.0f;
            v = v < 0.0f ? 0.0f : v;
            v = v > 6.0f ? 6.0f : v;
            out[j] = v / 6.0f;
        }
        break;
    case ACT_HARD_SIGMOID_KERAS2:
        for (j = 0; j < n; j++) {
            float v = x[j] * 0.2f + 0.5f;
            v = v < 0.0f ? 0.0f : v;
            out[j] = v > 1.0f ? 1.0f : v;
        }
        break;
    case ACT_RELU:
        for (j = 0; j < n; j++) out[j] = x[j] > 0.0f ? x[j] : 0.0f;
        break;
    case ACT_RELU6:
        for (j = 0; j < n; j++) {
            float v = x[j] < 0.0f ? 0.0f : x[j];
            out[j] = v > 6.0f ? 6.0f : v;
        }
        break;
    case ACT_SOFTSIGN:
        for (j = 0; j < n; j++) out[j] = x[j] / (1.0f + (x[j] < 0.0f ? -x[j] : x[j]));
        break;
    default: /* ACT_LINEAR */
        if (out != x) memcpy(out, x, (size_t)n * sizeof(float));
        break;
    }
}

/* c = f * c_tm1 + i * g, then h = o * act(c), for one batch row of `units` values. */
LSTMVIZ_CLONES
static void cell_row(const float *restrict a, const float *restrict c_tm1, float *restrict c,
                     float *restrict h, Py_ssize_t units, int act)
{
    const float *i = a, *f = a + units, *o = a + 2 * units, *g = a + 3 * units;
    Py_ssize_t j;
    for (j = 0; j < units; j++) c[j] = f[j] * c_tm1[j] + i[j] * g[j];
    if (act == ACT_TANH) {
        for (j = 0; j < units; j++) h[j] = o[j] * fast_tanhf(c[j]);
    } else {
        apply_act(act, c, h, units);
        for (j = 0; j < units; j++) h[j] *= o[j];
    }
}

/* The common layer (sigmoid gates, tanh candidate and output) in one pass over a row:
 * a[j] = tanh(z[j] * s[j]) * s[j] + s0[j] with s = 0.5, s0 = 0.5 on the i, f, o blocks
 * (sigma(z) = 0.5 tanh(z / 2) + 0.5, as activations.py) and s = 1, s0 = 0 on g (exact: the
 * scalings by 1 and 0.5 do not round), then c and h. */
LSTMVIZ_CLONES
static void sigmoid_tanh_row(const float *restrict z, float *restrict a,
                             const float *restrict s, const float *restrict s0,
                             const float *restrict c_tm1, float *restrict c,
                             float *restrict h, Py_ssize_t units)
{
    const Py_ssize_t n = 4 * units;
    Py_ssize_t j;
    for (j = 0; j < n; j++) a[j] = fast_tanhf(z[j] * s[j]) * s[j] + s0[j];
    const float *i = a, *f = a + units, *o = a + 2 * units, *g = a + 3 * units;
    for (j = 0; j < units; j++) {
        const float cj = f[j] * c_tm1[j] + i[j] * g[j];
        c[j] = cj;
        h[j] = o[j] * fast_tanhf(cj);
    }
}

/* z[j] += b[j] for j < n */
LSTMVIZ_CLONES
static void add_into(float *restrict z, const float *restrict b, Py_ssize_t n)
{
    for (Py_ssize_t j = 0; j < n; j++) z[j] += b[j];
}

/* z (B, 4U) = zT (4U, B) transposed, + b (4U,) when b is not NULL: the x mode's product
 * comes out unit-major (see kernel_run); tiles of 16 units keep the 16 source lines in L1
 * while every batch row is written contiguously. */
LSTMVIZ_CLONES
static void untranspose(const float *restrict zT, float *restrict z, const float *restrict b,
                        Py_ssize_t B, Py_ssize_t U4)
{
    for (Py_ssize_t r0 = 0; r0 < U4; r0 += 16) {
        const Py_ssize_t rn = U4 - r0 < 16 ? U4 - r0 : 16;
        for (Py_ssize_t k = 0; k < B; k++) {
            float *restrict out = z + k * U4 + r0;
            const float *restrict in = zT + r0 * B + k;
            if (b != NULL)
                for (Py_ssize_t r = 0; r < rn; r++) out[r] = in[r * B] + b[r0 + r];
            else
                for (Py_ssize_t r = 0; r < rn; r++) out[r] = in[r * B];
        }
    }
}

/* ---------------------------------------------------------------- packed, threaded recurrence
 * When the CPU has AVX2 + FMA (x86-64, GCC or Clang), run_packed() runs the whole recurrence
 * with its own product instead of BLAS: per step, z (B, 4U) = [h_tm1, x_t] (B, U + F) @
 * [U; W] (U + F, 4U) + b, then the gate and state math.  The weights are packed once per call
 * into column panels, Wp[p][k][0:NR] (BLAS repacks them at every call: OpenBLAS's
 * sgemm_oncopy was ~12 % of a 256-unit, batch-32 trace), and multiplied in register tiles:
 * MR batch rows x NR columns, accumulated over k = 0..K-1 in order with FMA (h_tm1's K
 * first, then x_t's), then + b.  AVX-512: the row block's rows packed once per step, tiles of
 * 14 x 32 (28 zmm accumulators), K in blocks of 128 (see PTILE512); AVX2: 6 x 16 read in
 * place; rows left over run tiles of 8, 4, 2, 1 rows; batch 1 runs a matrix-vector product over
 * panels of 128 (AVX-512) or 64 (AVX2) columns, eight independent accumulators.  Every
 * output is the same chain of FMAs whatever the tile, the instruction set or the thread, so
 * the trace does not depend on how the work was split.
 *
 * Threads.  The units are cut into chunks (chunk_units units each: 4 x chunk_units columns
 * of z, i.e. the i, f, o and g columns of those units) and, where there are fewer unit chunks
 * than threads (few units, many batch rows), the batch rows into blocks of chunk_rows; a
 * chunk of work is one unit chunk x one row block.  Thread k owns a contiguous range of
 * chunks, packs their weights (its slice of [U; W] then lives in its own cache) and, at
 * every step, computes z for its chunks and then their gates, c and h.  Step t + 1 needs all
 * of h[t]: one wait per step for the step's last chunk.  A thread that is done with its own
 * chunks takes the ones nobody has started yet (claimed with a compare-and-swap on the
 * owner's counter), so a thread that the OS keeps off its core (a busy machine, the app's GUI
 * thread) slows the trace down instead of stalling it.  The wait spins for a few
 * microseconds, then sleeps (futex on Linux, sched_yield elsewhere).  The calling thread
 * is worker 0; the others are started per call (pthreads); the GIL is released. */
#ifdef LSTMVIZ_PACKED
enum { ISA_NONE = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };

static int isa_choice = -1;

static void packed_isa_override(int isa) { isa_choice = isa; }

static int packed_isa(void)
{
    int isa = isa_choice;
    if (isa < 0) {
        const char *env = getenv("LSTMVIZ_PACKED"); /* "0": BLAS; "avx2": AVX2 even if 512 */
        __builtin_cpu_init();
        if (env != NULL && env[0] == '0')
            isa = ISA_NONE;
        else if (__builtin_cpu_supports("avx512f") && !(env != NULL && env[0] == 'a'))
            isa = ISA_AVX512;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            isa = ISA_AVX2;
        else
            isa = ISA_NONE;
        isa_choice = isa;
    }
    return isa;
}

/* columns per panel: tiles (batch > 1) and the matrix-vector product (batch 1) */
static Py_ssize_t panel_nr(int isa, Py_ssize_t B)
{
    if (B == 1) return isa == ISA_AVX512 ? 128 : 64;
    return isa == ISA_AVX512 ? 32 : 16;
}

/* AVX-512: the product with the tile's rows of [h_tm1, x_t] packed first (pack_rows): a[k MR + r],
 * one stream of broadcasts instead of MR rows 4 KB apart (which share an L1 set at 1024 units),
 * and up to 14 rows (28 accumulators) per tile.  K is run in blocks (KC) so that every tile of
 * the row block reads a block of weights from L1 after the first has brought it in; `carry`
 * continues the sums stored in z by the block before (the registers are stored and loaded
 * again, nothing is rounded differently).  The terms are added in the same order as the AVX2
 * tiles (k = 0 .. K - 1, h_tm1's then x_t's), so the sums are the same bit for bit.  At 1024
 * units x batch 32, one core: 134 GFLOP/s for 8-row tiles reading h in place -> 167 for these
 * (peak 180). */
/* K block of the packed tiles: 128 x 32 floats of weights (16 KB) stay in L1 for the row
 * block's tiles; the second tile prefetches the next block into L1 (PF_HINT), so the first
 * tile of the next block does not wait for L3 (12 % faster at 1024 units x batch 32 than
 * without either; blocks of 64 or 256, or prefetching into L2, measured the same) */
#define KC 128
#define PF_HINT _MM_HINT_T0

#define PTILE512(MR)                                                                         \
    static __attribute__((target("avx512f,fma"))) void ptile512_##MR(                        \
        const float *restrict a, Py_ssize_t K, const float *restrict wp,                     \
        const float *restrict b, float *restrict z, Py_ssize_t ldz, int carry,               \
        const float *restrict pf)                                                            \
    {                                                                                        \
        __m512 acc0[MR], acc1[MR];                                                           \
        _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                              \
            acc0[r] = carry ? _mm512_load_ps(z + r * ldz) : _mm512_setzero_ps();             \
            acc1[r] = carry ? _mm512_load_ps(z + r * ldz + 16) : _mm512_setzero_ps();        \
        }                                                                                    \
        for (Py_ssize_t k = 0; k < K; k++) {                                                 \
            const __m512 w0 = _mm512_load_ps(wp + k * 32);                                   \
            const __m512 w1 = _mm512_load_ps(wp + k * 32 + 16);                              \
            if (pf != NULL) {                                                                \
                _mm_prefetch((const char *)(pf + k * 32), PF_HINT);                          \
                _mm_prefetch((const char *)(pf + k * 32 + 16), PF_HINT);                     \
            }                                                                                \
            _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                          \
                const __m512 v = _mm512_set1_ps(a[k * MR + r]);                              \
                acc0[r] = _mm512_fmadd_ps(v, w0, acc0[r]);                                   \
                acc1[r] = _mm512_fmadd_ps(v, w1, acc1[r]);                                   \
            }                                                                                \
        }                                                                                    \
        const __m512 b0 = b ? _mm512_load_ps(b) : _mm512_setzero_ps();                       \
        const __m512 b1 = b ? _mm512_load_ps(b + 16) : _mm512_setzero_ps();                  \
        _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                              \
            _mm512_store_ps(z + r * ldz, b ? _mm512_add_ps(acc0[r], b0) : acc0[r]);          \
            _mm512_store_ps(z + r * ldz + 16, b ? _mm512_add_ps(acc1[r], b1) : acc1[r]);     \
        }                                                                                    \
    }
PTILE512(14)
PTILE512(8)
PTILE512(4)
PTILE512(2)
PTILE512(1)


/* the rows of a packed tile that starts `left` rows before the row block's end: 14 while
 * there are 14, then 8, 4, 2, 1 (14 + 14 + 4 at batch 32) */
static inline Py_ssize_t ptile_rows(Py_ssize_t left)
{
    return left >= 14 ? 14 : left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
}

/* ap = the nb rows of [h (row stride U), x (row stride ldx, F columns)], tile by tile
 * (ptile_rows): a tile of mr rows at row r0 is at ap + r0 K, element (r, k) at k mr + r */
static void pack_rows(const float *restrict h, Py_ssize_t U, const float *restrict x,
                      Py_ssize_t ldx, Py_ssize_t F, Py_ssize_t nb, float *restrict ap)
{
    const Py_ssize_t K = U + F;
    for (Py_ssize_t r0 = 0; r0 < nb;) {
        const Py_ssize_t mr = ptile_rows(nb - r0);
        float *dst = ap + r0 * K;
        for (Py_ssize_t r = 0; r < mr; r++) {
            const float *hr = h + (r0 + r) * U, *xr = x + (r0 + r) * ldx;
            for (Py_ssize_t k = 0; k < U; k++) dst[k * mr + r] = hr[k];
            for (Py_ssize_t k = 0; k < F; k++) dst[(U + k) * mr + r] = xr[k];
        }
        r0 += mr;
    }
}

#define TILE256(MR)                                                                          \
    static __attribute__((target("avx2,fma"))) void tile256_##MR(                            \
        const float *restrict a1, Py_ssize_t lda1, Py_ssize_t K1, const float *restrict a2,  \
        Py_ssize_t lda2, Py_ssize_t K2, const float *restrict wp, const float *restrict b,   \
        float *restrict z, Py_ssize_t ldz)                                                   \
    {                                                                                        \
        __m256 acc0[MR], acc1[MR];                                                           \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc0[r] = acc1[r] =            \
            _mm256_setzero_ps();                                                             \
        for (Py_ssize_t k = 0; k < K1; k++) {                                                \
            const __m256 w0 = _mm256_load_ps(wp + k * 16);                                   \
            const __m256 w1 = _mm256_load_ps(wp + k * 16 + 8);                               \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                           \
                const __m256 v = _mm256_broadcast_ss(a1 + r * lda1 + k);                     \
                acc0[r] = _mm256_fmadd_ps(v, w0, acc0[r]);                                   \
                acc1[r] = _mm256_fmadd_ps(v, w1, acc1[r]);                                   \
            }                                                                                \
        }                                                                                    \
        wp += K1 * 16;                                                                       \
        for (Py_ssize_t k = 0; k < K2; k++) {                                                \
            const __m256 w0 = _mm256_load_ps(wp + k * 16);                                   \
            const __m256 w1 = _mm256_load_ps(wp + k * 16 + 8);                               \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                           \
                const __m256 v = _mm256_broadcast_ss(a2 + r * lda2 + k);                     \
                acc0[r] = _mm256_fmadd_ps(v, w0, acc0[r]);                                   \
                acc1[r] = _mm256_fmadd_ps(v, w1, acc1[r]);                                   \
            }                                                                                \
        }                                                                                    \
        const __m256 b0 = b ? _mm256_load_ps(b) : _mm256_setzero_ps();                       \
        const __m256 b1 = b ? _mm256_load_ps(b + 8) : _mm256_setzero_ps();                   \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                               \
            _mm256_store_ps(z + r * ldz, b ? _mm256_add_ps(acc0[r], b0) : acc0[r]);          \
            _mm256_store_ps(z + r * ldz + 8, b ? _mm256_add_ps(acc1[r], b1) : acc1[r]);      \
        }                                                                                    \
    }
TILE256(6)
TILE256(4)
TILE256(2)
TILE256(1)

/* batch 1: z (NR) = [a1, a2] @ panel (+ b), eight accumulators of 16 (AVX-512) or 8 (AVX2)
 * columns: eight independent FMA chains keep both FMA pipes busy, where a 1-row tile's two
 * would wait on the FMA latency.  a1's K runs as two halves side by side (16 chains, two
 * streams of weights: 12-20 % faster at 1024 units, where the weights come from L3, the
 * same at 256-512), then a2's (the input) is added: (first half + second half) + x terms. */
#define MATVEC(NAME, TARGET, VEC, W, LOAD, SET1, FMA, ADD, STORE, ZERO)                       \
    static __attribute__((target(TARGET))) void NAME(                                        \
        const float *restrict a1, Py_ssize_t K1, const float *restrict a2, Py_ssize_t K2,     \
        const float *restrict wp, const float *restrict b, float *restrict z)                \
    {                                                                                        \
        VEC acc[8], acd[8]; /* the two halves of h_tm1's K: two streams of weights */      \
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) acc[i] = acd[i] = ZERO();        \
        const Py_ssize_t KH = K1 / 2;                                                        \
        for (Py_ssize_t k = 0; k < KH; k++) {                                                \
            const VEC v = SET1(a1[k]), u = SET1(a1[k + KH]);                                 \
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {                            \
                acc[i] = FMA(v, LOAD(wp + k * 8 * W + i * W), acc[i]);                       \
                acd[i] = FMA(u, LOAD(wp + (k + KH) * 8 * W + i * W), acd[i]);                \
            }                                                                                \
        }                                                                                    \
        for (Py_ssize_t k = 2 * KH; k < K1; k++) {                                           \
            const VEC v = SET1(a1[k]);                                                       \
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)                              \
                acd[i] = FMA(v, LOAD(wp + k * 8 * W + i * W), acd[i]);                       \
        }                                                                                    \
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) acc[i] = ADD(acc[i], acd[i]);    \
        wp += K1 * 8 * W;                                                                    \
        for (Py_ssize_t k = 0; k < K2; k++) {                                                \
            const VEC v = SET1(a2[k]);                                                       \
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)                              \
                acc[i] = FMA(v, LOAD(wp + k * 8 * W + i * W), acc[i]);                       \
        }                                                                                    \
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)                                  \
            STORE(z + i * W, b ? ADD(acc[i], LOAD(b + i * W)) : acc[i]);                     \
    }
MATVEC(matvec512, "avx512f,fma", __m512, 16, _mm512_load_ps, _mm512_set1_ps, _mm512_fmadd_ps,
       _mm512_add_ps, _mm512_store_ps, _mm512_setzero_ps)
MATVEC(matvec256, "avx2,fma", __m256, 8, _mm256_load_ps, _mm256_set1_ps, _mm256_fmadd_ps,
       _mm256_add_ps, _mm256_store_ps, _mm256_setzero_ps)

/* The gates, c and h of one batch row for the nu units of a chunk.  z: the chunk's columns
 * (i, f, o, g blocks of nu); pre/act: the row's (4U,) buffers at the chunk's first unit
 * (block k at + k U); c_tm1, c, h: (nu,) at the chunk's first unit.  The operations are the
 * ones of sigmoid_tanh_row / apply_act + cell_row, block by block, so the result does not
 * depend on the chunking.  pre == NULL: not written (streamed from z by the caller); act's
 * blocks are `ast` floats apart (U in the trace, nu in a staging buffer). */
LSTMVIZ_CLONES
static void chunk_gates(const float *restrict z, Py_ssize_t nu, float *restrict pre,
                        float *restrict act, Py_ssize_t U, Py_ssize_t ast,
                        const float *restrict c_tm1, float *restrict c, float *restrict h,
                        int ract, int cact)
{
    const int fused = ract == ACT_SIGMOID && cact == ACT_TANH;
    for (int k = 0; k < 4; k++) {
        const float *restrict zk = z + k * nu;
        float *restrict ak = act + k * ast;
        if (pre != NULL)
            for (Py_ssize_t j = 0; j < nu; j++) pre[k * U + j] = zk[j];
        if (fused && k < 3) /* sigma(z) = 0.5 tanh(z / 2) + 0.5, as activations.py */
            for (Py_ssize_t j = 0; j < nu; j++) ak[j] = fast_tanhf(zk[j] * 0.5f) * 0.5f + 0.5f;
        else if (fused)
            for (Py_ssize_t j = 0; j < nu; j++) ak[j] = fast_tanhf(zk[j]);
        else
            apply_act(k < 3 ? ract : cact, zk, ak, nu);
    }
    const float *i = act, *f = act + ast, *o = act + 2 * ast, *g = act + 3 * ast;
    for (Py_ssize_t j = 0; j < nu; j++) c[j] = f[j] * c_tm1[j] + i[j] * g[j];
    if (cact == ACT_TANH) {
        for (Py_ssize_t j = 0; j < nu; j++) h[j] = o[j] * fast_tanhf(c[j]);
    } else {
        apply_act(cact, c, h, nu);
        for (Py_ssize_t j = 0; j < nu; j++) h[j] *= o[j];
    }
}

#ifdef LSTMVIZ_PACKED
/* dst[k U + j] = src[k nu + j] for the 4 blocks, j < nu (a multiple of 16), with streaming
 * stores: pre and act are written once and not read again by the recurrence, so their lines
 * need not be read into the cache first (dst 64-byte aligned, as are U's blocks) */
static __attribute__((target("avx512f"))) void stream_blocks(float *restrict dst,
                                                             const float *restrict src,
                                                             Py_ssize_t nu, Py_ssize_t U)
{
    for (int k = 0; k < 4; k++)
        for (Py_ssize_t j = 0; j < nu; j += 16)
            _mm512_stream_ps(dst + k * U + j, _mm512_loadu_ps(src + k * nu + j));
}
#endif

/* Wp of one chunk: its columns (i, f, o, g of units u0 .. u0 + nu - 1, taken from the rows
 * of ukw (K, 4U)) in panels of NR, K x NR each, zero-padded; bp: its bias in that order */
static void pack_chunk(const float *restrict ukw, const float *restrict bias, Py_ssize_t K,
                       Py_ssize_t U, Py_ssize_t u0, Py_ssize_t nu, Py_ssize_t NR,
                       Py_ssize_t ncp, float *restrict wp, float *restrict bp)
{
    Py_ssize_t src[128]; /* the panel's source columns in ukw; -1: padding */
    for (Py_ssize_t p0 = 0; p0 < ncp; p0 += NR) {
        for (Py_ssize_t jj = 0; jj < NR; jj++) {
            const Py_ssize_t col = p0 + jj; /* gate col / nu, unit u0 + col % nu */
            src[jj] = col < 4 * nu ? (col / nu) * U + u0 + col % nu : -1;
        }
        float *panel = wp + p0 * K;
        for (Py_ssize_t k = 0; k < K; k++) {
            const float *row = ukw + k * 4 * U;
            float *dst = panel + k * NR;
            for (Py_ssize_t jj = 0; jj < NR; jj++) dst[jj] = src[jj] >= 0 ? row[src[jj]] : 0.0f;
        }
        if (bp != NULL)
            for (Py_ssize_t jj = 0; jj < NR; jj++)
                bp[p0 + jj] = src[jj] >= 0 ? bias[src[jj]] : 0.0f;
    }
}

#define MAX_THREADS 64

typedef struct {
    _Alignas(64) atomic_llong taken; /* chunks of this thread's range claimed so far */
} counter_t;

typedef struct {
    /* the problem */
    float *pre, *act, *cs, *hs;
    const float *h0, *c0, *x;
    const unsigned char *mask;
    Py_ssize_t T, B, U, F, lo, hi;
    int backwards, ract, cact, isa;
    /* the chunks: unit chunk uc (chunk_units units) x row block rb (chunk_rows batch rows),
     * chunk index ci = uc * nrb + rb */
    Py_ssize_t chunk_units, chunk_rows, nuc, nrb, nchunks, NR, ncp_max;
    const float *wp, *bp; /* each unit chunk's packed weights / bias (see pack_layout) */
    float *scratch;       /* z of one chunk, (chunk_rows, ncp_max) per thread, and a row
                           * more: act of one row before it is streamed out */
    float *apack;         /* AVX-512 tiles: [h_tm1, x_t] of a row block packed (pack_rows),
                           * (chunk_rows, K) per thread */
    Py_ssize_t apack_key[MAX_THREADS]; /* step * nrb + row block packed there now, or -1 */
    int nthreads;
    Py_ssize_t own_begin[MAX_THREADS + 1]; /* thread k owns chunks own_begin[k] .. [k+1] - 1 */
    counter_t claimed[MAX_THREADS];
    /* steps */
    _Alignas(64) atomic_llong done; /* chunks finished, over all steps */
    _Alignas(64) atomic_int gen;    /* steps finished */
    atomic_int sleepers;
} job_t;

static inline void cpu_relax(void) { _mm_pause(); }

static void run_chunk(job_t *J, int th, Py_ssize_t ci, Py_ssize_t s, float *restrict zs)
{
    const Py_ssize_t B = J->B, U = J->U, F = J->F, T = J->T, K = U + F;
    const Py_ssize_t t = J->backwards ? J->hi - 1 - s : J->lo + s;
    const Py_ssize_t tp = J->backwards ? t + 1 : t - 1; /* the step before, in input order */
    const float *h_tm1 = s == 0 ? J->h0 : J->hs + tp * B * U;
    const float *c_tm1 = s == 0 ? J->c0 : J->cs + tp * B * U;
    const Py_ssize_t uc = ci / J->nrb, rb = ci % J->nrb;
    const Py_ssize_t u0 = uc * J->chunk_units;
    const Py_ssize_t nu = U - u0 < J->chunk_units ? U - u0 : J->chunk_units;
    const Py_ssize_t b0 = rb * J->chunk_rows, nb = B - b0 < J->chunk_rows ? B - b0 : J->chunk_rows;
    const Py_ssize_t NR = J->NR, ncp = ((4 * nu + NR - 1) / NR) * NR, ldz = J->ncp_max;
    const float *wp = J->wp + uc * K * J->ncp_max;
    const float *bp = J->bp != NULL ? J->bp + uc * J->ncp_max : NULL;
    const Py_ssize_t ldx = T * F;
    const float *xt = J->x + b0 * ldx + t * F; /* row r of the block: + r T F */
    const float *hb = h_tm1 + b0 * U;
    const int avx512 = J->isa == ISA_AVX512;
    for (Py_ssize_t p0 = 0; p0 < ncp; p0 += NR) {
        const float *panel = wp + p0 * K, *bpp = bp ? bp + p0 : NULL;
        if (B == 1) {
            if (avx512) matvec512(hb, U, xt, F, panel, bpp, zs + p0);
            else matvec256(hb, U, xt, F, panel, bpp, zs + p0);
            continue;
        }
        if (avx512) {
            float *ap = J->apack + (Py_ssize_t)th * J->chunk_rows * K;
            const Py_ssize_t key = s * J->nrb + rb;
            if (J->apack_key[th] != key) { /* this thread's first chunk of the row block */
                pack_rows(hb, U, xt, ldx, F, nb, ap);
                J->apack_key[th] = key;
            }
            for (Py_ssize_t k0 = 0; k0 < K; k0 += KC) {
                const Py_ssize_t kn = K - k0 < KC ? K - k0 : KC;
                const float *bk = k0 + kn == K ? bpp : NULL, *wk = panel + k0 * 32;
                const int carry = k0 > 0;
                for (Py_ssize_t r0 = 0; r0 < nb;) {
                    const Py_ssize_t mr = ptile_rows(nb - r0);
                    const float *a = ap + r0 * K + k0 * mr;
                    float *zr = zs + r0 * ldz + p0;
                    /* the second tile brings the next block of weights in (the next panel's
                     * first after the last block: they follow each other in memory) */
                    const float *pf = r0 > 0 && r0 == ptile_rows(nb) ? wk + kn * 32 : NULL;
                    if (mr == 14) ptile512_14(a, kn, wk, bk, zr, ldz, carry, pf);
                    else if (mr == 8) ptile512_8(a, kn, wk, bk, zr, ldz, carry, pf);
                    else if (mr == 4) ptile512_4(a, kn, wk, bk, zr, ldz, carry, pf);
                    else if (mr == 2) ptile512_2(a, kn, wk, bk, zr, ldz, carry, pf);
                    else ptile512_1(a, kn, wk, bk, zr, ldz, carry, pf);
                    r0 += mr;
                }
            }
            continue;
        }
        const Py_ssize_t MR = 6; /* AVX2: rows of [h_tm1, x_t] read in place, 6 per tile */
        Py_ssize_t r0 = 0;
        for (; r0 + MR <= nb; r0 += MR)
            tile256_6(hb + r0 * U, U, U, xt + r0 * ldx, ldx, F, panel, bpp, zs + r0 * ldz + p0,
                      ldz);
        while (r0 < nb) { /* the rows left over, in tiles of 4, 2, 1 */
            const Py_ssize_t left = nb - r0, mr = left >= 4 ? 4 : left >= 2 ? 2 : 1;
            const float *a1 = hb + r0 * U, *a2 = xt + r0 * ldx;
            float *zr = zs + r0 * ldz + p0;
            if (mr == 4) tile256_4(a1, U, U, a2, ldx, F, panel, bpp, zr, ldz);
            else if (mr == 2) tile256_2(a1, U, U, a2, ldx, F, panel, bpp, zr, ldz);
            else tile256_1(a1, U, U, a2, ldx, F, panel, bpp, zr, ldz);
            r0 += mr;
        }
    }
    const Py_ssize_t U4 = 4 * U;
    /* pre and act by streaming stores where every block of the chunk's rows starts on a
     * cache line (the pool's buffers are 64-byte aligned) */
    const int stream = avx512 && nu % 16 == 0 && U % 16 == 0 &&
                       (uintptr_t)(J->pre + u0) % 64 == 0 && (uintptr_t)(J->act + u0) % 64 == 0;
    float *stage = zs + J->chunk_rows * ldz; /* act of one row, blocks nu apart */
    for (Py_ssize_t b = b0; b < b0 + nb; b++) {
        const Py_ssize_t row = (t * B + b);
        float *c = J->cs + row * U + u0, *h = J->hs + row * U + u0;
        const float *z = zs + (b - b0) * ldz;
        if (stream) {
            chunk_gates(z, nu, NULL, stage, U, nu, c_tm1 + b * U + u0, c, h, J->ract, J->cact);
            stream_blocks(J->pre + row * U4 + u0, z, nu, U);
            stream_blocks(J->act + row * U4 + u0, stage, nu, U);
        } else {
            chunk_gates(z, nu, J->pre + row * U4 + u0, J->act + row * U4 + u0, U, U,
                        c_tm1 + b * U + u0, c, h, J->ract, J->cact);
        }
        if (J->mask != NULL && !J->mask[b * T + t]) { /* masked step: carry the state over */
            memcpy(c, c_tm1 + b * U + u0, (size_t)nu * sizeof(float));
            memcpy(h, h_tm1 + b * U + u0, (size_t)nu * sizeof(float));
        }
    }
    if (stream) _mm_sfence(); /* the streamed lines are written before the chunk counts done */
}

/* claim the next unstarted chunk of thread k's range at step s: its index, or -1 */
static Py_ssize_t claim(job_t *J, int k, Py_ssize_t s)
{
    const long long n = J->own_begin[k + 1] - J->own_begin[k];
    if (n == 0) return -1;
    long long v = atomic_load_explicit(&J->claimed[k].taken, memory_order_relaxed);
    for (;;) {
        if (v >= (s + 1) * n || v < s * n) return -1; /* none left (or not this step's) */
        if (atomic_compare_exchange_weak_explicit(&J->claimed[k].taken, &v, v + 1,
                                                  memory_order_acq_rel, memory_order_relaxed))
            return J->own_begin[k] + (Py_ssize_t)(v - s * n);
    }
}

#if defined(LSTMVIZ_THREADS) && defined(__linux__)
static void gen_sleep(atomic_int *gen, int seen)
{
    syscall(SYS_futex, (int *)gen, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}
static void gen_wake(atomic_int *gen) { syscall(SYS_futex, (int *)gen, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0); }
#else
static void gen_sleep(atomic_int *gen, int seen)
{
    (void)gen;
    (void)seen;
    sched_yield();
}
static void gen_wake(atomic_int *gen) { (void)gen; }
#endif

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

/* wait until more than `s` steps are finished: spin ~SPIN_US, then sleep */
#define SPIN_US 50.0
static void wait_step(job_t *J, Py_ssize_t s)
{
    const int want = (int)(s + 1);
    if (atomic_load_explicit(&J->gen, memory_order_acquire) >= want) return;
    const double until = now_us() + SPIN_US;
    for (int n = 1;; n++) {
        for (int p = 0; p < 16; p++) {
            if (atomic_load_explicit(&J->gen, memory_order_acquire) >= want) return;
            cpu_relax();
        }
        if (n % 8 == 0 && now_us() > until) break;
    }
    atomic_fetch_add(&J->sleepers, 1);
    for (;;) {
        const int g = atomic_load(&J->gen);
        if (g >= want) break;
        gen_sleep(&J->gen, g);
    }
    atomic_fetch_sub(&J->sleepers, 1);
}

typedef struct {
    job_t *job;
    int k;
} worker_arg_t;

static void *worker(void *arg)
{
    job_t *J = ((worker_arg_t *)arg)->job;
    const int k = ((worker_arg_t *)arg)->k, n = J->nthreads;
    float *zs = J->scratch + (Py_ssize_t)k * (J->chunk_rows + 1) * J->ncp_max;
    const Py_ssize_t steps = J->hi - J->lo;
    const long long per_step = J->nchunks;
    Py_ssize_t s = 0;
    while (s < steps) {
        const int g = atomic_load_explicit(&J->gen, memory_order_acquire);
        if (g > s) s = g; /* this thread was late: the others did those steps */
        if (s >= steps) break;
        long long mine = 0;
        for (int v = 0; v < n; v++) { /* own chunks first, then the others' left over */
            const int owner = (k + v) % n;
            Py_ssize_t ci;
            while ((ci = claim(J, owner, s)) >= 0) {
                run_chunk(J, k, ci, s, zs);
                mine++;
            }
        }
        if (mine) {
            const long long total = atomic_fetch_add(&J->done, mine) + mine;
            if (total == (s + 1) * per_step) { /* this thread finished the step */
                atomic_store(&J->gen, (int)(s + 1));
                if (atomic_load(&J->sleepers) > 0) gen_wake(&J->gen);
                s++;
                continue;
            }
        }
        wait_step(J, s);
        s++;
    }
    return NULL;
}
#endif /* LSTMVIZ_PACKED */

typedef struct {
    Py_buffer view;
    int held;
} buf_t;

static int get_buf(PyObject *obj, buf_t *b, const char *name, Py_ssize_t n_items,
                   Py_ssize_t itemsize, int writable)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    b->held = 0;
    if (PyObject_GetBuffer(obj, &b->view, flags) < 0) return -1;
    b->held = 1;
    if (b->view.itemsize != itemsize || b->view.len != n_items * itemsize) {
        PyErr_Format(PyExc_ValueError,
                     "_lstm_kernel: %s has %zd bytes of %zd-byte items; expected %zd items of "
                     "%zd bytes",
                     name, b->view.len, b->view.itemsize, n_items, itemsize);
        return -1;
    }
    if (itemsize == 4 && (b->view.format == NULL || strcmp(b->view.format, "f") != 0)) {
        PyErr_Format(PyExc_TypeError, "_lstm_kernel: %s must be float32", name);
        return -1;
    }
    return 0;
}

static void release(buf_t *bufs, int n)
{
    for (int k = 0; k < n; k++)
        if (bufs[k].held) PyBuffer_Release(&bufs[k].view);
}

PyDoc_STRVAR(run_doc,
"run(pre, act, c, h, h0, c0, rec, mask, steps, batch, units, go_backwards,\n"
"    recurrent_activation, activation, sgemm, sgemv, ilp64[, x, bias, features, rec_t,\n"
"    lo, hi])\n"
"--\n\n"
"The LSTM recurrence over time-major float32 buffers, in place, with BLAS's product.\n\n"
"pre (T, B, 4U) holds x W + b on entry and the full pre-activations on return; act\n"
"(T, B, 4U), c and h (T, B, U) are written.  rec is the (U, 4U) recurrent kernel with\n"
"blocks i, f, o, g; mask is None or (B, T) uint8.  sgemm / sgemv are addresses of BLAS\n"
"routines in the Fortran calling convention (64-bit integers when ilp64).  The GIL is\n"
"released while the loop runs.\n\n"
"With x (B, T, features) float32: rec is [U; W] ((units + features), 4U), or its transpose\n"
"(4U, units + features) when rec_t is true; pre need not hold anything on entry, and each step\n"
"writes [h_tm1, x_t] @ [U; W] (+ bias (4U,) or None).\n\n"
"lo, hi (default 0, T): run input positions lo .. hi - 1 only (hi - 1 .. lo when\n"
"go_backwards), h0 and c0 being the state before the first of them; the rest of the\n"
"buffers is left as it is (a retrace from a changed step).");

static PyObject *kernel_run(PyObject *self, PyObject *args)
{
    PyObject *o_pre, *o_act, *o_c, *o_h, *o_h0, *o_c0, *o_rec, *o_mask;
    PyObject *o_x = Py_None, *o_bias = Py_None;
    Py_ssize_t T, B, U, F = 0, lo = 0, hi = -1;
    int backwards, ract, cact, ilp64, rec_t = 0;
    unsigned long long p_gemm, p_gemv;
    if (!PyArg_ParseTuple(args, "OOOOOOOOnnnpiiKKp|OOnpnn", &o_pre, &o_act, &o_c, &o_h, &o_h0,
                          &o_c0, &o_rec, &o_mask, &T, &B, &U, &backwards, &ract, &cact,
                          &p_gemm, &p_gemv, &ilp64, &o_x, &o_bias, &F, &rec_t, &lo, &hi))
        return NULL;
    if (hi < 0) hi = T;
    /* x mode (x given): rec is [U; W] (U + F rows) and pre receives the whole
     * pre-activation: each step's product [h_tm1, x_t] @ [U; W] is written once, plus the
     * bias, instead of a separate input projection filling pre beforehand */
    const int xmode = o_x != Py_None;
    if (!xmode)
        F = 0;
    const int rt = xmode && rec_t; /* rec given transposed, (4U, F + U) */
    if (T < 0 || B < 1 || U < 1 || ract < 0 || ract >= ACT_COUNT || cact < 0 ||
        cact >= ACT_COUNT || p_gemm == 0 || p_gemv == 0 || lo < 0 || lo > hi || hi > T) {
        PyErr_SetString(PyExc_ValueError, "_lstm_kernel.run: invalid sizes, codes or BLAS");
        return NULL;
    }
    if (F < 0 || (xmode && F < 1)) {
        PyErr_SetString(PyExc_ValueError, "_lstm_kernel.run: x needs features >= 1");
        return NULL;
    }
    if (!ilp64 && (4 * U > INT32_MAX || B > INT32_MAX || F + U > INT32_MAX)) {
        PyErr_SetString(PyExc_ValueError, "_lstm_kernel.run: sizes overflow 32-bit BLAS");
        return NULL;
    }
    buf_t bufs[10];
    memset(bufs, 0, sizeof bufs);
    const Py_ssize_t U4 = 4 * U, K = U + F;
    if (get_buf(o_pre, &bufs[0], "pre", T * B * U4, 4, 1) < 0 ||
        get_buf(o_act, &bufs[1], "act", T * B * U4, 4, 1) < 0 ||
        get_buf(o_c, &bufs[2], "c", T * B * U, 4, 1) < 0 ||
        get_buf(o_h, &bufs[3], "h", T * B * U, 4, 1) < 0 ||
        get_buf(o_h0, &bufs[4], "h0", B * U, 4, 0) < 0 ||
        get_buf(o_c0, &bufs[5], "c0", B * U, 4, 0) < 0 ||
        get_buf(o_rec, &bufs[6], "rec", K * U4, 4, 0) < 0 ||
        (o_mask != Py_None && get_buf(o_mask, &bufs[7], "mask", B * T, 1, 0) < 0) ||
        (xmode && get_buf(o_x, &bufs[8], "x", B * T * F, 4, 0) < 0) ||
        (xmode && o_bias != Py_None && get_buf(o_bias, &bufs[9], "bias", U4, 4, 0) < 0)) {
        release(bufs, 10);
        return NULL;
    }
    const float *x = xmode ? bufs[8].view.buf : NULL;
    const float *bias = xmode && o_bias != Py_None ? bufs[9].view.buf : NULL;
    float *pre = bufs[0].view.buf, *act = bufs[1].view.buf;
    float *cs = bufs[2].view.buf, *hs = bufs[3].view.buf;
    const float *h_tm1 = bufs[4].view.buf, *c_tm1 = bufs[5].view.buf;
    const float *rec = bufs[6].view.buf;
    const unsigned char *mask = o_mask != Py_None ? bufs[7].view.buf : NULL;
    const float one = 1.0f;

    const float zero = 0.0f;
    const float beta = xmode ? zero : one; /* x mode writes z; else adds to x W + b */
    float *xh = NULL;   /* x mode: [h_tm1, x_t], (B, U + F), 64-byte aligned */
    float *zT = NULL;   /* x mode, B > 1: the step's product unit-major, (4U, B), aligned */
    void *xh_mem = NULL; /* what was allocated (both) */
    if (xmode) {
        const Py_ssize_t n_xh = (B * K + 15) & ~(Py_ssize_t)15;
        xh_mem = PyMem_RawMalloc((size_t)(n_xh + (rt ? B * U4 : 0)) * sizeof(float) + 64);
        if (xh_mem == NULL) {
            release(bufs, 10);
            return PyErr_NoMemory();
        }
        xh = (float *)(((uintptr_t)xh_mem + 63) & ~(uintptr_t)63);
        if (rt && B > 1) zT = xh + n_xh;
    }
    const int fused = ract == ACT_SIGMOID && cact == ACT_TANH;
    float *coef = NULL;
    if (fused) {
        coef = PyMem_RawMalloc((size_t)(2 * U4) * sizeof(float));
        if (coef == NULL) {
            PyMem_RawFree(xh_mem);
            release(bufs, 10);
            return PyErr_NoMemory();
        }
        for (Py_ssize_t j = 0; j < U4; j++) {
            coef[j] = j < 3 * U ? 0.5f : 1.0f;
            coef[U4 + j] = j < 3 * U ? 0.5f : 0.0f;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    const int32_t m32 = (int32_t)U4, k32 = (int32_t)K, n32 = (int32_t)B, inc32 = 1;
    const int64_t m64 = U4, k64 = K, n64 = B, inc64 = 1;
    for (Py_ssize_t s = 0; s < hi - lo; s++) {
        const Py_ssize_t t = backwards ? hi - 1 - s : lo + s;
        float *z = pre + t * B * U4; /* (B, 4U): x_t W + b, completed with h_tm1 U */
        float *a = act + t * B * U4;
        float *c = cs + t * B * U;
        float *h = hs + t * B * U;
        /* Column-major view: z^T (4U x B) += rec^T (4U x U) @ h_tm1^T (U x B); in x mode
         * the product of [h_tm1, x_t] (B x K) and [U; W] (given transposed), then + b. */
        const float *v = h_tm1;
        if (xmode) {
            /* h_tm1 first: BLAS sums over K in order, so the many small h U terms gather
             * before the few large x W ones join; with x first each h term was rounded at
             * the scale of x W (~5x the NumPy loop's error in pre; tests/engine/test_cell.py
             * checks it stays within 2x of that) */
            for (Py_ssize_t b = 0; b < B; b++) {
                memcpy(xh + b * K, h_tm1 + b * U, (size_t)U * sizeof(float));
                memcpy(xh + b * K + U, x + (b * T + t) * F, (size_t)F * sizeof(float));
            }
            v = xh;
        }
        if (rt && B > 1) {
            /* rec is [U; W]^T (4U x K, row-major), i.e. column-major K x 4U.  Column-major
             * zT^T (B x 4U) = [h_tm1, x_t] (B x K, "T" of its K x B view) @ rec (K x 4U):
             * zT comes out (4U, B) row-major.  From ~128 units on OpenBLAS runs this shape
             * faster than the batch-major one (256 units x batch 32, one thread: ~0.7x
             * NumPy's h @ U, whose operands sit the other way round); untranspose() then
             * writes pre[t] (B, 4U) = zT^T + b. */
            if (ilp64)
                ((sgemm64_fn)(uintptr_t)p_gemm)("T", "N", &n64, &m64, &k64, &one, v, &k64,
                                                rec, &k64, &zero, zT, &n64);
            else
                ((sgemm32_fn)(uintptr_t)p_gemm)("T", "N", &n32, &m32, &k32, &one, v, &k32,
                                                rec, &k32, &zero, zT, &n32);
            untranspose(zT, z, bias, B, U4);
        } else {
            if (B == 1) {
                /* rec (4U, K) row-major is column-major K x 4U: z = "T" of it times v */
                const char *tr = rt ? "T" : "N";
                if (ilp64)
                    ((sgemv64_fn)(uintptr_t)p_gemv)(tr, rt ? &k64 : &m64, rt ? &m64 : &k64,
                                                    &one, rec, rt ? &k64 : &m64, v, &inc64,
                                                    &beta, z, &inc64);
                else
                    ((sgemv32_fn)(uintptr_t)p_gemv)(tr, rt ? &k32 : &m32, rt ? &m32 : &k32,
                                                    &one, rec, rt ? &k32 : &m32, v, &inc32,
                                                    &beta, z, &inc32);
            } else if (ilp64) {
                ((sgemm64_fn)(uintptr_t)p_gemm)("N", "N", &m64, &n64, &k64, &one, rec, &m64,
                                                v, &k64, &beta, z, &m64);
            } else {
                ((sgemm32_fn)(uintptr_t)p_gemm)("N", "N", &m32, &n32, &k32, &one, rec, &m32,
                                                v, &k32, &beta, z, &m32);
            }
            if (bias != NULL)
                for (Py_ssize_t b = 0; b < B; b++) add_into(z + b * U4, bias, U4);
        }
        for (Py_ssize_t b = 0; b < B; b++) {
            const float *zb = z + b * U4;
            float *ab = a + b * U4;
            if (fused) {
                sigmoid_tanh_row(zb, ab, coef, coef + U4, c_tm1 + b * U, c + b * U, h + b * U,
                                 U);
            } else {
                apply_act(ract, zb, ab, 3 * U);             /* i, f, o */
                apply_act(cact, zb + 3 * U, ab + 3 * U, U); /* g */
                cell_row(ab, c_tm1 + b * U, c + b * U, h + b * U, U, cact);
            }
            if (mask != NULL && !mask[b * T + t]) { /* masked step: carry the state over */
                memcpy(c + b * U, c_tm1 + b * U, (size_t)U * sizeof(float));
                memcpy(h + b * U, h_tm1 + b * U, (size_t)U * sizeof(float));
            }
        }
        h_tm1 = h;
        c_tm1 = c;
    }
    Py_END_ALLOW_THREADS

    PyMem_RawFree(xh_mem);
    PyMem_RawFree(coef);
    release(bufs, 10);
    Py_RETURN_NONE;
}

#ifdef LSTMVIZ_PACKED
/* The packed weights of a layer: for each of the nuc unit chunks, K x ncp_max floats of
 * weights (panels of NR columns), then for each chunk ncp_max floats of bias. */
static void pack_layout(int isa, Py_ssize_t U, Py_ssize_t F, Py_ssize_t B, Py_ssize_t chunk_units,
                        Py_ssize_t *nuc, Py_ssize_t *NR, Py_ssize_t *ncp_max, Py_ssize_t *n)
{
    if (chunk_units > U) chunk_units = U;
    *nuc = (U + chunk_units - 1) / chunk_units;
    *NR = panel_nr(isa, B);
    *ncp_max = ((4 * chunk_units + *NR - 1) / *NR) * *NR;
    *n = *nuc * (U + F) * *ncp_max + *nuc * *ncp_max;
}

/* out (pack_layout's n floats, 64-byte aligned) = ukw (U + F, 4U) and bias (4U,) or NULL
 * (zeros) packed chunk by chunk */
static void pack_all(int isa, const float *ukw, const float *bias, Py_ssize_t U, Py_ssize_t F,
                     Py_ssize_t B, Py_ssize_t cu, float *out)
{
    Py_ssize_t nuc, NR, ncp_max, n;
    pack_layout(isa, U, F, B, cu, &nuc, &NR, &ncp_max, &n);
    if (cu > U) cu = U;
    const Py_ssize_t K = U + F;
    for (Py_ssize_t uc = 0; uc < nuc; uc++) {
        const Py_ssize_t u0 = uc * cu, nu = U - u0 < cu ? U - u0 : cu;
        const Py_ssize_t ncp = ((4 * nu + NR - 1) / NR) * NR;
        float *wp = out + uc * K * ncp_max, *bp = out + nuc * K * ncp_max + uc * ncp_max;
        pack_chunk(ukw, bias, K, U, u0, nu, NR, ncp, wp, bias != NULL ? bp : NULL);
        if (bias == NULL) memset(bp, 0, (size_t)ncp_max * sizeof(float));
    }
}
#endif

PyDoc_STRVAR(pack_doc,
"pack(ukw, bias, out, units, features, batch, chunk_units) -> None\n"
"--\n\n"
"Pack [U; W] (units + features, 4 units) and the bias (4 units,) or None into out, the\n"
"layout run_packed reads at this batch size (1, or more) and chunking with the current\n"
"instruction set: a float32 buffer of pack_size(...) floats, 64-byte aligned.");

PyDoc_STRVAR(pack_size_doc,
"pack_size(units, features, batch, chunk_units) -> int\n"
"--\n\n"
"The floats of pack()'s layout (0 when the packed product is off).");

static PyObject *kernel_pack_size(PyObject *self, PyObject *args)
{
    Py_ssize_t U, F, B, cu;
    if (!PyArg_ParseTuple(args, "nnnn", &U, &F, &B, &cu)) return NULL;
    if (U < 1 || F < 0 || B < 1 || cu < 1) {
        PyErr_SetString(PyExc_ValueError, "_lstm_kernel.pack_size: invalid sizes");
        return NULL;
    }
#ifdef LSTMVIZ_PACKED
    const int isa = packed_isa();
    if (isa != ISA_NONE) {
        Py_ssize_t nuc, NR, ncp, n;
        pack_layout(isa, U, F, B, cu, &nuc, &NR, &ncp, &n);
        return PyLong_FromSsize_t(n);
    }
#endif
    return PyLong_FromLong(0);
}

static PyObject *kernel_pack(PyObject *self, PyObject *args)
{
    PyObject *o_ukw, *o_bias, *o_out;
    Py_ssize_t U, F, B, cu;
    if (!PyArg_ParseTuple(args, "OOOnnnn", &o_ukw, &o_bias, &o_out, &U, &F, &B, &cu)) return NULL;
#ifndef LSTMVIZ_PACKED
    PyErr_SetString(PyExc_RuntimeError, "_lstm_kernel.pack: built without the packed product");
    return NULL;
#else
    const int isa = packed_isa();
    if (isa == ISA_NONE || U < 1 || F < 0 || B < 1 || cu < 1) {
        PyErr_SetString(PyExc_ValueError, "_lstm_kernel.pack: invalid sizes, or the packed "
                                          "product is off");
        return NULL;
    }
    Py_ssize_t nuc, NR, ncp_max, n;
    pack_layout(isa, U, F, B, cu, &nuc, &NR, &ncp_max, &n);
    const Py_ssize_t K = U + F;
    buf_t bufs[3];
    memset(bufs, 0, sizeof bufs);
    if (get_buf(o_ukw, &bufs[0], "ukw", K * 4 * U, 4, 0) < 0 ||
        (o_bias != Py_None && get_buf(o_bias, &bufs[1], "bias", 4 * U, 4, 0) < 0) ||
        get_buf(o_out, &bufs[2], "out", n, 4, 1) < 0) {
        release(bufs, 3);
        return NULL;
    }
    float *out = bufs[2].view.buf;
    if ((uintptr_t)out % 64 != 0) {
        release(bufs, 3);
        PyErr_SetString(PyExc_ValueError, "_lstm_kernel.pack: out must be 64-byte aligned");
        return NULL;
    }
    const float *ukw = bufs[0].view.buf;
    const float *bias = o_bias != Py_None ? bufs[1].view.buf : NULL;
    Py_BEGIN_ALLOW_THREADS
    pack_all(isa, ukw, bias, U, F, B, cu, out);
    Py_END_ALLOW_THREADS
    release(bufs, 3);
    Py_RETURN_NONE;
#endif
}

PyDoc_STRVAR(run_packed_doc,
"run_packed(pre, act, c, h, h0, c0, wpack, has_bias, x, mask, steps, batch, units, features,\n"
"           go_backwards, recurrent_activation, activation, threads, chunk_units,\n"
"           chunk_rows, lo, hi)\n"
"--\n\n"
"The LSTM recurrence with the kernel's own packed product on up to `threads` threads\n"
"(see the comment above run_chunk in _lstm_kernel.c), in place.\n\n"
"pre, act (T, B, 4U) and c, h (T, B, U) float32 are written at input positions\n"
"lo .. hi - 1 (processed hi - 1 .. lo when go_backwards); h0, c0 (B, U) are the state before\n"
"the first of them.  wpack: [U; W] and the bias packed by pack() for this batch size and\n"
"chunk_units (has_bias: add the bias); x (B, T, F); mask None or (B, T) uint8.  The work of\n"
"a step is cut into chunks of chunk_units units x chunk_rows batch rows.  Returns the\n"
"number of threads that ran (the caller included).  The GIL is released.");

#ifdef LSTMVIZ_PACKED
/* 64-byte aligned PyMem_RawMalloc; *base receives what to free */
static void *amalloc(size_t nbytes, void **base)
{
    *base = PyMem_RawMalloc(nbytes + 64);
    return *base == NULL ? NULL : (void *)(((uintptr_t)*base + 63) & ~(uintptr_t)63);
}
#endif

static PyObject *kernel_run_packed(PyObject *self, PyObject *args)
{
    PyObject *o_pre, *o_act, *o_c, *o_h, *o_h0, *o_c0, *o_wpack, *o_x, *o_mask;
    Py_ssize_t T, B, U, F, chunk_units, chunk_rows, lo, hi;
    int has_bias, backwards, ract, cact, threads;
    if (!PyArg_ParseTuple(args, "OOOOOOOpOOnnnnpiiinnnn", &o_pre, &o_act, &o_c, &o_h, &o_h0,
                          &o_c0, &o_wpack, &has_bias, &o_x, &o_mask, &T, &B, &U, &F,
                          &backwards, &ract, &cact, &threads, &chunk_units, &chunk_rows, &lo,
                          &hi))
        return NULL;
#ifndef LSTMVIZ_PACKED
    PyErr_SetString(PyExc_RuntimeError,
                    "_lstm_kernel.run_packed: built without the packed product (x86-64 GCC/Clang)");
    return NULL;
#else
    const int isa = packed_isa();
    if (isa == ISA_NONE) {
        PyErr_SetString(PyExc_RuntimeError,
                        "_lstm_kernel.run_packed: the packed product is off (no AVX2 + FMA, or "
                        "LSTMVIZ_PACKED=0)");
        return NULL;
    }
    if (T < 0 || B < 1 || U < 1 || F < 0 || ract < 0 || ract >= ACT_COUNT || cact < 0 ||
        cact >= ACT_COUNT || threads < 1 || chunk_units < 1 || chunk_rows < 1 || lo < 0 ||
        lo > hi || hi > T || hi - lo >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "_lstm_kernel.run_packed: invalid sizes or codes");
        return NULL;
    }
    const Py_ssize_t U4 = 4 * U, K = U + F;
    Py_ssize_t nuc, NR, ncp_max, n_pack;
    pack_layout(isa, U, F, B, chunk_units, &nuc, &NR, &ncp_max, &n_pack);
    buf_t bufs[9];
    memset(bufs, 0, sizeof bufs);
    if (get_buf(o_pre, &bufs[0], "pre", T * B * U4, 4, 1) < 0 ||
        get_buf(o_act, &bufs[1], "act", T * B * U4, 4, 1) < 0 ||
        get_buf(o_c, &bufs[2], "c", T * B * U, 4, 1) < 0 ||
        get_buf(o_h, &bufs[3], "h", T * B * U, 4, 1) < 0 ||
        get_buf(o_h0, &bufs[4], "h0", B * U, 4, 0) < 0 ||
        get_buf(o_c0, &bufs[5], "c0", B * U, 4, 0) < 0 ||
        get_buf(o_wpack, &bufs[6], "wpack (pack()'s layout for this size)", n_pack, 4, 0) < 0 ||
        get_buf(o_x, &bufs[7], "x", B * T * F, 4, 0) < 0 ||
        (o_mask != Py_None && get_buf(o_mask, &bufs[8], "mask", B * T, 1, 0) < 0)) {
        release(bufs, 9);
        return NULL;
    }
    const float *wpack = bufs[6].view.buf;
    if ((uintptr_t)wpack % 64 != 0) {
        release(bufs, 9);
        PyErr_SetString(PyExc_ValueError, "_lstm_kernel.run_packed: wpack must be 64-byte aligned");
        return NULL;
    }
    if (chunk_units > U) chunk_units = U;
    if (chunk_rows > B) chunk_rows = B;
    const Py_ssize_t nrb = (B + chunk_rows - 1) / chunk_rows, nchunks = nuc * nrb;
    int n = threads < MAX_THREADS ? threads : MAX_THREADS;
    if (n > nchunks) n = (int)nchunks;
    void *m_job, *m_scratch, *m_apack = NULL;
    job_t *J = amalloc(sizeof(job_t), &m_job);
    float *scratch = amalloc((size_t)(n * (chunk_rows + 1) * ncp_max) * sizeof(float), &m_scratch);
    float *apack = B > 1 && isa == ISA_AVX512
                       ? amalloc((size_t)(n * chunk_rows * K) * sizeof(float), &m_apack)
                       : NULL;
    if (J == NULL || scratch == NULL || (B > 1 && isa == ISA_AVX512 && apack == NULL)) {
        PyMem_RawFree(m_job);
        PyMem_RawFree(m_scratch);
        PyMem_RawFree(m_apack);
        release(bufs, 9);
        return PyErr_NoMemory();
    }
    memset(J, 0, sizeof *J);
    J->pre = bufs[0].view.buf;
    J->act = bufs[1].view.buf;
    J->cs = bufs[2].view.buf;
    J->hs = bufs[3].view.buf;
    J->h0 = bufs[4].view.buf;
    J->c0 = bufs[5].view.buf;
    J->x = bufs[7].view.buf;
    J->mask = o_mask != Py_None ? bufs[8].view.buf : NULL;
    J->T = T;
    J->B = B;
    J->U = U;
    J->F = F;
    J->lo = lo;
    J->hi = hi;
    J->backwards = backwards;
    J->ract = ract;
    J->cact = cact;
    J->isa = isa;
    J->chunk_units = chunk_units;
    J->chunk_rows = chunk_rows;
    J->nuc = nuc;
    J->nrb = nrb;
    J->nchunks = nchunks;
    J->NR = NR;
    J->ncp_max = ncp_max;
    J->wp = wpack;
    J->bp = has_bias ? wpack + nuc * K * ncp_max : NULL;
    J->scratch = scratch;
    J->apack = apack;
    for (int k = 0; k < MAX_THREADS; k++) J->apack_key[k] = -1;
    J->nthreads = n;
    for (int k = 0; k <= n; k++) J->own_begin[k] = (Py_ssize_t)k * nchunks / n;
    for (int k = 0; k < n; k++) atomic_init(&J->claimed[k].taken, 0);
    atomic_init(&J->done, 0);
    atomic_init(&J->gen, 0);
    atomic_init(&J->sleepers, 0);
    worker_arg_t wargs[MAX_THREADS];
    int ran = 1;
    Py_BEGIN_ALLOW_THREADS
    for (int k = 0; k < n; k++) {
        wargs[k].job = J;
        wargs[k].k = k;
    }
#ifdef LSTMVIZ_THREADS
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    if (n > 1 && hi > lo) {
        /* the workers take no signals: Python handles them in the main thread */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (int k = 1; k < n; k++) { /* a thread that does not start: the others take its chunks */
            started[k] = pthread_create(&tids[k], NULL, worker, &wargs[k]) == 0;
            ran += started[k];
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
#endif
    worker(&wargs[0]);
#ifdef LSTMVIZ_THREADS
    for (int k = 1; k < n; k++)
        if (started[k]) pthread_join(tids[k], NULL);
#endif
    Py_END_ALLOW_THREADS
    PyMem_RawFree(m_job);
    PyMem_RawFree(m_scratch);
    PyMem_RawFree(m_apack);
    release(bufs, 9);
    return PyLong_FromLong(ran);
#endif
}

PyDoc_STRVAR(project_doc,
"project(x, kernel, bias, pre, steps, batch, features, units, sgemm, ilp64)\n"
"--\n\n"
"pre[t, b] = x[b, t] @ kernel + bias for every step and batch item, without a copy of x:\n"
"pre is filled with the bias (or zeros), then one sgemm per batch item adds x[b] @ kernel\n"
"into the strided rows pre[:, b] (ldc = B * 4U).  x (B, T, F), kernel (F, 4U), bias (4U,)\n"
"or None, pre (T, B, 4U); float32, C-contiguous.  The GIL is released.");

static PyObject *kernel_project(PyObject *self, PyObject *args)
{
    PyObject *o_x, *o_k, *o_b, *o_pre;
    Py_ssize_t T, B, F, U;
    int ilp64;
    unsigned long long p_gemm;
    if (!PyArg_ParseTuple(args, "OOOOnnnnKp", &o_x, &o_k, &o_b, &o_pre, &T, &B, &F, &U,
                          &p_gemm, &ilp64))
        return NULL;
    if (T < 0 || B < 1 || F < 0 || U < 1 || p_gemm == 0 ||
        (!ilp64 && (B * 4 * U > INT32_MAX || T > INT32_MAX || F > INT32_MAX))) {
        PyErr_SetString(PyExc_ValueError, "_lstm_kernel.project: invalid sizes or BLAS");
        return NULL;
    }
    const Py_ssize_t U4 = 4 * U;
    buf_t bufs[4];
    memset(bufs, 0, sizeof bufs);
    if (get_buf(o_x, &bufs[0], "x", B * T * F, 4, 0) < 0 ||
        get_buf(o_k, &bufs[1], "kernel", F * U4, 4, 0) < 0 ||
        (o_b != Py_None && get_buf(o_b, &bufs[2], "bias", U4, 4, 0) < 0) ||
        get_buf(o_pre, &bufs[3], "pre", T * B * U4, 4, 1) < 0) {
        release(bufs, 4);
        return NULL;
    }
    const float *x = bufs[0].view.buf, *kern = bufs[1].view.buf;
    const float *bias = o_b != Py_None ? bufs[2].view.buf : NULL;
    float *pre = bufs[3].view.buf;
    const float one = 1.0f;
    Py_BEGIN_ALLOW_THREADS
    const Py_ssize_t rows = T * B;
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (bias != NULL)
            memcpy(pre + r * U4, bias, (size_t)U4 * sizeof(float));
        else
            memset(pre + r * U4, 0, (size_t)U4 * sizeof(float));
    }
    if (T > 0 && F > 0) {
        /* column-major: pre[:, b]^T (4U x T, ldc = B 4U) += kernel^T (4U x F) @ x[b]^T (F x T) */
        const int32_t m32 = (int32_t)U4, n32 = (int32_t)T, k32 = (int32_t)F,
                      ldc32 = (int32_t)(B * U4);
        const int64_t m64 = U4, n64 = T, k64 = F, ldc64 = B * U4;
        for (Py_ssize_t b = 0; b < B; b++) {
            if (ilp64)
                ((sgemm64_fn)(uintptr_t)p_gemm)("N", "N", &m64, &n64, &k64, &one, kern, &m64,
                                                x + b * T * F, &k64, &one, pre + b * U4,
                                                &ldc64);
            else
                ((sgemm32_fn)(uintptr_t)p_gemm)("N", "N", &m32, &n32, &k32, &one, kern, &m32,
                                                x + b * T * F, &k32, &one, pre + b * U4,
                                                &ldc32);
        }
    }
    Py_END_ALLOW_THREADS
    release(bufs, 4);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(act_doc,
"activate(code, x, out)\n--\n\n"
"out = activation(x) with the kernel's own formulas (float32 buffers, same length).");

static PyObject *kernel_activate(PyObject *self, PyObject *args)
{
    int code;
    PyObject *o_x, *o_out;
    if (!PyArg_ParseTuple(args, "iOO", &code, &o_x, &o_out)) return NULL;
    if (code < 0 || code >= ACT_COUNT) {
        PyErr_SetString(PyExc_ValueError, "_lstm_kernel.activate: unknown activation code");
        return NULL;
    }
    buf_t bufs[2];
    memset(bufs, 0, sizeof bufs);
    Py_buffer probe;
    if (PyObject_GetBuffer(o_x, &probe, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    const Py_ssize_t n = probe.len / 4;
    PyBuffer_Release(&probe);
    if (get_buf(o_x, &bufs[0], "x", n, 4, 0) < 0 || get_buf(o_out, &bufs[1], "out", n, 4, 1) < 0) {
        release(bufs, 2);
        return NULL;
    }
    apply_act(code, bufs[0].view.buf, bufs[1].view.buf, n);
    release(bufs, 2);
    Py_RETURN_NONE;
}

static PyObject *kernel_packed(PyObject *self, PyObject *noargs)
{
#ifdef LSTMVIZ_PACKED
    const int isa = packed_isa();
    return PyUnicode_FromString(isa == ISA_AVX512 ? "avx512" : isa == ISA_AVX2 ? "avx2" : "");
#else
    return PyUnicode_FromString("");
#endif
}

static PyObject *kernel_set_packed(PyObject *self, PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL) return NULL;
    int want = strcmp(name, "") == 0 ? 0 : -1;
#ifdef LSTMVIZ_PACKED
    packed_isa(); /* initialise the CPU detection */
    if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        want = ISA_AVX2;
    else if (strcmp(name, "avx512") == 0 && __builtin_cpu_supports("avx512f"))
        want = ISA_AVX512;
#endif
    if (want < 0) {
        PyErr_Format(PyExc_ValueError, "_lstm_kernel.set_packed: %R is not available here", arg);
        return NULL;
    }
    PyObject *previous = kernel_packed(self, NULL);
#ifdef LSTMVIZ_PACKED
    packed_isa_override(want);
#endif
    return previous;
}

static PyMethodDef kernel_methods[] = {
    {"packed", kernel_packed, METH_NOARGS,
     "packed() -> 'avx512', 'avx2' or '': the tiles of x mode's packed product ('': BLAS;\n"
     "the environment variable LSTMVIZ_PACKED=0 forces BLAS, =avx2 the AVX2 tiles)."},
    {"set_packed", kernel_set_packed, METH_O,
     "set_packed(name) -> previous name: use 'avx512', 'avx2' (when the CPU has it) or ''\n"
     "(BLAS) from now on (tests and benchmarks)."},
    {"run", kernel_run, METH_VARARGS, run_doc},
    {"run_packed", kernel_run_packed, METH_VARARGS, run_packed_doc},
    {"pack", kernel_pack, METH_VARARGS, pack_doc},
    {"pack_size", kernel_pack_size, METH_VARARGS, pack_size_doc},
    {"project", kernel_project, METH_VARARGS, project_doc},
    {"activate", kernel_activate, METH_VARARGS, act_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernel_module = {
    PyModuleDef_HEAD_INIT, "_lstm_kernel",
    "Optional compiled LSTM recurrence for lstmviz (see lstmviz/engine/_accel.py).", -1,
    kernel_methods,
};

PyMODINIT_FUNC PyInit__lstm_kernel(void)
{
    PyObject *m = PyModule_Create(&kernel_module);
    if (m != NULL) PyModule_AddIntConstant(m, "ABI", 4);
#ifdef LSTMVIZ_THREADS
    if (m != NULL) PyModule_AddIntConstant(m, "MAX_THREADS", MAX_THREADS);
#else
    if (m != NULL) PyModule_AddIntConstant(m, "MAX_THREADS", 1);
#endif
    return m;
}
