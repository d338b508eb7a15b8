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
#define LSTMVIZ_PACKED 1
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

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* One build runs everywhere; the loader picks the AVX2 clone where the CPU has it. */
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
    int32_t bits;
    memcpy(&bits, &fr, sizeof bits);
    bits = (bits - 0x4B400000 + 127) << 23; /* the float 2^n */
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

/* ---------------------------------------------------------------- packed product
 * The x mode's per-step product z (B, 4U) = [h_tm1, x_t] (B, K) @ [U; W] (K, 4U) with the
 * weights packed once per call into panels of NR columns, Wp[p][k][0:NR], instead of
 * BLAS repacking them at every step (OpenBLAS's sgemm_oncopy was ~12 % of a 256-unit,
 * batch-32 trace).  A tile of MR batch rows x NR columns accumulates over k = 0..K-1 in
 * order with FMA, as BLAS kernels do, and is written batch-major straight into z (+ b):
 * no transpose.  AVX-512: MR 8, NR 32 (16 zmm accumulators); AVX2: MR 6, NR 16 (12 ymm);
 * rows left over (B not a multiple of MR) run tiles of 4, 2 and 1 rows.  Without AVX2/FMA (or off
 * x86-64 / GCC-compatible compilers) the kernel uses BLAS. */
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

static Py_ssize_t packed_nr(int isa) { return isa == ISA_AVX512 ? 32 : 16; }

/* Wp (ceil(N / NR) panels of K x NR, zero-padded) from w: (K, N) row-major, or (N, K)
 * row-major when transposed */
static void pack_weights(const float *restrict w, int transposed, float *restrict wp,
                         Py_ssize_t K, Py_ssize_t N, Py_ssize_t NR)
{
    for (Py_ssize_t p0 = 0; p0 < N; p0 += NR) {
        const Py_ssize_t nc = N - p0 < NR ? N - p0 : NR;
        for (Py_ssize_t k = 0; k < K; k++) {
            float *dst = wp + (p0 / NR) * K * NR + k * NR;
            if (transposed)
                for (Py_ssize_t j = 0; j < nc; j++) dst[j] = w[(p0 + j) * K + k];
            else
                memcpy(dst, w + k * N + p0, (size_t)nc * sizeof(float));
            for (Py_ssize_t j = nc; j < NR; j++) dst[j] = 0.0f;
        }
    }
}

#define TILE512(MR)                                                                         \
    static __attribute__((target("avx512f,fma"))) void tile512_##MR(                        \
        const float *restrict a, Py_ssize_t lda, const float *restrict wp, Py_ssize_t K,    \
        const float *restrict b, float *restrict z, Py_ssize_t ldz, Py_ssize_t nc)          \
    {                                                                                       \
        __m512 acc0[MR], acc1[MR];                                                          \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc0[r] = acc1[r] = _mm512_setzero_ps();               \
        for (Py_ssize_t k = 0; k < K; k++) {                                                \
            const __m512 w0 = _mm512_load_ps(wp + k * 32), w1 = _mm512_load_ps(wp + k * 32 + 16); \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                                  \
                const __m512 v = _mm512_set1_ps(a[r * lda + k]);                            \
                acc0[r] = _mm512_fmadd_ps(v, w0, acc0[r]);                                  \
                acc1[r] = _mm512_fmadd_ps(v, w1, acc1[r]);                                  \
            }                                                                               \
        }                                                                                   \
        const __mmask16 m0 = nc >= 16 ? 0xFFFF : (__mmask16)((1u << nc) - 1u);              \
        const __mmask16 m1 = nc >= 32 ? 0xFFFF : nc <= 16 ? 0 : (__mmask16)((1u << (nc - 16)) - 1u); \
        const __m512 b0 = b ? _mm512_maskz_loadu_ps(m0, b) : _mm512_setzero_ps();           \
        const __m512 b1 = b ? _mm512_maskz_loadu_ps(m1, b + 16) : _mm512_setzero_ps();      \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                                      \
            _mm512_mask_storeu_ps(z + r * ldz, m0, b ? _mm512_add_ps(acc0[r], b0) : acc0[r]);      \
            _mm512_mask_storeu_ps(z + r * ldz + 16, m1, b ? _mm512_add_ps(acc1[r], b1) : acc1[r]); \
        }                                                                                   \
    }
