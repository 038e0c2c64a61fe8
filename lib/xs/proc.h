/*
 * proc.h: what every xero-sync process does at start and stop.
 *
 * xs_proc_start handles --help and --version, blocks the stop signals (SIGTERM, SIGINT) in
 * the calling thread so every thread started afterwards inherits the mask and only the main
 * thread receives them (through xs_proc_wait_signal), ignores SIGPIPE, raises the soft limit
 * of open descriptors to the hard one (logged as process.start's fd_limit; -1 for none),
 * loads and validates the
 * configuration (one clear error line naming the bad variable, exit code 2), and opens the
 * structured log at XS_LOG_LEVEL. Call it first in main, before starting any thread.
 */
#ifndef XS_PROC_H
#define XS_PROC_H

#include <stdint.h>

#include "xs/clock.h"
#include "xs/config.h"
#include "xs/err.h"
#include "xs/log.h"

#ifndef XS_VERSION
#define XS_VERSION "0.0.0"
#endif

/* Exit codes of every process. */
#define XS_EXIT_OK     0 /* stopped cleanly (SIGTERM/SIGINT) or finished its work */
#define XS_EXIT_FAIL   1 /* a runtime failure (see the log) */
#define XS_EXIT_CONFIG 2 /* invalid configuration or command line */

typedef struct xs_proc {
    const char *name;  /* "xs-contacts" (borrowed, static) */
    unsigned procmask; /* XS_PROC_* bit of this process */
    xs_config *cfg;    /* owned */
    xs_log *log;       /* owned */
    xs_time started;   /* wall-clock start time */
} xs_proc;

/* xs_proc_start prepares p as described above. It returns XS_OK to go on; otherwise it has
 * already printed what was wrong (or the help/version text) and *exit_code holds the code
 * main should return. `usage` is one paragraph shown by --help (may be NULL). */
xs_err xs_proc_start(xs_proc *p, const char *name, unsigned procmask, int argc, char **argv,
                     const char *usage, int *exit_code);

/* xs_proc_wait_signal waits up to timeout_ms for SIGTERM or SIGINT and returns the signal
 * number, or 0 when the time passed. */
int xs_proc_wait_signal(xs_proc *p, int64_t timeout_ms);

/* xs_proc_finish logs the stop and frees what xs_proc_start made. */
void xs_proc_finish(xs_proc *p, int exit_code);

#endif
