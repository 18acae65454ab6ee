/* gemm-rate.c - print this machine's sgemm rate for given shapes, for the
 * speed-of-light ratios of `make bench`.
 * usage: gemm-rate [-j THREADS] M N K [M N K ...]
 * prints "kernel: NAME" then one "M N K GFLOPS" line per shape: the best
 * of 300 products, so that a busy moment does not lower the figure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

int main(int argc, char **argv)
{
    gemm_ensure_fast_kernel(argc, argv);
    int threads = 0, i = 1;
    if (argc > 2 && strcmp(argv[1], "-j") == 0) {
        threads = atoi(argv[2]);
        i = 3;
    }
    gemm_init(threads);
    printf("kernel: %s, %d threads\n", gemm_kernel_name(), gemm_threads());
    for (; i + 2 < argc; i += 3) {
        int M = atoi(argv[i]), N = atoi(argv[i + 1]), K = atoi(argv[i + 2]);
        printf("%d %d %d %.1f\n", M, N, K, gemm_measure_gflops(M, N, K, 300));
    }
    return 0;
}
