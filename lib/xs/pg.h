/*
 * pg.h: PostgreSQL, through libpq. The only module that speaks to the database.
 *
 * SQL is only ever sent with parameters (PQexecParams), in text format; values are strings
 * (NULL for SQL NULL). A connection is used by one thread at a time; a pool hands
 * connections to threads. Errors from libpq are translated: a unique violation is XS_EEXIST,
 * a serialization failure or deadlock XS_ECONFLICT, a lost connection XS_ECLOSED, any other
 * failure XS_EDB; the server's message and SQLSTATE stay readable through xs_pg_error and
 * xs_pg_sqlstate until the next call on that connection.
 */
#ifndef XS_PG_H
#define XS_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs/err.h"
#include "xs/log.h"

typedef struct xs_pg xs_pg;
typedef struct xs_pg_res xs_pg_res;
typedef struct xs_pg_pool xs_pg_pool;

/* xs_pg_connect connects to url (a libpq URI or key=value string), retrying with backoff
 * (100 ms doubling up to 2 s) until wait_ms have passed; wait_ms 0 tries once. The session
 * gets application_name `app` and time zone UTC. log (borrowed, may be NULL) receives
 * retry warnings; the URL's password is never logged. A malformed URL is XS_EINVAL at once;
 * no connection within wait_ms is XS_EUNAVAILABLE. */
xs_err xs_pg_connect(xs_pg **out, const char *url, const char *app, int64_t wait_ms, xs_log *log);

/* xs_pg_close closes and frees pg; NULL is accepted. */
void xs_pg_close(xs_pg *pg);

/* xs_pg_is_ok tells whether the connection is usable (libpq status OK and not inside a
 * failed transaction). */
bool xs_pg_is_ok(const xs_pg *pg);

/* xs_pg_reconnect re-establishes a broken connection once (libpq PQreset), with the same
 * session settings, and subscribes again to the channels pg listened on (notifications sent
 * while it was down are lost). XS_EUNAVAILABLE when the server cannot be reached. */
xs_err xs_pg_reconnect(xs_pg *pg);

/* xs_pg_exec runs one statement with nparams text parameters ($1..$n; params[i] NULL for
 * SQL NULL). When out is not NULL, *out receives the result (new; free with xs_pg_res_free)
 * on success. */
xs_err xs_pg_exec(xs_pg *pg, xs_pg_res **out, const char *sql, int nparams,
                  const char *const *params);

/* xs_pg_exec_prepared is xs_pg_exec for a statement run often on one connection: sql must be
 * text that lives as long as the program (a string constant), known by its address; the first
 * use in a session prepares it (planned once, by the server's plan cache rules), later ones
 * only execute it. A reconnect forgets what was prepared. Write such a statement so that a
 * generic plan serves every parameter: no "$1 IS NULL OR col > $1" around an index's key. */
xs_err xs_pg_exec_prepared(xs_pg *pg, xs_pg_res **out, const char *sql, int nparams,
                           const char *const *params);

/* xs_pg_qp(pg, out, sql, p1, ...) is xs_pg_exec_prepared with the parameters listed inline. */
#define xs_pg_qp(pg, out, sql, ...)                                                                \
    xs_pg_exec_prepared((pg), (out), (sql),                                                        \
                        (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),       \
                        (const char *[]){__VA_ARGS__})

/* xs_pg_q(pg, out, sql, p1, p2, ...) is xs_pg_exec with the parameters listed inline; at
 * least one parameter. xs_pg_q0(pg, out, sql) takes none. */
#define xs_pg_q(pg, out, sql, ...)                                                                 \
    xs_pg_exec((pg), (out), (sql),                                                                 \
               (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)),                \
               (const char *[]){__VA_ARGS__})
#define xs_pg_q0(pg, out, sql) xs_pg_exec((pg), (out), (sql), 0, NULL)

/* xs_pg_exec_script runs sql (borrowed), a script of several statements with no parameters,
 * through the simple query protocol, stopping at the first error (whose message names the
 * character position). Only for trusted text compiled into the program (migrations); never
 * for SQL that holds a value. Inside a transaction every statement joins it; outside one,
 * the script runs as one implicit transaction. */
xs_err xs_pg_exec_script(xs_pg *pg, const char *sql);

/* xs_pg_error returns the last error message on pg (borrowed; "" when none). */
const char *xs_pg_error(const xs_pg *pg);

