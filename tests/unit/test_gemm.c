/* test_gemm.c - gemm_f32 / gemm_f64 / gemm_gemv_f32 against a naive
 * double-precision triple loop, for every transpose combination, odd shapes
 * and padded leading dimensions.  Prints one ok / not ok line a check;
 * exits 0 when all pass.
 *
 * It calls gemm_ensure_fast_kernel() first, like every command, so running
 * it plain and with RBMKIT_BLAS_NOFIX=1 (or OPENBLAS_CORETYPE=Prescott)
 * covers the products with and without the kernel fix.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

static int failures, checks;

static void report(int ok, const char *what)
{
    checks++;
    if (!ok)
        failures++;
    printf("%s %d - %s\n", ok ? "ok" : "not ok", checks, what);
}

/* Deterministic values in [-1, 1), from a tiny LCG. */
static unsigned long long lcg = 12345;
static double next_val(void)
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(lcg >> 11) / (double)(1ULL << 53) * 2.0 - 1.0;
}

/* Stored shape of X when op(X) is (r, c): (r, c) or (c, r). */
static void stored(int trans, int r, int c, int *rows, int *cols)
{
    *rows = trans ? c : r;
    *cols = trans ? r : c;
}

/* ref (M, N) = alpha op(A) op(B) + beta C0, all row-major, in double. */
static void naive(int tA, int tB, int M, int N, int K, double alpha,
                  const double *A, int lda, const double *B, int ldb,
                  double beta, const double *C0, int ldc, double *ref,
                  double *mag)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0, m = 0.0;
            for (int k = 0; k < K; k++) {
                double a = tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
                m += fabs(a * b);
            }
            double c = beta == 0.0 ? 0.0 : beta * C0[(size_t)i * ldc + j];
            ref[(size_t)i * N + j] = alpha * s + c;
            /* scale for the tolerance: what rounding can act on */
            mag[(size_t)i * N + j] = fabs(alpha) * m + fabs(c) + 1e-30;
        }
}

/* One case in both precisions.  pad adds to every leading dimension.
 * beta == 0 fills C with NaN first: BLAS must not read it. */
static void check_case(int tA, int tB, int M, int N, int K, int pad,
                       double alpha, double beta)
{
    int ar, ac, br, bc;
    stored(tA, M, K, &ar, &ac);
    stored(tB, K, N, &br, &bc);
    int lda = (ac > 0 ? ac : 1) + pad, ldb = (bc > 0 ? bc : 1) + pad;
    int ldc = (N > 0 ? N : 1) + pad;
    size_t na = (size_t)(ar > 0 ? ar : 1) * lda;
    size_t nb = (size_t)(br > 0 ? br : 1) * ldb;
    size_t nc = (size_t)(M > 0 ? M : 1) * ldc;

    double *Ad = malloc(na * sizeof *Ad), *Bd = malloc(nb * sizeof *Bd);
    double *Cd = malloc(nc * sizeof *Cd), *C0 = malloc(nc * sizeof *C0);
    double *ref = malloc(((size_t)M * N + 1) * sizeof *ref);
    double *mag = malloc(((size_t)M * N + 1) * sizeof *mag);
    float *Af = malloc(na * sizeof *Af), *Bf = malloc(nb * sizeof *Bf);
    float *Cf = malloc(nc * sizeof *Cf);
    if (!Ad || !Bd || !Cd || !C0 || !ref || !mag || !Af || !Bf || !Cf) {
        report(0, "out of memory");
        goto done;
    }
    /* Values rounded to float, so both precisions see the same inputs. */
    for (size_t i = 0; i < na; i++)
        Af[i] = (float)next_val(), Ad[i] = Af[i];
    for (size_t i = 0; i < nb; i++)
        Bf[i] = (float)next_val(), Bd[i] = Bf[i];
    for (size_t i = 0; i < nc; i++) {
        C0[i] = beta == 0.0 ? NAN : (double)(float)next_val();
        Cf[i] = (float)C0[i];
        Cd[i] = C0[i];
    }
    naive(tA, tB, M, N, K, alpha, Ad, lda, Bd, ldb, beta, C0, ldc, ref, mag);

    gemm_f32(tA, tB, M, N, K, (float)alpha, Af, lda, Bf, ldb, (float)beta,
             Cf, ldc);
    gemm_f64(tA, tB, M, N, K, alpha, Ad, lda, Bd, ldb, beta, Cd, ldc);

    /* Relative to the sum of |terms|; padding must be left untouched. */
    double worst32 = 0.0, worst64 = 0.0;
    int pad_ok = 1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            size_t at = (size_t)i * ldc + j;
            if (j >= N) {
                int same = (isnan(C0[at]) && isnan(Cf[at]) && isnan(Cd[at]))
                    || ((double)Cf[at] == (double)(float)C0[at]
                        && Cd[at] == C0[at]);
                pad_ok &= same;
                continue;
            }
            double r = ref[(size_t)i * N + j], m = mag[(size_t)i * N + j];
            double e32 = fabs((double)Cf[at] - r) / m;
            double e64 = fabs(Cd[at] - r) / m;
            if (!(e32 <= worst32))
                worst32 = isnan(e32) ? INFINITY : e32;
            if (!(e64 <= worst64))
                worst64 = isnan(e64) ? INFINITY : e64;
        }
    /* float: K products each within ~2^-24, summed: a generous 1e-5 relative
     * to sum |a b| (the error bound grows like K eps, but blocked sums do far
     * better; 1e-5 still catches any wrong element).  double: 1e-12. */
    char what[160];
    snprintf(what, sizeof what,
             "gemm_f32 %c%c M=%d N=%d K=%d pad=%d alpha=%g beta=%g (err %.2g)",
             tA ? 'T' : 'N', tB ? 'T' : 'N', M, N, K, pad, alpha, beta,
             worst32);
    report(worst32 <= 1e-5 && pad_ok, what);
    snprintf(what, sizeof what,
             "gemm_f64 %c%c M=%d N=%d K=%d pad=%d alpha=%g beta=%g (err %.2g)",
             tA ? 'T' : 'N', tB ? 'T' : 'N', M, N, K, pad, alpha, beta,
             worst64);
    report(worst64 <= 1e-12 && pad_ok, what);
