/* tensor/util.c - small helpers shared by the tensor subcommands in
 * cmd/tensor/io.c, cmd/tensor/text.c (declared in cmd/tensor.h). */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"
#include "tensor.h"

void *tensor_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        cli_die("out of memory");
    return p;
}

void tensor_option_error(int c, char **argv)
{
    if (c == ':') {
        if (optopt > 0 && optopt < 256)
            cli_usage_error("%s: option '-%c' requires an argument", argv[0], optopt);
        cli_usage_error("%s: option '%s' requires an argument", argv[0], argv[optind - 1]);
    }
    if (optopt > 0 && optopt < 256)
        cli_usage_error("%s: unknown option '-%c'", argv[0], optopt);
    cli_usage_error("%s: unknown option '%s'", argv[0], argv[optind - 1]);
}

const char *tensor_one_operand(int argc, char **argv)
{
    if (argc - optind > 1)
        cli_usage_error("%s: too many operands (one FILE at most)", argv[0]);
    return optind < argc ? argv[optind] : NULL;
}

void tensor_finish_writer(tz_writer *w)
{
    int e = tz_writer_close(w);
    if (e)
        cli_die_writer("", w, e);
    tz_writer_free(w);
    cli_close_stdout();
}