/* xs_pg_sqlstate returns the last SQLSTATE on pg (borrowed; "" when none). */
const char *xs_pg_sqlstate(const xs_pg *pg);

/* xs_pg_error_restore makes xs_pg_error and xs_pg_sqlstate report message and sqlstate
 * (both copied; NULL reads as ""), so a function that cleans up after a failure (a rollback,
 * an unlock) can leave the failure's own cause readable for its caller. */
void xs_pg_error_restore(xs_pg *pg, const char *message, const char *sqlstate);

/* xs_pg_in_transaction tells whether a transaction is open on pg (also a failed one). */
bool xs_pg_in_transaction(const xs_pg *pg);

/* Transactions. xs_pg_rollback is safe to call when no transaction is open, and when it
 * succeeds it leaves the last error (the reason for rolling back) readable. */
xs_err xs_pg_begin(xs_pg *pg);
xs_err xs_pg_commit(xs_pg *pg);
xs_err xs_pg_rollback(xs_pg *pg);

/* xs_pg_mark_engine marks the current transaction as the engine's own write, so the change
 * triggers on app.* tables do not put it in the outbox; txid (borrowed) is recorded as the
 * sync transaction id (NULL reads as ""). XS_ESTATE outside an open, healthy transaction. */
xs_err xs_pg_mark_engine(xs_pg *pg, const char *txid);

/* xs_pg_listen subscribes pg to channel (lowercase letters, digits and '_', at most 63
 * characters, starting with a letter or '_'). */
xs_err xs_pg_listen(xs_pg *pg, const char *channel);

/* xs_pg_notify sends payload (may be NULL) on channel. */
xs_err xs_pg_notify(xs_pg *pg, const char *channel, const char *payload);

/* xs_pg_wait waits up to timeout_ms for one notification on a listened channel. On success
 * *channel and *payload (when not NULL) receive new strings (free with free()). Returns
 * XS_ETIMEDOUT when none came, XS_ECLOSED when the connection was lost. */
xs_err xs_pg_wait(xs_pg *pg, int timeout_ms, char **channel, char **payload);

/* xs_pg_ping runs "SELECT 1". */
xs_err xs_pg_ping(xs_pg *pg);

/* Results. Rows and columns count from 0. Values are borrowed from res. */
int xs_pg_res_nrows(const xs_pg_res *res);
int xs_pg_res_ncols(const xs_pg_res *res);
int64_t xs_pg_res_affected(const xs_pg_res *res);
/* xs_pg_res_col returns the index of column name, or -1. */
int xs_pg_res_col(const xs_pg_res *res, const char *name);
/* xs_pg_res_get returns the text of a value, or NULL for SQL NULL or out-of-range. */
const char *xs_pg_res_get(const xs_pg_res *res, int row, int col);
/* xs_pg_res_getn is xs_pg_res_get by column name. */
const char *xs_pg_res_getn(const xs_pg_res *res, int row, const char *name);
/* xs_pg_res_int reads an integer value; XS_ENOTFOUND for NULL, XS_EPARSE otherwise. */
xs_err xs_pg_res_int(const xs_pg_res *res, int row, int col, int64_t *out);
/* xs_pg_res_bool reads a boolean value ("t"/"f"). */
xs_err xs_pg_res_bool(const xs_pg_res *res, int row, int col, bool *out);
void xs_pg_res_free(xs_pg_res *res);

/* A pool of connections for threads that share a database. */
/* xs_pg_pool_create opens `size` connections to url (waiting up to wait_ms for the server). */
xs_err xs_pg_pool_create(xs_pg_pool **out, const char *url, const char *app, int size,
                         int64_t wait_ms, xs_log *log);

/* xs_pg_pool_acquire lends a connection for up to timeout_ms of waiting; a broken one is
 * reconnected first. XS_ETIMEDOUT when none became free, XS_EUNAVAILABLE when the server
 * cannot be reached. */
xs_err xs_pg_pool_acquire(xs_pg_pool *pool, int64_t timeout_ms, xs_pg **out);

/* xs_pg_pool_release returns pg to the pool, rolling back any transaction left open and
 * dropping its LISTEN subscriptions. */
void xs_pg_pool_release(xs_pg_pool *pool, xs_pg *pg);

/* xs_pg_pool_destroy closes every connection; all must have been released. NULL accepted. */
void xs_pg_pool_destroy(xs_pg_pool *pool);

#endif
