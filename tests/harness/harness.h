/*
 * harness.h: what end-to-end and database tests share. Tests only; never linked into a
 * product binary.
 *
 * - PostgreSQL: the `pg` CTest fixture starts one private cluster for the whole run
 *   (scripts/pg-cluster); each test makes its own fresh database in it.
 * - Processes: spawn the real binaries with an environment, stop them with SIGTERM and
 *   check they exit cleanly, or kill them with SIGKILL.
 * - HTTP: a small blocking client for the orchestrator's API and the simulator.
 */
#ifndef XS_TEST_HARNESS_H
#define XS_TEST_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* xst_die prints a message and exits the test program with failure (for set-up errors
 * outside cmocka assertions). */
void xst_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* xst_pg_admin_url returns the URL of the fixture cluster's maintenance database (static
 * storage); dies when the fixture is not running. */
const char *xst_pg_admin_url(void);

/* xst_db_create makes a new, empty database named after prefix and returns its URL (new,
 * free with free()). */
char *xst_db_create(const char *prefix);

/* xst_db_drop_all drops every database xst_db_create made in this cluster, by any process.
 * For a benchmark's cluster, which outlives its runs: what earlier runs left would otherwise
 * be vacuumed during this one's measurements. */
void xst_db_drop_all(void);

/* xst_bench_start prepares a benchmark: its own cluster in BUILD_DIR/bench-pg started (with
 * source_dir's scripts/pg-cluster; it outlives the run), the harness pointed at it and at
 * BUILD_DIR's binaries, libcurl initialised, and what earlier runs left dropped. */
void xst_bench_start(const char *build_dir, const char *source_dir);

/* xst_bench_stop stops the cluster xst_bench_start started (a failure is reported, not fatal). */
void xst_bench_stop(const char *build_dir, const char *source_dir);

/* xst_db_migrated is xst_db_create followed by applying this build's migrations. */
char *xst_db_migrated(const char *prefix);

/* xst_free_port returns a TCP port on 127.0.0.1 that was free a moment ago. */
uint16_t xst_free_port(void);

/* xst_free_ports returns the first of n consecutive TCP ports on 127.0.0.1 free right now. */
uint16_t xst_free_ports(int n);

/* xst_bin returns the path of a binary built in this build tree (static storage), e.g.
 * xst_bin("xs-orchestrator"). */
const char *xst_bin(const char *name);

/* A child process with its stderr captured to a file (so its logs can be searched). */
typedef struct xst_proc {
    pid_t pid;
    char name[64];
    char log_path[512];
    int status; /* wait status once reaped */
    bool reaped;
} xst_proc;

/* xst_spawn starts path with argv (NULL-terminated; argv[0] may be NULL for the path) and
 * the test's environment plus `env` ("NAME=value", NULL-terminated; may be NULL). */
xst_proc *xst_spawn(const char *name, const char *path, char *const argv[], char *const env[]);

/* xst_stop sends SIGTERM and waits up to timeout_ms; returns the exit code, or -1 when it
 * had to be killed or died by a signal (the test should fail on anything but 0). */
int xst_stop(xst_proc *p, int timeout_ms);

/* xst_kill9 kills p with SIGKILL and reaps it. */
void xst_kill9(xst_proc *p);

/* xst_alive tells whether p is still running. */
bool xst_alive(xst_proc *p);

/* xst_proc_free frees p (killing it first if it still runs). */
void xst_proc_free(xst_proc *p);

/* xst_log_contains tells whether p's captured stderr contains needle. */
bool xst_log_contains(const xst_proc *p, const char *needle);

/* xst_slurp returns the whole contents of the file at path (new, NUL-terminated), or NULL
 * when it cannot be read. */
char *xst_slurp(const char *path);

/* xst_log_dump prints p's captured stderr to the test's stderr (for failures). */
void xst_log_dump(const xst_proc *p);

/* An HTTP reply. */
typedef struct xst_http {
    long status; /* 0 when the request failed at transport level */
    char *body;  /* new, NUL-terminated */
    size_t len;
    json_t *json;       /* parsed body when it is JSON, else NULL */
    char *location;     /* the Location of a redirect (new), or NULL; redirects are not followed */
    char *content_type; /* the reply's Content-Type (new), or NULL when it had none */
    char *headers;      /* the reply's header lines as received, "Name: value\r\n" (new) */
} xst_http;

/* xst_http_header copies the value of the reply's header `name` (case-insensitive; the first
 * one) into out (n bytes) and returns out, or NULL when the reply has no such header. */
const char *xst_http_header(const xst_http *r, const char *name, char *out, size_t n);

/* xst_http_do performs method on url with body (may be NULL) and extra headers ("Name:
 * value", NULL-terminated; may be NULL), waiting up to timeout_ms. */
xst_http xst_http_do(const char *method, const char *url, const char *body,
                     const char *const *headers, long timeout_ms);

/* xst_http_free frees the reply's contents. */
void xst_http_free(xst_http *r);

/* xst_http_error_is tells whether r is the JSON error {"error":{"code":code,"message":...}}
 * with status, its message holding says (NULL: any); when not, it says why on stderr. */
bool xst_http_error_is(const xst_http *r, long status, const char *code, const char *says);

/* xst_wait_http polls url with GET until it answers `status` or timeout_ms passes. */
bool xst_wait_http(const char *url, long status, long timeout_ms);

/* Raw TCP, for what an HTTP client library will not send (a NUL in a header, a request that
 * trickles in) and for holding many connections at once. */

/* xst_tcp_open connects to 127.0.0.1:port from address `from` (NULL: 127.0.0.1; on Linux
 * every address of 127/8 is this machine) and returns the socket, or -1 with errno set. */
int xst_tcp_open(const char *from, uint16_t port);

/* xst_tcp_closed tells whether the peer has closed fd (an end of stream or a reset), waiting
 * up to wait_ms for it; what the peer sent before is left unread. */
bool xst_tcp_closed(int fd, long wait_ms);

/* xst_fd_limit_raise raises this process's soft limit of open descriptors to its hard limit
 * (a test holding a thousand connections needs more than the usual 1024) and returns it. */
long xst_fd_limit_raise(void);

/* xst_raw_http sends the len bytes of req (a whole request, which should ask for
 * "Connection: close") on a new connection to 127.0.0.1:port, then reads until the peer
 * closes or timeout_ms passes: status from the status line (0 when none came), the body
 * after the head, its JSON when it is JSON. */
xst_http xst_raw_http(uint16_t port, const void *req, size_t len, long timeout_ms);

/* xst_now_ms returns a monotonic clock in milliseconds. */
int64_t xst_now_ms(void);

#endif
