/* proc.c: process start-up and shutdown common to every binary. */
#include "xs/proc.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "xs/clock.h"

/* raise_fd_limit raises the soft limit of open descriptors to the hard one (a server holding
 * a thousand connections needs more than the usual soft 1024; nothing here uses select(),
 * so descriptors above FD_SETSIZE are fine) and returns the limit now in force. */
static long long raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return -1;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
            rl = up;
        }
    }
    return rl.rlim_cur == RLIM_INFINITY ? -1 : (long long)rl.rlim_cur;
}

/* print_help writes usage and this process's variables (from the one table) to stdout. */
static void print_help(const char *name, unsigned procmask, const char *usage)
{
    printf("%s %s\n\n", name, XS_VERSION);
    if (usage != NULL) {
        printf("%s\n\n", usage);
    }
    printf("Configuration (environment variables; see docs/CONFIG.md):\n");
    for (size_t i = 0; i < xs_config_nvars; i++) {
        const xs_config_var *v = &xs_config_vars[i];
        if ((v->used_by & procmask) == 0) {
            continue;
        }
        if (v->dflt != NULL) {
            printf("  %-22s default %s\n", v->name, v->dflt);
        } else {
            printf("  %-22s %s\n", v->name, v->optional ? "optional" : "required");
        }
        printf("  %-22s %s\n", "", v->doc);
    }
}

xs_err xs_proc_start(xs_proc *p, const char *name, unsigned procmask, int argc, char **argv,
                     const char *usage, int *exit_code)
{
    memset(p, 0, sizeof(*p));
    p->name = name;
    p->procmask = procmask;
    p->started = xs_clock_now();
    *exit_code = XS_EXIT_OK;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(name, procmask, usage);
            return XS_ECANCELED;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", name, XS_VERSION);
            return XS_ECANCELED;
        }
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    long long fd_limit = raise_fd_limit();

    /* A log exists before the configuration, so a configuration error is itself a
     * structured line. */
    xs_log *boot = NULL;
    if (xs_log_create(&boot, name, XS_LOG_INFO, 2) != XS_OK) {
        fprintf(stderr, "%s: out of memory\n", name);
        *exit_code = XS_EXIT_FAIL;
        return XS_ENOMEM;
    }
    char err[XS_CONFIG_ERR_MAX];
    xs_err e = xs_config_load(&p->cfg, procmask, err);
    if (e != XS_OK) {
        xs_log_error(boot, "config.invalid", "{s:s}", "error", err);
        xs_log_destroy(boot);
        *exit_code = XS_EXIT_CONFIG;
        return e;
    }
    xs_log_level level = XS_LOG_INFO;
    xs_log_level_parse(xs_config_str(p->cfg, "XS_LOG_LEVEL"), &level);
    xs_log_destroy(boot);
    if (xs_log_create(&p->log, name, level, 2) != XS_OK) {
        xs_config_destroy(p->cfg);
        p->cfg = NULL;
        *exit_code = XS_EXIT_FAIL;
        return XS_ENOMEM;
    }
    xs_log_info(p->log, "process.start", "{s:s, s:I, s:I}", "version", XS_VERSION, "pid",
                (json_int_t)getpid(), "fd_limit", (json_int_t)fd_limit);
    return XS_OK;
}

int xs_proc_wait_signal(xs_proc *p, int64_t timeout_ms)
{
    (void)p;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (timeout_ms < 0) {
        timeout_ms = 0;
    }
    struct timespec ts = {.tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1000000};
    int64_t end = xs_clock_mono_ms() + timeout_ms;
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig > 0) {
            return sig;
        }
        if (errno != EINTR) {
            return 0;
        }
        int64_t left = end - xs_clock_mono_ms();
        if (left <= 0) {
            return 0;
        }
        ts.tv_sec = left / 1000;
        ts.tv_nsec = (left % 1000) * 1000000;
    }
}

void xs_proc_finish(xs_proc *p, int exit_code)
{
    if (p->log != NULL) {
        xs_log_info(p->log, "process.stop", "{s:i}", "exit_code", exit_code);
    }
    xs_log_destroy(p->log);
    xs_config_destroy(p->cfg);
    p->log = NULL;
    p->cfg = NULL;
}
