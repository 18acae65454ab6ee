/* gemm.h - the single entry point for dense matrix products.
 *
 * Every product in rbmkit goes through here, so the BLAS in use (OpenBLAS,
 * BLIS or the reference BLAS behind Debian's libblas.so.3 alternative) is
 * chosen, tuned and named in one place.  The functions call the standard
 * Fortran symbols sgemm_ / dgemm_ / sgemv_; the optional library-specific
 * symbols (openblas_*, bli_*) are looked up at run time with dlsym, so the
 * code links against any BLAS.  Link with -lblas (and -ldl on glibc < 2.34).
 *
 * Layout: every matrix is row-major with a leading dimension (the distance,
 * in elements, between the starts of two consecutive rows): element (i, j)
 * of A is A[i*lda + j].  op(X) is X, or X' when the trans flag is nonzero.
 *
 * Nothing here prints or exits.  gemm_ensure_fast_kernel() and gemm_init()
 * are meant to be called once, early, from the main thread; the products
 * themselves may be called from any thread.
 */
#ifndef RBMKIT_GEMM_H
#define RBMKIT_GEMM_H

#define GEMM_NOTRANS 0
#define GEMM_TRANS   1

#define GEMM_E_ARG  (-1)     /* invalid argument */
#define GEMM_E_NOMEM (-2)    /* out of memory */

/* Message for a GEMM_E_* code; never NULL. */
const char *gemm_strerror(int err);

/* Make an OpenBLAS with run-time kernel selection (DYNAMIC_ARCH) use the
 * kernels this CPU supports.  OpenBLAS picks its kernel once, in a library
 * constructor that runs before main(); if its CPU table does not know the
 * processor it falls back to an older, slower core (e.g. Prescott, 2.5x
 * slower for sgemm).  When that happened this function sets
 * OPENBLAS_CORETYPE to the best core for the CPU's instruction set (SkylakeX
 * for AVX-512, Haswell for AVX2+FMA, Sandybridge for AVX) and re-executes
 * the program (/proc/self/exe) with the same argv, so the constructor runs
 * again with the right choice.  Call it first thing in main(), before any
 * input is read or output written.  It does nothing when:
 *   - the environment has RBMKIT_BLAS_NOFIX set to a value other than "0"
 *     or "" (the documented way to turn the fix off),
 *   - the user already set OPENBLAS_CORETYPE,
 *   - this process is the re-executed one (RBMKIT_REEXEC, removed here),
 *   - the BLAS is not OpenBLAS, or the loaded core is as good as the CPU's.
 * If exec fails the program simply continues with the kernel it has.
 * argv must be main's argv (argv[argc] == NULL). */
void gemm_ensure_fast_kernel(int argc, char **argv);

/* Set the number of BLAS threads: nthreads >= 1, or 0 for every CPU this
 * process may run on.  Uses openblas_set_num_threads() or
 * bli_thread_set_num_threads() when the library has them (a BLAS without
 * either is single-threaded or follows OMP_NUM_THREADS).  Calling it again
 * with the same count does nothing.  Returns 0, or GEMM_E_ARG when
 * nthreads < 0. */
int gemm_init(int nthreads);

/* The thread count last set by gemm_init(), or 0 before any call. */
int gemm_threads(void);

/* The BLAS and kernel actually in use, e.g. "OpenBLAS 0.3.21 SkylakeX",
 * "BLIS 0.9.0 zen3", or for a BLAS that does not say, the file the sgemm_
 * symbol comes from: "BLAS from /usr/lib/.../blas/libblas.so.3".  Static
 * storage owned by this module, valid for the life of the process. */
const char *gemm_kernel_name(void);

/* C = alpha * op(A) * op(B) + beta * C, single precision.
 *   op(A) is (M, K): A is (M, K) with lda >= K, or (K, M) with lda >= M
 *   op(B) is (K, N): B is (K, N) with ldb >= N, or (N, K) with ldb >= K
 *   C is (M, N) with ldc >= N
 * When beta == 0, C is not read (it may hold garbage or NaN).
 * M, N, K >= 0; a zero M or N does nothing, K == 0 gives C = beta*C.
 * C must not overlap A or B. */
void gemm_f32(int transA, int transB, int M, int N, int K,
              float alpha, const float *A, int lda,
              const float *B, int ldb,
              float beta, float *C, int ldc);

/* The same in double precision (dgemm_), for AIS, CCA and LAPACK-side code. */
void gemm_f64(int transA, int transB, int M, int N, int K,
              double alpha, const double *A, int lda,
              const double *B, int ldb,
              double beta, double *C, int ldc);

/* y = alpha * op(A) * x + beta * y, single precision.
 *   A is (M, N) with lda >= N; op(A) is A (x has N, y has M elements) or
 *   A' (x has M, y has N elements); incx, incy != 0 are element strides.
 * When beta == 0, y is not read. */
void gemm_gemv_f32(int transA, int M, int N,
                   float alpha, const float *A, int lda,
                   const float *x, int incx,
                   float beta, float *y, int incy);

/* Time C = A*B with A (M, K), B (K, N) row-major, single precision: one
 * warm-up call, then `reps` timed calls (reps < 1 counts as 1).  Returns
 * the best rate seen, in GFLOP/s (2*M*N*K flops a call): the machine's
 * speed of light for that shape, against which `make bench` sets its
 * figures.  Returns a negative GEMM_E_* code on bad shapes or no memory. */
double gemm_measure_gflops(int M, int N, int K, int reps);

#endif
