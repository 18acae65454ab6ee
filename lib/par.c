/* par.c - the thread pool of par.h.
 *
 * One barrier does all the synchronisation: a job is "barrier, fn, barrier"
 * on every thread, the caller having stored fn and arg before the first.
 * The barrier counts arrivals with an atomic; the last to arrive resets the
 * count and bumps a generation number, which the others wait on: spinning
 * for a few microseconds (the usual wait inside a training step), then
 * sleeping on a condition variable (between batches, or when the machine is
 * oversubscribed).
 */
#include "par.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define PAR_SPIN 4000     /* polls before sleeping, ~20-50 us */

typedef struct {
    par_pool *pool;
    int index;
} par_worker;

struct par_pool {
    int n;
    pthread_t *tid;             /* (n-1) workers */
    par_worker *workers;        /* (n-1) */
    atomic_int count;           /* arrivals at the current barrier */
    atomic_uint gen;            /* barriers completed */
    pthread_mutex_t mu;         /* guards sleeping on cv */
    pthread_cond_t cv;
    par_fn fn;                  /* the current job */
    void *arg;
    int quit;                   /* set with fn = NULL to stop the workers */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void par_barrier(par_pool *p)
{
    if (!p || p->n == 1)
        return;
    unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&p->count, 1, memory_order_acq_rel) ==
        p->n - 1) {
        /* last to arrive: open the barrier */
        atomic_store_explicit(&p->count, 0, memory_order_relaxed);
        pthread_mutex_lock(&p->mu);
        atomic_store_explicit(&p->gen, g + 1, memory_order_release);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        return;
    }
    for (int s = 0; s < PAR_SPIN; s++) {
        if (atomic_load_explicit(&p->gen, memory_order_acquire) != g)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->gen, memory_order_acquire) == g)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *arg)
{
    par_worker *w = arg;
    par_pool *p = w->pool;
    for (;;) {
        par_barrier(p);                 /* a job (or quit) is posted */
        if (p->quit)
            return NULL;
        p->fn(p->arg, w->index, p->n);
        par_barrier(p);                 /* every thread is done */
    }
}

par_pool *par_new(int nthreads)
{
    if (nthreads < 1)
        return NULL;
    par_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = nthreads;
    atomic_init(&p->count, 0);
    atomic_init(&p->gen, 0);
    if (nthreads == 1)
        return p;
    p->tid = calloc((size_t)nthreads - 1, sizeof *p->tid);
    p->workers = calloc((size_t)nthreads - 1, sizeof *p->workers);
    if (!p->tid || !p->workers) {
        free(p->tid);
        free(p->workers);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 1; i < nthreads; i++) {
        p->workers[i - 1] = (par_worker){p, i};
        if (pthread_create(&p->tid[i - 1], NULL, worker_main,
                           &p->workers[i - 1]) != 0) {
            /* stop the ones started: a pool of i threads, told to quit */
            p->n = i;
            par_free(p);
            return NULL;
        }
    }
    return p;
}

void par_free(par_pool *p)
{
    if (!p)
        return;
    if (p->tid) {
        p->quit = 1;
        par_barrier(p);
        for (int i = 1; i < p->n; i++)
            pthread_join(p->tid[i - 1], NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    free(p->tid);
    free(p->workers);
    free(p);
}

int par_threads(const par_pool *p)
{
    return p ? p->n : 1;
}

void par_run(par_pool *p, par_fn fn, void *arg)
{
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    par_barrier(p);
    fn(arg, 0, p->n);
    par_barrier(p);
}

int par_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    return 1;
}