done:
    free(Ad); free(Bd); free(Cd); free(C0); free(ref); free(mag);
    free(Af); free(Bf); free(Cf);
}

static void check_gemv(int tA, int M, int N, int pad, float alpha,
                       float beta)
{
    int lda = (N > 0 ? N : 1) + pad;
    int nx = tA ? M : N, ny = tA ? N : M;
    float *A = malloc(((size_t)(M > 0 ? M : 1) * lda) * sizeof *A);
    float *x = malloc(((size_t)nx * 2 + 1) * sizeof *x);   /* incx = 2 */
    float *y = malloc(((size_t)ny + 1) * sizeof *y);
    double *ref = malloc(((size_t)ny + 1) * sizeof *ref);
    double *mag = malloc(((size_t)ny + 1) * sizeof *mag);
    if (!A || !x || !y || !ref || !mag) {
        report(0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < (size_t)(M > 0 ? M : 1) * lda; i++)
        A[i] = (float)next_val();
    for (int i = 0; i < nx * 2; i++)
        x[i] = (float)next_val();
    for (int i = 0; i < ny; i++)
        y[i] = beta == 0.0f ? NAN : (float)next_val();
    for (int i = 0; i < ny; i++) {
        double s = 0.0, m = 0.0;
        for (int k = 0; k < nx; k++) {
            double a = tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
            s += a * x[2 * k];
            m += fabs(a * x[2 * k]);
        }
        double c = beta == 0.0f ? 0.0 : (double)beta * y[i];
        ref[i] = alpha * s + c;
        mag[i] = fabs(alpha) * m + fabs(c) + 1e-30;
    }
    gemm_gemv_f32(tA, M, N, alpha, A, lda, x, 2, beta, y, 1);
    double worst = 0.0;
    for (int i = 0; i < ny; i++) {
        double e = fabs((double)y[i] - ref[i]) / mag[i];
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    char what[128];
    snprintf(what, sizeof what,
             "gemm_gemv_f32 %c M=%d N=%d pad=%d beta=%g (err %.2g)",
             tA ? 'T' : 'N', M, N, pad, beta, worst);
    report(worst <= 1e-5, what);
done:
    free(A); free(x); free(y); free(ref); free(mag);
}

int main(int argc, char **argv)
{
    gemm_ensure_fast_kernel(argc, argv);
    report(gemm_init(-1) == GEMM_E_ARG, "gemm_init rejects -1");
    report(gemm_init(0) == 0 && gemm_threads() >= 1, "gemm_init(0)");
    report(gemm_init(0) == 0, "gemm_init is idempotent");
    const char *name = gemm_kernel_name();
    report(name && *name, "gemm_kernel_name");
    printf("# kernel: %s, %d thread(s)\n", name ? name : "(null)",
           gemm_threads());

    static const int shapes[][3] = {
        { 1, 1, 1 }, { 7, 13, 5 }, { 13, 7, 5 }, { 5, 1, 9 }, { 1, 9, 5 },
        { 3, 4, 0 }, { 33, 65, 129 }, { 100, 784, 500 }, { 100, 500, 784 },
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int tA = 0; tA < 2; tA++)
            for (int tB = 0; tB < 2; tB++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                check_case(tA, tB, M, N, K, 0, 1.0, 0.0);
                check_case(tA, tB, M, N, K, 3, -0.5, 0.75);
            }
    /* the RBM gradient, W' x H with a learning-rate alpha, accumulating */
    check_case(1, 0, 784, 500, 100, 11, 0.01, 1.0);
    for (int tA = 0; tA < 2; tA++) {
        check_gemv(tA, 1, 1, 0, 1.0f, 0.0f);
        check_gemv(tA, 7, 13, 2, 0.5f, 0.25f);
        check_gemv(tA, 100, 784, 5, 1.0f, 0.0f);
        check_gemv(tA, 4, 0, 1, 1.0f, 0.5f);
    }

    double g = gemm_measure_gflops(64, 64, 64, 3);
    report(g > 0.0 && isfinite(g), "gemm_measure_gflops positive");
    report(gemm_measure_gflops(0, 4, 4, 1) == GEMM_E_ARG,
           "gemm_measure_gflops rejects an empty shape");
    report(strcmp(gemm_strerror(GEMM_E_NOMEM), "out of memory") == 0,
           "gemm_strerror");

    printf("# %d of %d checks failed\n", failures, checks);
    return failures ? 1 : 0;
}
