/* gemm-rate.c - print this machine's sgemm rate for given shapes, for the
 * speed-of-light ratios of `make bench`.
 * usage: gemm-rate [-j THREADS] M N K [M N K ...]
 * prints "kernel: NAME" then one "M N K GFLOPS" line per shape: the best
 * product seen in 2 seconds of trying, so that a busy moment of a shared
 * machine does not lower the figure (and flatter the ratios). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
        double best = 0;
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do {
            double g = gemm_measure_gflops(M, N, K, 50);
            if (g > best) best = g;
            clock_gettime(CLOCK_MONOTONIC, &t);
        } while ((t.tv_sec - t0.tv_sec) + 1e-9 * (t.tv_nsec - t0.tv_nsec) < 2.0);
        printf("%d %d %d %.1f\n", M, N, K, best);
    }
    return 0;
}
