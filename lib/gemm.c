/* gemm.c - matrix products through the Fortran BLAS symbols (gemm.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE      /* RTLD_DEFAULT, sched_getaffinity */
#endif
#include "gemm.h"

#include <assert.h>
#include <dlfcn.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* The Fortran BLAS, LP64 (32-bit INTEGER).  gfortran passes the length of
 * each CHARACTER argument as a trailing hidden size_t; a Fortran-compiled
 * BLAS (the reference one) may read it, a C one (OpenBLAS, BLIS) ignores
 * it, so we always pass it. */
void sgemm_(const char *transa, const char *transb,
            const int *m, const int *n, const int *k,
            const float *alpha, const float *a, const int *lda,
            const float *b, const int *ldb,
            const float *beta, float *c, const int *ldc,
            size_t transa_len, size_t transb_len);
void dgemm_(const char *transa, const char *transb,
            const int *m, const int *n, const int *k,
            const double *alpha, const double *a, const int *lda,
            const double *b, const int *ldb,
            const double *beta, double *c, const int *ldc,
            size_t transa_len, size_t transb_len);
void sgemv_(const char *trans, const int *m, const int *n,
            const float *alpha, const float *a, const int *lda,
            const float *x, const int *incx,
            const float *beta, float *y, const int *incy,
            size_t trans_len);

const char *gemm_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case GEMM_E_ARG: return "invalid argument";
    case GEMM_E_NOMEM: return "out of memory";
    default: return "unknown error";
    }
}

/* ---- optional library symbols, found at run time ---------------------- */

/* dlsym returns an object pointer; copying it into a function pointer with
 * memcpy is the conversion POSIX guarantees to work. */
static void *sym(const char *name)
{
    return dlsym(RTLD_DEFAULT, name);
}

typedef char *(*str_fn)(void);
typedef void (*setint_fn)(int);
typedef void (*setdim_fn)(int64_t);   /* BLIS dim_t is int64_t */
typedef int (*archid_fn)(void);
typedef const char *(*archstr_fn)(int);
typedef const char *(*cstr_fn)(void);

#define LOOKUP(var, name) do { void *p_ = sym(name); \
        memcpy(&(var), &p_, sizeof(var)); } while (0)

/* ---- the kernel fix --------------------------------------------------- */

/* OpenBLAS core names by the widest vector ISA their sgemm kernel uses:
 * 1 SSE, 2 AVX, 3 AVX2+FMA, 4 AVX-512.  0 = not listed (leave it alone). */
static int core_level(const char *core)
{
    static const char *const sse[] = {
        "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom",
        "Opteron", "Opteron_SSE3", "Barcelona", "Bobcat", "Katmai",
        "Coppermine", "Northwood", "Banias", "Athlon", "Generic", NULL
    };
    static const char *const avx[] = {
        "Sandybridge", "Bulldozer", "Piledriver", "Steamroller",
        "Excavator", NULL
    };
    static const char *const avx2[] = { "Haswell", "Zen", NULL };
    static const char *const avx512[] = {
        "SkylakeX", "Cooperlake", "SapphireRapids", NULL
    };
    static const char *const *const levels[] = { sse, avx, avx2, avx512 };
    for (int l = 0; l < 4; l++)
        for (const char *const *p = levels[l]; *p; p++)
            if (strcasecmp(core, *p) == 0)
                return l + 1;
    return 0;
}

/* The best OpenBLAS core for this CPU, by instruction set (the compiler's
 * check includes the OS saving the wider registers), and its level.
 * SkylakeX rather than Cooperlake for AVX-512: the two share their sgemm
 * and dgemm kernels (Cooperlake adds bf16) and SkylakeX needs no bf16. */
static const char *best_core(int *level)
{
#if (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512cd")) {
        *level = 4;
        return "SkylakeX";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *level = 3;
        return "Haswell";
    }
    if (__builtin_cpu_supports("avx")) {
        *level = 2;
        return "Sandybridge";
    }
#endif
    *level = 0;
    return NULL;
}

