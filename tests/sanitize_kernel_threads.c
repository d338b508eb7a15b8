/* The kernel's threaded recurrence without the interpreter, for ThreadSanitizer
 * (tests/sanitize_kernel.py builds and runs it).  ThreadSanitizer needs the whole program
 * instrumented, which Python is not; this driver includes the kernel's source and runs its
 * workers directly on random problems: 1 to 5 threads, unit chunks and batch-row blocks of
 * odd sizes, batch 1 and larger; then backwards, masked and partial problems (a what-if's
 * retrace: steps lo .. hi only) on up to 8 threads -- more threads than cores, so that the OS
 * keeps some waiting while the others take their chunks, and the waits go to sleep -- two
 * problems at once from two calling threads (two of the app's workers tracing together).
 * A data race fails the run; so does any difference between the hidden states on one thread
 * and on several (the split must not change a bit). */
#include "../lstmviz/engine/_lstm_kernel.c"
#include <stdio.h>
#include <stdlib.h>

#ifndef LSTMVIZ_THREADS
int main(void)
{
    printf("skipped: this build has no threaded packed recurrence (x86-64 GCC/Clang only)\n");
    return 0;
}
#else

static void *al(size_t n) { return aligned_alloc(64, ((n + 63) / 64) * 64); }

static float *fill(size_t n, unsigned *seed, float scale)
{
    float *a = al(n * 4 + 64);
    for (size_t i = 0; i < n; i++) a[i] = scale * ((float)rand_r(seed) / RAND_MAX - 0.5f);
    return a;
}

typedef struct {
    int backwards, masked;
    Py_ssize_t lo, hi; /* hi 0: all steps */
} variant_t;

static const variant_t PLAIN = {0, 0, 0, 0};

