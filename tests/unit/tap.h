/* tap.h - the TAP output every C unit test shares: ok(cond, fmt, ...)
 * prints "ok N - ..." or "not ok N - ..." (flushed, so a crash keeps what
 * came before), and tap_done() prints the plan and gives main's status.
 * Header-only; include it once per test program. */
#ifndef RBMKIT_TAP_H
#define RBMKIT_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int n_test, n_fail;

static void ok(int cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s %d - ", cond ? "ok" : "not ok", ++n_test);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (!cond)
        n_fail++;
}

/* "1..N"; returns 1 when any check failed, else 0. */
static int tap_done(void)
{
    printf("1..%d\n", n_test);
    return n_fail != 0;
}

#endif