static int env_on(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

void gemm_ensure_fast_kernel(int argc, char **argv)
{
    if (env_on("RBMKIT_BLAS_NOFIX"))
        return;
    if (getenv("RBMKIT_REEXEC")) {
        /* We are the re-executed copy: keep the environment clean for
         * anything we start; OPENBLAS_CORETYPE stays, so no loop. */
        unsetenv("RBMKIT_REEXEC");
        return;
    }
    if (getenv("OPENBLAS_CORETYPE"))
        return;                      /* the user's choice wins */
    if (argc < 1 || !argv || !argv[0] || argv[argc] != NULL)
        return;

    str_fn corename, config;
    LOOKUP(corename, "openblas_get_corename");
    LOOKUP(config, "openblas_get_config");
    if (!corename || !config)
        return;                      /* not OpenBLAS */
    const char *cfg = config();
    if (!cfg || !strstr(cfg, "DYNAMIC_ARCH"))
        return;                      /* kernel fixed at build time */
    const char *core = corename();
    int have = core ? core_level(core) : 0;
    int want;
    const char *best = best_core(&want);
    if (!best || have == 0 || have >= want)
        return;

    if (setenv("OPENBLAS_CORETYPE", best, 1) != 0)
        return;
    if (setenv("RBMKIT_REEXEC", "1", 1) != 0) {
        unsetenv("OPENBLAS_CORETYPE");
        return;
    }
    fflush(NULL);
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc, say): carry on with the kernel we have. */
    unsetenv("RBMKIT_REEXEC");
    unsetenv("OPENBLAS_CORETYPE");
}

/* ---- threads and names ------------------------------------------------ */

static int cur_threads;

static int cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 4096 ? (int)n : 1;
}

int gemm_init(int nthreads)
{
    if (nthreads < 0)
        return GEMM_E_ARG;
    int n = nthreads ? nthreads : cpu_count();
    if (n == cur_threads)
        return 0;
    setint_fn ob_set;
    setdim_fn bli_set;
    LOOKUP(ob_set, "openblas_set_num_threads");
    LOOKUP(bli_set, "bli_thread_set_num_threads");
    if (ob_set)
        ob_set(n);
    else if (bli_set)
        bli_set((int64_t)n);
    cur_threads = n;
    return 0;
}

int gemm_threads(void)
{
    return cur_threads;
}

const char *gemm_kernel_name(void)
{
    static char name[128];
    if (name[0])
        return name;

    str_fn ob_core, ob_config;
    LOOKUP(ob_core, "openblas_get_corename");
    LOOKUP(ob_config, "openblas_get_config");
    if (ob_core && ob_config) {
        /* config starts "OpenBLAS 0.3.21 ..."; keep those two words. */
        const char *cfg = ob_config();
        const char *core = ob_core();
        int len = 0;
        for (int words = 0; cfg && cfg[len] && len < 40; len++)
            if (cfg[len] == ' ' && ++words == 2)
                break;
        snprintf(name, sizeof name, "%.*s %s", len,
                 cfg ? cfg : "OpenBLAS", core ? core : "?");
        return name;
    }

    cstr_fn bli_version;
    archid_fn bli_arch_id;
    archstr_fn bli_arch_str;
    LOOKUP(bli_version, "bli_info_get_version_str");
    LOOKUP(bli_arch_id, "bli_arch_query_id");
    LOOKUP(bli_arch_str, "bli_arch_string");
    if (bli_version && bli_arch_id && bli_arch_str) {
        const char *v = bli_version();
        const char *a = bli_arch_str(bli_arch_id());
        snprintf(name, sizeof name, "BLIS %s %s", v ? v : "?",
                 a ? a : "?");
        return name;
    }

    if (sym("mkl_get_max_threads")) {
        snprintf(name, sizeof name, "Intel MKL");
        return name;
    }
    /* Otherwise name the file sgemm_ comes from: the reference BLAS, or
     * BLIS's libblas.so.3, which exports no bli_* symbols. */
    Dl_info info;
    void *f = sym("sgemm_");
    if (f && dladdr(f, &info) && info.dli_fname && *info.dli_fname)
        snprintf(name, sizeof name, "BLAS from %.100s", info.dli_fname);
    else
        snprintf(name, sizeof name, "unknown BLAS");
    return name;
}