TILE512(8)
TILE512(4)
TILE512(2)
TILE512(1)

#define TILE256(MR)                                                                         \
    static __attribute__((target("avx2,fma"))) void tile256_##MR(                           \
        const float *restrict a, Py_ssize_t lda, const float *restrict wp, Py_ssize_t K,    \
        const float *restrict b, float *restrict z, Py_ssize_t ldz, Py_ssize_t nc)          \
    {                                                                                       \
        __m256 acc0[MR], acc1[MR];                                                          \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();               \
        for (Py_ssize_t k = 0; k < K; k++) {                                                \
            const __m256 w0 = _mm256_load_ps(wp + k * 16), w1 = _mm256_load_ps(wp + k * 16 + 8); \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                                  \
                const __m256 v = _mm256_broadcast_ss(a + r * lda + k);                      \
                acc0[r] = _mm256_fmadd_ps(v, w0, acc0[r]);                                  \
                acc1[r] = _mm256_fmadd_ps(v, w1, acc1[r]);                                  \
            }                                                                               \
        }                                                                                   \
        float tmp[16];                                                                      \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                                      \
            _mm256_storeu_ps(tmp, acc0[r]);                                                 \
            _mm256_storeu_ps(tmp + 8, acc1[r]);                                             \
            float *zr = z + r * ldz;                                                        \
            if (b)                                                                          \
                for (Py_ssize_t j = 0; j < nc; j++) zr[j] = tmp[j] + b[j];                  \
            else                                                                            \
                for (Py_ssize_t j = 0; j < nc; j++) zr[j] = tmp[j];                         \
        }                                                                                   \
    }
TILE256(6)
TILE256(4)
TILE256(2)
TILE256(1)

/* z (M, N) row-major = a (M, K) row-major @ packed weights (+ b) */
static void packed_product(int isa, const float *a, Py_ssize_t M, Py_ssize_t K,
                           const float *wp, Py_ssize_t N, const float *b, float *z)
{
    const Py_ssize_t NR = packed_nr(isa), MR = isa == ISA_AVX512 ? 8 : 6;
    for (Py_ssize_t p0 = 0; p0 < N; p0 += NR) {
        const Py_ssize_t nc = N - p0 < NR ? N - p0 : NR;
        const float *panel = wp + (p0 / NR) * K * NR;
        const float *bp = b ? b + p0 : NULL;
        Py_ssize_t r0 = 0;
        for (; r0 + MR <= M; r0 += MR) {
            if (isa == ISA_AVX512)
                tile512_8(a + r0 * K, K, panel, K, bp, z + r0 * N + p0, N, nc);
            else
                tile256_6(a + r0 * K, K, panel, K, bp, z + r0 * N + p0, N, nc);
        }
        while (r0 < M) { /* the rows left over, in tiles of 4, 2, 1 */
            const Py_ssize_t left = M - r0, mr = left >= 4 ? 4 : left >= 2 ? 2 : 1;
            const float *ar = a + r0 * K;
            float *zr = z + r0 * N + p0;
            if (isa == ISA_AVX512) {
                if (mr == 4) tile512_4(ar, K, panel, K, bp, zr, N, nc);
                else if (mr == 2) tile512_2(ar, K, panel, K, bp, zr, N, nc);
                else tile512_1(ar, K, panel, K, bp, zr, N, nc);
            } else {
                if (mr == 4) tile256_4(ar, K, panel, K, bp, zr, N, nc);
                else if (mr == 2) tile256_2(ar, K, panel, K, bp, zr, N, nc);
                else tile256_1(ar, K, panel, K, bp, zr, N, nc);
            }
            r0 += mr;
        }
    }
}
#endif

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
"    recurrent_activation, activation, sgemm, sgemv, ilp64[, x, bias, features, rec_t])\n"
"--\n\n"
"The LSTM recurrence over time-major float32 buffers, in place.\n\n"
"pre (T, B, 4U) holds x W + b on entry and the full pre-activations on return; act\n"
"(T, B, 4U), c and h (T, B, U) are written.  rec is the (U, 4U) recurrent kernel with\n"
"blocks i, f, o, g; mask is None or (B, T) uint8.  sgemm / sgemv are addresses of BLAS\n"
"routines in the Fortran calling convention (64-bit integers when ilp64).  The GIL is\n"
"released while the loop runs.\n\n"
"With x (B, T, features) float32: rec is [U; W] ((units + features), 4U), or its transpose\n"
"(4U, units + features) when rec_t is true; pre need not hold anything on entry, and each step\n"
"writes [h_tm1, x_t] @ [U; W] (+ bias (4U,) or None).");

