/* par.h - a tiny persistent thread pool for data-parallel loops.
 *
 * A pool of n threads runs one function at a time on all of them: the
 * caller is thread 0, n-1 workers started once by par_new() are the rest.
 * Inside that function the threads may meet at par_barrier().  Waiting
 * spins briefly, then sleeps, so a pool costs nothing between jobs.
 *
 * Work is split by index ranges (par_split), never by timing, so results
 * are deterministic for a given thread count.  The products inside a job
 * should run single-threaded BLAS (gemm_init(1)): our threads own the cores.
 */
#ifndef RBMKIT_PAR_H
#define RBMKIT_PAR_H

#include <stdint.h>

typedef struct par_pool par_pool;

/* Job body: called once per thread with its index i in [0, n). */
typedef void (*par_fn)(void *arg, int i, int n);

/* A pool of nthreads >= 1 threads (1: no threads are started and par_run
 * calls fn directly).  Returns NULL if nthreads < 1 or a thread cannot be
 * created.  The caller owns the pool; par_free(NULL) is a no-op. */
par_pool *par_new(int nthreads);
void par_free(par_pool *p);

/* Number of threads of the pool (1 for NULL). */
int par_threads(const par_pool *p);

/* Run fn(arg, i, n) on every thread of the pool (the caller as i = 0) and
 * return when all have returned.  p may be NULL: fn(arg, 0, 1).  Not
 * reentrant: one job at a time, from one thread. */
void par_run(par_pool *p, par_fn fn, void *arg);

/* Inside a job: wait until every thread of the pool has arrived here.  Its
 * memory effects: everything written before the barrier by any thread is
 * visible after it to all.  A no-op for a NULL or 1-thread pool. */
void par_barrier(par_pool *p);

/* Start of part i of [0, n) cut into `parts` near-equal contiguous parts;
 * part i is [par_split(n, parts, i), par_split(n, parts, i + 1)). */
static inline int par_split(int n, int parts, int i)
{
    return (int)((int64_t)n * i / parts);
}

/* CPUs this process may run on (sched_getaffinity), at least 1. */
int par_cpu_count(void);

#endif