static double run_v(int nthreads, Py_ssize_t T, Py_ssize_t B, Py_ssize_t U, Py_ssize_t F,
                    Py_ssize_t cu, Py_ssize_t cr, float *h_out, variant_t v)
{
    unsigned seed = 7;
    const Py_ssize_t K = U + F, U4 = 4 * U;
    job_t *J = al(sizeof(job_t));
    memset(J, 0, sizeof *J);
    J->pre = fill(T * B * U4, &seed, 0);
    J->act = fill(T * B * U4, &seed, 0);
    J->cs = fill(T * B * U, &seed, 0);
    memset(h_out, 0, (size_t)(T * B * U) * 4); /* the steps outside lo .. hi stay 0 */
    J->hs = h_out;
    float *h0 = fill(B * U, &seed, 1), *c0 = fill(B * U, &seed, 1);
    J->h0 = h0;
    J->c0 = c0;
    float *ukw = fill(K * U4, &seed, 0.5f), *bias = fill(U4, &seed, 1);
    float *x = fill(B * T * F, &seed, 2);
    J->x = x;
    unsigned char *mask = NULL;
    if (v.masked) {
        mask = al((size_t)(B * T));
        for (Py_ssize_t i = 0; i < B * T; i++) mask[i] = rand_r(&seed) % 4 != 0;
    }
    J->mask = mask;
    J->T = T; J->B = B; J->U = U; J->F = F;
    J->lo = v.lo; J->hi = v.hi > 0 ? v.hi : T; J->backwards = v.backwards;
    J->ract = ACT_SIGMOID; J->cact = ACT_TANH; J->isa = packed_isa();
    Py_ssize_t n_pack;
    pack_layout(J->isa, U, F, B, cu, &J->nuc, &J->NR, &J->ncp_max, &n_pack);
    J->chunk_units = cu; J->chunk_rows = cr;
    J->nrb = (B + cr - 1) / cr; J->nchunks = J->nuc * J->nrb;
    float *wpack = al(n_pack * 4);
    pack_all(J->isa, ukw, bias, U, F, B, cu, wpack);
    J->wp = wpack;
    J->bp = wpack + J->nuc * K * J->ncp_max;
    int n = nthreads < J->nchunks ? nthreads : (int)J->nchunks;
    float *scratch = al(n * (cr + 1) * J->ncp_max * 4);
    J->scratch = scratch;
    J->apack = B > 1 && J->isa == ISA_AVX512 ? al(n * cr * K * 4) : NULL; /* packed rows */
    for (int k = 0; k < MAX_THREADS; k++) J->apack_key[k] = -1;
    J->nthreads = n;
    for (int k = 0; k <= n; k++) J->own_begin[k] = (Py_ssize_t)k * J->nchunks / n;
    worker_arg_t wa[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    for (int k = 0; k < n; k++) { wa[k].job = J; wa[k].k = k; }
    for (int k = 1; k < n; k++) pthread_create(&tid[k], NULL, worker, &wa[k]);
    worker(&wa[0]);
    for (int k = 1; k < n; k++) pthread_join(tid[k], NULL);
    double sum = 0;
    for (Py_ssize_t i = 0; i < T * B * U; i++) sum += h_out[i];
    free(J->apack); free(scratch); free(wpack); free(mask); free(x); free(ukw); free(bias);
    free(h0); free(c0); free(J->cs); free(J->act); free(J->pre); free(J);
    return sum;
}

static double run(int nthreads, Py_ssize_t T, Py_ssize_t B, Py_ssize_t U, Py_ssize_t F,
                  Py_ssize_t cu, Py_ssize_t cr, float *h_out)
{
    return run_v(nthreads, T, B, U, F, cu, cr, h_out, PLAIN);
}

/* the second group of cases: T, B, U, F, chunk units, chunk rows, then the variant
 * (backwards, masked, lo, hi) */
typedef struct {
    Py_ssize_t p[6];
    variant_t v;
} vcase_t;

static const vcase_t VCASES[] = {
    {{40, 1, 97, 5, 8, 1}, {1, 0, 0, 0}},  {{30, 9, 33, 4, 8, 2}, {0, 1, 0, 0}},
    {{33, 3, 40, 3, 8, 1}, {1, 1, 0, 0}},  {{40, 1, 64, 5, 8, 1}, {0, 0, 17, 40}},
    {{40, 5, 24, 3, 8, 2}, {1, 1, 0, 23}}, {{26, 32, 20, 16, 8, 4}, {0, 1, 9, 26}},
};
#define NVCASES ((int)(sizeof VCASES / sizeof VCASES[0]))

typedef struct {
    int c, nthreads, bad;
} caller_arg_t;

/* one calling thread: VCASES[c] on nthreads threads, compared with one thread */
static void *caller(void *arg)
{
    caller_arg_t *a = arg;
    const vcase_t *vc = &VCASES[a->c];
    const Py_ssize_t *p = vc->p, n = p[0] * p[1] * p[2];
    float *h1 = al(n * 4 + 64), *hn = al(n * 4 + 64);
    run_v(1, p[0], p[1], p[2], p[3], p[4], p[5], h1, vc->v);
    run_v(a->nthreads, p[0], p[1], p[2], p[3], p[4], p[5], hn, vc->v);
    a->bad = memcmp(h1, hn, (size_t)n * 4) != 0;
    free(h1);
    free(hn);
    return NULL;
}

int main(void)
{
    if (packed_isa() == ISA_NONE) {
        printf("skipped: this CPU has no AVX2 + FMA for the packed product\n");
        return 0;
    }
    /* T, B, U, F, chunk units, chunk rows; the last two take every packed AVX-512 tile */
    const Py_ssize_t cases[][6] = {{40, 1, 97, 5, 8, 1}, {30, 9, 33, 4, 8, 2}, {20, 32, 20, 16, 32, 8},
                                   {25, 3, 64, 3, 16, 3}, {12, 31, 40, 5, 16, 31},
                                   {10, 47, 24, 3, 8, 16}};
    for (int c = 0; c < 6; c++) {
        const Py_ssize_t *p = cases[c];
        float *h1 = al(p[0] * p[1] * p[2] * 4 + 64);
        float *hn = al(p[0] * p[1] * p[2] * 4 + 64);
        run(1, p[0], p[1], p[2], p[3], p[4], p[5], h1);
        for (int n = 2; n <= 5; n++) {
            run(n, p[0], p[1], p[2], p[3], p[4], p[5], hn);
            if (memcmp(h1, hn, p[0] * p[1] * p[2] * 4) != 0) { printf("MISMATCH case %d threads %d\n", c, n); return 1; }
        }
    }
    /* backwards, masked, partial; up to 8 threads (more than the cores); two at once */
    for (int c = 0; c < NVCASES; c++) {
        for (int n = 2; n <= 8; n += 3) {
            caller_arg_t a[2] = {{c, n, 0}, {(c + 1) % NVCASES, 10 - n, 0}};
            pthread_t other;
            pthread_create(&other, NULL, caller, &a[1]);
            caller(&a[0]);
            pthread_join(other, NULL);
            for (int k = 0; k < 2; k++)
                if (a[k].bad) {
                    printf("MISMATCH variant case %d threads %d\n", a[k].c, a[k].nthreads);
                    return 1;
                }
        }
    }
    printf("threaded recurrence under ThreadSanitizer: no race, same bits on 1-8 threads "
           "(backwards, masked, partial; two problems at once)\n");
    return 0;
}
#endif