static PyObject *kernel_run(PyObject *self, PyObject *args)
{
    PyObject *o_pre, *o_act, *o_c, *o_h, *o_h0, *o_c0, *o_rec, *o_mask;
    PyObject *o_x = Py_None, *o_bias = Py_None;
    Py_ssize_t T, B, U, F = 0;
    int backwards, ract, cact, ilp64, rec_t = 0;
    unsigned long long p_gemm, p_gemv;
    if (!PyArg_ParseTuple(args, "OOOOOOOOnnnpiiKKp|OOnp", &o_pre, &o_act, &o_c, &o_h, &o_h0,
                          &o_c0, &o_rec, &o_mask, &T, &B, &U, &backwards, &ract, &cact,
                          &p_gemm, &p_gemv, &ilp64, &o_x, &o_bias, &F, &rec_t))
        return NULL;
    /* x mode (x given): rec is [U; W] (U + F rows) and pre receives the whole
     * pre-activation: each step's product [h_tm1, x_t] @ [U; W] is written once, plus the
     * bias, instead of a separate input projection filling pre beforehand */
    const int xmode = o_x != Py_None;
    if (!xmode)
        F = 0;
    const int rt = xmode && rec_t; /* rec given transposed, (4U, F + U) */
    if (T < 0 || B < 1 || U < 1 || ract < 0 || ract >= ACT_COUNT || cact < 0 ||
        cact >= ACT_COUNT || p_gemm == 0 || p_gemv == 0) {
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
#ifdef LSTMVIZ_PACKED
    const int isa = xmode ? packed_isa() : 0;
#else
    const int isa = 0;
#endif
    float *wp = NULL;     /* isa: the packed weights, 64-byte aligned */
    void *wp_mem = NULL;
#ifdef LSTMVIZ_PACKED
    if (isa) {
        const Py_ssize_t NR = packed_nr(isa), n_wp = ((U4 + NR - 1) / NR) * NR * K;
        wp_mem = PyMem_RawMalloc((size_t)n_wp * sizeof(float) + 64);
        if (wp_mem == NULL) {
            PyMem_RawFree(xh_mem);
            release(bufs, 10);
            return PyErr_NoMemory();
        }
        wp = (float *)(((uintptr_t)wp_mem + 63) & ~(uintptr_t)63);
    }
#endif
    const int fused = ract == ACT_SIGMOID && cact == ACT_TANH;
    float *coef = NULL;
    if (fused) {
        coef = PyMem_RawMalloc((size_t)(2 * U4) * sizeof(float));
        if (coef == NULL) {
            PyMem_RawFree(wp_mem);
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
#ifdef LSTMVIZ_PACKED
    if (isa) pack_weights(rec, rt, wp, K, U4, packed_nr(isa));
#endif
    const int32_t m32 = (int32_t)U4, k32 = (int32_t)K, n32 = (int32_t)B, inc32 = 1;
    const int64_t m64 = U4, k64 = K, n64 = B, inc64 = 1;
    for (Py_ssize_t s = 0; s < T; s++) {
        const Py_ssize_t t = backwards ? T - 1 - s : s;
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
        if (isa) {
#ifdef LSTMVIZ_PACKED
            packed_product(isa, v, B, K, wp, U4, bias, z);
#endif
        } else if (rt && B > 1) {
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

    PyMem_RawFree(wp_mem);
    PyMem_RawFree(xh_mem);
    PyMem_RawFree(coef);
    release(bufs, 10);
    Py_RETURN_NONE;
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
    if (m != NULL) PyModule_AddIntConstant(m, "ABI", 1);
    return m;
}