/* ---- products --------------------------------------------------------- */

/* Row-major C (M,N) = op(A) op(B) is column-major C' (N,M) = op(B)' op(A)',
 * and a row-major array read column-major is its transpose, so: swap the
 * operands, swap M and N, keep the trans flags. */

static int ok_shapes(int tA, int tB, int M, int N, int K,
                     int lda, int ldb, int ldc)
{
    if (M < 0 || N < 0 || K < 0)
        return 0;
    int acols = tA ? M : K, bcols = tB ? K : N;
    return lda >= (acols > 1 ? acols : 1) && ldb >= (bcols > 1 ? bcols : 1)
        && ldc >= (N > 1 ? N : 1);
}

void gemm_f32(int transA, int transB, int M, int N, int K,
              float alpha, const float *A, int lda,
              const float *B, int ldb,
              float beta, float *C, int ldc)
{
    assert(ok_shapes(transA, transB, M, N, K, lda, ldb, ldc));
    if (M == 0 || N == 0)
        return;
    const char *ta = transA ? "T" : "N", *tb = transB ? "T" : "N";
    sgemm_(tb, ta, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc,
           1, 1);
}

void gemm_f64(int transA, int transB, int M, int N, int K,
              double alpha, const double *A, int lda,
              const double *B, int ldb,
              double beta, double *C, int ldc)
{
    assert(ok_shapes(transA, transB, M, N, K, lda, ldb, ldc));
    if (M == 0 || N == 0)
        return;
    const char *ta = transA ? "T" : "N", *tb = transB ? "T" : "N";
    dgemm_(tb, ta, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc,
           1, 1);
}

void gemm_gemv_f32(int transA, int M, int N,
                   float alpha, const float *A, int lda,
                   const float *x, int incx,
                   float beta, float *y, int incy)
{
    assert(M >= 0 && N >= 0 && lda >= (N > 1 ? N : 1));
    assert(incx != 0 && incy != 0);
    if (M == 0 || N == 0) {
        /* BLAS leaves y alone here; keep y = beta*y for the caller. */
        int ny = transA ? N : M;
        size_t step = (size_t)(incy < 0 ? -incy : incy);
        for (size_t i = 0; i < (size_t)ny; i++)
            y[i * step] = beta == 0.0f ? 0.0f : beta * y[i * step];
        return;
    }
    /* The column-major view of A is A' (N, M). */
    const char *t = transA ? "N" : "T";
    sgemv_(t, &N, &M, &alpha, A, &lda, x, &incx, &beta, y, &incy, 1);
}

/* ---- speed of light --------------------------------------------------- */

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double gemm_measure_gflops(int M, int N, int K, int reps)
{
    if (M < 1 || N < 1 || K < 1)
        return GEMM_E_ARG;
    if (reps < 1)
        reps = 1;
    size_t m = (size_t)M, n = (size_t)N, k = (size_t)K;
    size_t na = m * k, nb = k * n, nc = m * n;
    float *A = malloc(na * sizeof *A);
    float *B = malloc(nb * sizeof *B);
    float *C = malloc(nc * sizeof *C);
    if (!A || !B || !C) {
        free(A);
        free(B);
        free(C);
        return GEMM_E_NOMEM;
    }
    /* Small, exactly representable values; no denormals, no overflow. */
    for (size_t i = 0; i < na; i++)
        A[i] = (float)((int)(i % 17) - 8) / 16.0f;
    for (size_t i = 0; i < nb; i++)
        B[i] = (float)((int)(i % 13) - 6) / 16.0f;

    gemm_f32(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);   /* warm up */
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        double t0 = now_sec();
        gemm_f32(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
        double dt = now_sec() - t0;
        if (dt > 0.0 && (best == 0.0 || dt < best))
            best = dt;
    }
    free(A);
    free(B);
    free(C);
    if (best <= 0.0)
        best = 1e-9;
    return 2.0 * M * N * (double)K / best * 1e-9;
}
