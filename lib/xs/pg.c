/* pg.c: PostgreSQL through libpq: connections, parameterised statements, LISTEN/NOTIFY and
 * a connection pool. */
#include "xs/pg.h"

#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xs/clock.h"

#define PG_ERR_MAX      1024
#define PG_CHANNEL_MAX  63
#define PG_RETRY_FIRST  100
#define PG_RETRY_MAX    2000
#define PG_TIMEZONE_OPT "-c TimeZone=UTC"
/* The planner's default cost of a random page read (4) is for spinning disks: with it, a
 * join of a 1,000-row batch against sync.mappings or an app table reads the whole table
 * (a hash join over a sequential scan) where 1,000 index probes cost a tenth, and a scan
 * that walks a table in batches becomes quadratic. 1.1 is the usual value for SSDs and a
 * cached working set. The URL's options come after it, so a deployment can set its own. */
#define PG_PLANNER_OPT   "-c random_page_cost=1.1"
#define PG_CONNECT_TIMEO 10 /* seconds, at most, per attempt */

struct xs_pg {
    PGconn *conn;
    xs_log *log; /* borrowed */
    char err[PG_ERR_MAX];
    char sqlstate[6];
    /* The channels this connection LISTENs on, so a reconnect can subscribe again. */
    char **channels;
    size_t nchannels;
    /* The statements prepared in this session (xs_pg_exec_prepared), by their text's
     * address; statement i is named "xs_p<i>". A new session has none. */
    const char **prepared;
    size_t nprepared;
};

struct xs_pg_res {
    PGresult *r;
};

struct xs_pg_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    xs_pg **conns;
    bool *busy;
    int size;
    xs_log *log; /* borrowed */
};

/* set_err records message (trimmed of its trailing newline) and sqlstate on pg. */
static void set_err(xs_pg *pg, const char *message, const char *sqlstate)
{
    /* Through copies: the arguments may be pg's own buffers (xs_pg_error_restore). */
    char msg[PG_ERR_MAX], state[sizeof(pg->sqlstate)];
    snprintf(msg, sizeof(msg), "%s", message != NULL ? message : "");
    snprintf(state, sizeof(state), "%s", sqlstate != NULL ? sqlstate : "");
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
        msg[--n] = '\0';
    }
    memcpy(pg->err, msg, n + 1);
    memcpy(pg->sqlstate, state, sizeof(state));
}

/* clear_err forgets the last error: every call that talks to the server starts with it. */
static void clear_err(xs_pg *pg)
{
    pg->err[0] = '\0';
    pg->sqlstate[0] = '\0';
}

/* translate maps a failed statement's SQLSTATE (and the connection's state) to an xs_err.
 * A lost connection is told by libpq's status, not by the SQLSTATE: class 08 also holds
 * protocol errors after which the connection is still fine. */
static xs_err translate(const xs_pg *pg, const char *sqlstate)
{
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        return XS_ECLOSED;
    }
    if (sqlstate == NULL) {
        return XS_EDB;
    }
    if (strcmp(sqlstate, "23505") == 0) {
        return XS_EEXIST;
    }
    if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0) {
        return XS_ECONFLICT;
    }
    return XS_EDB;
}

/* conninfo_value returns the value of keyword in a parsed conninfo array, or NULL. */
static const char *conninfo_value(const PQconninfoOption *opts, const char *keyword)
{
    for (const PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, keyword) == 0) {
            return o->val;
        }
    }
    return NULL;
}

/* on_notice routes the server's notices (and errors that arrive between queries, such as
 * "terminating connection due to administrator command") to our log instead of libpq's
 * default, a raw line on stderr. */
static void on_notice(void *arg, const PGresult *r)
{
    xs_pg *pg = arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    sev = sev != NULL ? sev : "NOTICE";
    xs_log_level level = XS_LOG_DEBUG;
    if (strcmp(sev, "WARNING") == 0 || strcmp(sev, "ERROR") == 0 || strcmp(sev, "FATAL") == 0 ||
        strcmp(sev, "PANIC") == 0) {
        level = XS_LOG_WARN;
    }
    xs_log_write(pg->log, level, "pg.notice", "{s:s, s:s, s:s}", "severity", sev, "sqlstate",
                 state != NULL ? state : "", "message", msg != NULL ? msg : "");
}

/* scrub_quoted copies text into out (size n, n > 0), replacing what stands between double
 * quotes by "..." and dropping the trailing newline. */
static void scrub_quoted(const char *text, char *out, size_t n)
{
    size_t o = 0;
    bool inside = false;
    for (const char *c = text; *c != '\0' && o + 4 < n; c++) {
        if (*c == '"') {
            if (!inside) {
                memcpy(out + o, "\"...", 4);
                o += 4;
            } else {
                out[o++] = '"';
            }
            inside = !inside;
        } else if (!inside && *c != '\n') {
            out[o++] = *c;
        }
    }
    out[o] = '\0';
}

/* free_channels forgets every channel pg listened on. */
static void free_channels(xs_pg *pg)
{
    for (size_t i = 0; i < pg->nchannels; i++) {
        free(pg->channels[i]);
    }
    free(pg->channels);
    pg->channels = NULL;
    pg->nchannels = 0;
}

xs_err xs_pg_connect(xs_pg **out, const char *url, const char *app, int64_t wait_ms, xs_log *log)
{
    if (out == NULL || url == NULL || app == NULL || wait_ms < 0) {
        return XS_EINVAL;
    }
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (opts == NULL) {
        /* libpq quotes the offending token, which may be (part of) the password. */
        char msg[PG_ERR_MAX];
        scrub_quoted(perr != NULL ? perr : "out of memory", msg, sizeof(msg));
        xs_log_error(log, "pg.connect_bad_url", "{s:s}", "error", msg);
        PQfreemem(perr);
        return perr != NULL ? XS_EINVAL : XS_ENOMEM;
    }

    /* The planner default first, then the URL's own options, then the time zone: later -c
     * settings win. */
    const char *url_options = conninfo_value(opts, "options");
    char *options = NULL;
    size_t olen = (url_options != NULL ? strlen(url_options) : 0) + sizeof(PG_PLANNER_OPT) +
                  sizeof(PG_TIMEZONE_OPT) + 2;
    options = malloc(olen);
    if (options == NULL) {
        PQconninfoFree(opts);
        return XS_ENOMEM;
    }
    snprintf(options, olen, "%s %s%s%s", PG_PLANNER_OPT, url_options != NULL ? url_options : "",
             url_options != NULL && url_options[0] != '\0' ? " " : "", PG_TIMEZONE_OPT);

    /* Keywords after "dbname" override what the expanded URL says. */
    const char *keys[5] = {"dbname", "application_name", "options", NULL, NULL};
    const char *vals[5] = {url, app, options, NULL, NULL};
    /* Unless the URL says otherwise, one attempt may take what is left of the wait, between
     * libpq's minimum of 2 s and 10 s; it stays the timeout of later reconnects (PQreset). */
    bool own_timeout = conninfo_value(opts, "connect_timeout") == NULL;
    char timeout[16] = "";
    if (own_timeout) {
        keys[3] = "connect_timeout";
        vals[3] = timeout;
    }
    /* What may be logged about the target: never the password. */
    const char *host = conninfo_value(opts, "host");
    const char *hostaddr = conninfo_value(opts, "hostaddr");
    const char *port = conninfo_value(opts, "port");
    const char *dbname = conninfo_value(opts, "dbname");
    const char *user = conninfo_value(opts, "user");
    host = host != NULL ? host : (hostaddr != NULL ? hostaddr : "(default)");
    port = port != NULL ? port : "(default)";
    dbname = dbname != NULL ? dbname : "(default)";
    user = user != NULL ? user : "(default)";

    int64_t start = xs_clock_mono_ms();
    int64_t delay = PG_RETRY_FIRST;
    int attempt = 0;
    PGconn *conn = NULL;
    xs_err rc = XS_EUNAVAILABLE;
    for (;;) {
        attempt++;
        if (own_timeout) {
            int64_t left_s = (wait_ms - (xs_clock_mono_ms() - start) + 999) / 1000;
            left_s = left_s < 2 ? 2 : (left_s > PG_CONNECT_TIMEO ? PG_CONNECT_TIMEO : left_s);
            snprintf(timeout, sizeof(timeout), "%d", (int)left_s);
        }
        conn = PQconnectdbParams(keys, vals, 1);
        if (conn == NULL) {
            rc = XS_ENOMEM;
            break;
        }
        if (PQstatus(conn) == CONNECTION_OK) {
            rc = XS_OK;
            break;
        }
        char msg[PG_ERR_MAX];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        PQfinish(conn);
        conn = NULL;
        int64_t elapsed = xs_clock_mono_ms() - start;
        if (elapsed >= wait_ms) {
            xs_log_error(log, "pg.connect_failed", "{s:s, s:s, s:s, s:s, s:i, s:I, s:s}", "host",
                         host, "port", port, "dbname", dbname, "user", user, "attempts", attempt,
                         "waited_ms", (json_int_t)elapsed, "error", msg);
            rc = XS_EUNAVAILABLE;
            break;
        }
        int64_t sleep_ms = delay;
        if (sleep_ms > wait_ms - elapsed) {
            sleep_ms = wait_ms - elapsed;
        }
        xs_log_warn(log, "pg.connect_retry", "{s:s, s:s, s:s, s:s, s:i, s:I, s:s}", "host", host,
                    "port", port, "dbname", dbname, "user", user, "attempt", attempt, "retry_in_ms",
                    (json_int_t)sleep_ms, "error", msg);
        xs_clock_sleep_ms(sleep_ms);
        delay = delay * 2 > PG_RETRY_MAX ? PG_RETRY_MAX : delay * 2;
    }
    PQconninfoFree(opts);
    free(options);
    if (rc != XS_OK) {
        return rc;
    }
    xs_pg *pg = calloc(1, sizeof(*pg));
    if (pg == NULL) {
        PQfinish(conn);
        return XS_ENOMEM;
    }
    pg->conn = conn;
    pg->log = log;
    /* The receiver survives PQreset: libpq keeps it on the PGconn. */
    PQsetNoticeReceiver(conn, on_notice, pg);
    *out = pg;
    return XS_OK;
}

void xs_pg_close(xs_pg *pg)
{
    if (pg == NULL) {
        return;
    }
    PQfinish(pg->conn);
    free_channels(pg);
    free(pg->prepared);
    free(pg);
}

bool xs_pg_is_ok(const xs_pg *pg)
{
    if (pg == NULL || pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
        return false;
    }
    PGTransactionStatusType ts = PQtransactionStatus(pg->conn);
    return ts != PQTRANS_INERROR && ts != PQTRANS_UNKNOWN;
}

/* relisten subscribes pg again to every channel it listened on before a reconnect. */
static xs_err relisten(xs_pg *pg)
{
    for (size_t i = 0; i < pg->nchannels; i++) {
        char sql[PG_CHANNEL_MAX + 16];
        snprintf(sql, sizeof(sql), "LISTEN \"%s\"", pg->channels[i]);
        xs_err e = xs_pg_q0(pg, NULL, sql);
        if (e != XS_OK) {
            return e;
        }
    }
    return XS_OK;
}

xs_err xs_pg_reconnect(xs_pg *pg)
{
    if (pg == NULL || pg->conn == NULL) {
        return XS_EINVAL;
    }
    clear_err(pg);
    PQreset(pg->conn);
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        set_err(pg, PQerrorMessage(pg->conn), "");
        xs_log_warn(pg->log, "pg.reconnect_failed", "{s:s}", "error", pg->err);
        return XS_EUNAVAILABLE;
    }
    pg->nprepared = 0; /* prepared in the old session */
    /* PQreset keeps the connection parameters, so application_name and TimeZone hold; the
     * subscriptions of the old session are gone and are made again. Notifications sent
     * while the connection was down are lost: listeners re-scan what they watch. */
    xs_err e = relisten(pg);
    if (e != XS_OK) {
        return e;
    }
    xs_log_info(pg->log, "pg.reconnected", "{s:i}", "channels", (int)pg->nchannels);
    return XS_OK;
}

/* take_result turns r (may be NULL) into *out (when not NULL) or the error it is. */
static xs_err take_result(xs_pg *pg, xs_pg_res **out, PGresult *r)
{
    if (r == NULL) {
        set_err(pg, PQerrorMessage(pg->conn), "");
        return PQstatus(pg->conn) != CONNECTION_OK ? XS_ECLOSED : XS_ENOMEM;
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
        if (out == NULL) {
            PQclear(r);
            return XS_OK;
        }
        xs_pg_res *res = malloc(sizeof(*res));
        if (res == NULL) {
            PQclear(r);
            return XS_ENOMEM;
        }
        res->r = r;
        *out = res;
        return XS_OK;
    }
    xs_err e;
    if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        set_err(pg, msg != NULL ? msg : PQresultErrorMessage(r), state);
        e = translate(pg, state);
    } else {
        /* COPY and other streaming results are not part of this interface. */
        set_err(pg, "unsupported result kind", "");
        e = XS_EUNSUPPORTED;
    }
    PQclear(r);
    return e;
}

xs_err xs_pg_exec(xs_pg *pg, xs_pg_res **out, const char *sql, int nparams,
                  const char *const *params)
{
    if (pg == NULL || pg->conn == NULL || sql == NULL || nparams < 0 ||
        (nparams > 0 && params == NULL)) {
        return XS_EINVAL;
    }
    clear_err(pg);
    return take_result(pg, out, PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0));
}

xs_err xs_pg_exec_prepared(xs_pg *pg, xs_pg_res **out, const char *sql, int nparams,
                           const char *const *params)
{
    if (pg == NULL || pg->conn == NULL || sql == NULL || nparams < 0 ||
        (nparams > 0 && params == NULL)) {
        return XS_EINVAL;
    }
    clear_err(pg);
    size_t i = 0;
    while (i < pg->nprepared && pg->prepared[i] != sql) {
        i++;
    }
    char name[32];
    snprintf(name, sizeof(name), "xs_p%zu", i);
    if (i == pg->nprepared) {
        const char **grown = realloc(pg->prepared, (i + 1) * sizeof(*grown));
        if (grown == NULL) {
            return XS_ENOMEM;
        }
        pg->prepared = grown;
        xs_err e = take_result(pg, NULL, PQprepare(pg->conn, name, sql, nparams, NULL));
        if (e != XS_OK) {
            return e;
        }
        pg->prepared[pg->nprepared++] = sql;
    }
    return take_result(pg, out, PQexecPrepared(pg->conn, name, nparams, params, NULL, NULL, 0));
}

xs_err xs_pg_exec_script(xs_pg *pg, const char *sql)
{
    if (pg == NULL || pg->conn == NULL || sql == NULL) {
        return XS_EINVAL;
    }
    clear_err(pg);
    /* PQexec (the simple protocol) runs several statements; libpq returns the last result,
     * or the first error, at which point the server stopped. */
    PGresult *r = PQexec(pg->conn, sql);
    if (r == NULL) {
        set_err(pg, PQerrorMessage(pg->conn), "");
        return PQstatus(pg->conn) != CONNECTION_OK ? XS_ECLOSED : XS_ENOMEM;
    }
    ExecStatusType st = PQresultStatus(r);
    xs_err e = XS_OK;
    if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
        char buf[PG_ERR_MAX];
        if (pos != NULL) {
            snprintf(buf, sizeof(buf), "%s (at character %s)", msg != NULL ? msg : "", pos);
        } else {
            snprintf(buf, sizeof(buf), "%s", msg != NULL ? msg : PQresultErrorMessage(r));
        }
        set_err(pg, buf, state);
        e = translate(pg, state);
    } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        set_err(pg, "unsupported result kind", "");
        e = XS_EUNSUPPORTED;
    }
    PQclear(r);
    return e;
}

const char *xs_pg_error(const xs_pg *pg)
{
    return pg != NULL ? pg->err : "";
}

const char *xs_pg_sqlstate(const xs_pg *pg)
{
    return pg != NULL ? pg->sqlstate : "";
}

void xs_pg_error_restore(xs_pg *pg, const char *message, const char *sqlstate)
{
    if (pg != NULL) {
        set_err(pg, message, sqlstate);
    }
}

bool xs_pg_in_transaction(const xs_pg *pg)
{
    if (pg == NULL || pg->conn == NULL) {
        return false;
    }
    PGTransactionStatusType ts = PQtransactionStatus(pg->conn);
    return ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR || ts == PQTRANS_ACTIVE;
}

xs_err xs_pg_begin(xs_pg *pg)
{
    return xs_pg_q0(pg, NULL, "BEGIN");
}

xs_err xs_pg_commit(xs_pg *pg)
{
    if (pg == NULL || pg->conn == NULL) {
        return XS_EINVAL;
    }
    /* COMMIT of a transaction that already failed "succeeds" as a ROLLBACK: say so. */
    bool failed = PQtransactionStatus(pg->conn) == PQTRANS_INERROR;
    xs_err e = xs_pg_q0(pg, NULL, "COMMIT");
    if (e == XS_OK && failed) {
        set_err(pg, "the transaction had failed; it was rolled back instead of committed", "25P02");
        return XS_EDB;
    }
    return e;
}

xs_err xs_pg_rollback(xs_pg *pg)
{
    if (pg == NULL || pg->conn == NULL) {
        return XS_EINVAL;
    }
    PGTransactionStatusType ts = PQtransactionStatus(pg->conn);
    if (ts == PQTRANS_IDLE) {
        return XS_OK;
    }
    if (ts == PQTRANS_UNKNOWN) {
        /* The connection is gone, and the server rolled the transaction back with it. */
        set_err(pg, "connection lost", "");
        return XS_ECLOSED;
    }
    /* Callers roll back first and report after: the cause of the failure stays readable. */
    char msg[PG_ERR_MAX], state[sizeof(pg->sqlstate)];
    memcpy(msg, pg->err, sizeof(msg));
    memcpy(state, pg->sqlstate, sizeof(state));
    xs_err e = xs_pg_q0(pg, NULL, "ROLLBACK");
    if (e == XS_OK) {
        set_err(pg, msg, state);
    }
    return e;
}

xs_err xs_pg_mark_engine(xs_pg *pg, const char *txid)
{
    if (pg == NULL || pg->conn == NULL) {
        return XS_EINVAL;
    }
    if (PQtransactionStatus(pg->conn) != PQTRANS_INTRANS) {
        /* Outside a transaction the marker would vanish at once (or mark a failed one). */
        set_err(pg, "xs_pg_mark_engine needs an open transaction", "");
        return XS_ESTATE;
    }
    return xs_pg_q(pg, NULL,
                   "SELECT set_config('xs.origin', 'engine', true), set_config('xs.txid', $1, "
                   "true)",
                   txid != NULL ? txid : "");
}

/* channel_valid tells whether channel is a plain lowercase identifier we may quote. */
static bool channel_valid(const char *channel)
{
    if (channel == NULL) {
        return false;
    }
    size_t n = strlen(channel);
    if (n == 0 || n > PG_CHANNEL_MAX) {
        return false;
    }
    if (!((channel[0] >= 'a' && channel[0] <= 'z') || channel[0] == '_')) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        char c = channel[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return false;
        }
    }
    return true;
}

xs_err xs_pg_listen(xs_pg *pg, const char *channel)
{
    if (pg == NULL || pg->conn == NULL) {
        return XS_EINVAL;
    }
    if (!channel_valid(channel)) {
        set_err(pg, "invalid channel name", "");
        return XS_EINVAL;
    }
    for (size_t i = 0; i < pg->nchannels; i++) {
        if (strcmp(pg->channels[i], channel) == 0) {
            clear_err(pg);
            return XS_OK;
        }
    }
    char *copy = strdup(channel);
    char **grown = realloc(pg->channels, (pg->nchannels + 1) * sizeof(*grown));
    if (copy == NULL || grown == NULL) {
        free(copy);
        if (grown != NULL) {
            pg->channels = grown;
        }
        return XS_ENOMEM;
    }
    pg->channels = grown;
    /* LISTEN takes no parameters; the name was checked to be [a-z_][a-z0-9_]*, so quoting it
     * is exact and cannot be escaped from. */
    char sql[PG_CHANNEL_MAX + 16];
    snprintf(sql, sizeof(sql), "LISTEN \"%s\"", channel);
    xs_err e = xs_pg_q0(pg, NULL, sql);
    if (e != XS_OK) {
        free(copy);
        return e;
    }
    pg->channels[pg->nchannels++] = copy;
    return XS_OK;
}

xs_err xs_pg_notify(xs_pg *pg, const char *channel, const char *payload)
{
    if (pg == NULL || pg->conn == NULL) {
        return XS_EINVAL;
    }
    if (!channel_valid(channel)) {
        set_err(pg, "invalid channel name", "");
        return XS_EINVAL;
    }
    return xs_pg_q(pg, NULL, "SELECT pg_notify($1, $2)", channel, payload != NULL ? payload : "");
}

/* take_notify hands a queued notification to the caller; XS_ENOTFOUND when none is queued. */
static xs_err take_notify(xs_pg *pg, char **channel, char **payload)
{
    PGnotify *n = PQnotifies(pg->conn);
    if (n == NULL) {
        return XS_ENOTFOUND;
    }
    char *c = NULL, *p = NULL;
    if (channel != NULL && (c = strdup(n->relname)) == NULL) {
        PQfreemem(n);
        return XS_ENOMEM;
    }
    if (payload != NULL && (p = strdup(n->extra != NULL ? n->extra : "")) == NULL) {
        free(c);
        PQfreemem(n);
        return XS_ENOMEM;
    }
    PQfreemem(n);
    if (channel != NULL) {
        *channel = c;
    }
    if (payload != NULL) {
        *payload = p;
    }
    return XS_OK;
}

xs_err xs_pg_wait(xs_pg *pg, int timeout_ms, char **channel, char **payload)
{
    if (pg == NULL || pg->conn == NULL || timeout_ms < 0) {
        return XS_EINVAL;
    }
    clear_err(pg);
    /* A notification may already sit in libpq's queue, read along with an earlier result. */
    xs_err e = take_notify(pg, channel, payload);
    if (e != XS_ENOTFOUND) {
        return e;
    }
    int64_t deadline = xs_clock_mono_ms() + timeout_ms;
    for (;;) {
        if (PQstatus(pg->conn) != CONNECTION_OK) {
            set_err(pg, "connection lost", "");
            return XS_ECLOSED;
        }
        int fd = PQsocket(pg->conn);
        if (fd < 0) {
            set_err(pg, "connection lost", "");
            return XS_ECLOSED;
        }
        int64_t left = deadline - xs_clock_mono_ms();
        if (left < 0) {
            left = 0;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)left);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            set_err(pg, strerror(errno), "");
            return xs_err_from_errno(errno);
        }
        if (n > 0) {
            if (PQconsumeInput(pg->conn) == 0) {
                set_err(pg, PQerrorMessage(pg->conn), "");
                return XS_ECLOSED;
            }
            e = take_notify(pg, channel, payload);
            if (e != XS_ENOTFOUND) {
                return e;
            }
            if (PQstatus(pg->conn) != CONNECTION_OK) {
                set_err(pg, PQerrorMessage(pg->conn), "");
                return XS_ECLOSED;
            }
        }
        if (xs_clock_mono_ms() >= deadline) {
            return XS_ETIMEDOUT;
        }
    }
}

xs_err xs_pg_ping(xs_pg *pg)
{
    return xs_pg_q0(pg, NULL, "SELECT 1");
}

int xs_pg_res_nrows(const xs_pg_res *res)
{
    return res != NULL ? PQntuples(res->r) : 0;
}

int xs_pg_res_ncols(const xs_pg_res *res)
{
    return res != NULL ? PQnfields(res->r) : 0;
}

int64_t xs_pg_res_affected(const xs_pg_res *res)
{
    if (res == NULL) {
        return 0;
    }
    const char *t = PQcmdTuples(res->r);
    return t != NULL && t[0] != '\0' ? strtoll(t, NULL, 10) : 0;
}

int xs_pg_res_col(const xs_pg_res *res, const char *name)
{
    if (res == NULL || name == NULL) {
        return -1;
    }
    /* PQfnumber would fold case and strip quotes; names here are matched exactly. */
    int n = PQnfields(res->r);
    for (int i = 0; i < n; i++) {
        if (strcmp(PQfname(res->r, i), name) == 0) {
            return i;
        }
    }
    return -1;
}

const char *xs_pg_res_get(const xs_pg_res *res, int row, int col)
{
    if (res == NULL || row < 0 || col < 0 || row >= PQntuples(res->r) || col >= PQnfields(res->r) ||
        PQgetisnull(res->r, row, col)) {
        return NULL;
    }
    return PQgetvalue(res->r, row, col);
}

const char *xs_pg_res_getn(const xs_pg_res *res, int row, const char *name)
{
    return xs_pg_res_get(res, row, xs_pg_res_col(res, name));
}

xs_err xs_pg_res_int(const xs_pg_res *res, int row, int col, int64_t *out)
{
    if (res == NULL || out == NULL || row < 0 || col < 0 || row >= PQntuples(res->r) ||
        col >= PQnfields(res->r)) {
        return XS_EINVAL;
    }
    const char *v = xs_pg_res_get(res, row, col);
    if (v == NULL) {
        return XS_ENOTFOUND;
    }
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end != '\0') {
        return XS_EPARSE;
    }
    if (errno == ERANGE) {
        return XS_ERANGE;
    }
    *out = (int64_t)x;
    return XS_OK;
}

xs_err xs_pg_res_bool(const xs_pg_res *res, int row, int col, bool *out)
{
    if (res == NULL || out == NULL || row < 0 || col < 0 || row >= PQntuples(res->r) ||
        col >= PQnfields(res->r)) {
        return XS_EINVAL;
    }
    const char *v = xs_pg_res_get(res, row, col);
    if (v == NULL) {
        return XS_ENOTFOUND;
    }
    if (strcmp(v, "t") == 0) {
        *out = true;
        return XS_OK;
    }
    if (strcmp(v, "f") == 0) {
        *out = false;
        return XS_OK;
    }
    return XS_EPARSE;
}

void xs_pg_res_free(xs_pg_res *res)
{
    if (res == NULL) {
        return;
    }
    PQclear(res->r);
    free(res);
}

/* ---- the pool ---- */

xs_err xs_pg_pool_create(xs_pg_pool **out, const char *url, const char *app, int size,
                         int64_t wait_ms, xs_log *log)
{
    if (out == NULL || url == NULL || app == NULL || size <= 0 || wait_ms < 0) {
        return XS_EINVAL;
    }
    xs_pg_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        return XS_ENOMEM;
    }
    xs_err e = XS_ENOMEM;
    pool->log = log;
    pool->conns = calloc((size_t)size, sizeof(*pool->conns));
    pool->busy = calloc((size_t)size, sizeof(*pool->busy));
    if (pool->conns == NULL || pool->busy == NULL) {
        goto fail;
    }
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        goto fail;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int crc = pthread_cond_init(&pool->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (crc != 0) {
        goto fail;
    }
    if (pthread_mutex_init(&pool->mu, NULL) != 0) {
        pthread_cond_destroy(&pool->cv);
        goto fail;
    }
    pool->size = size;
    /* The first connection waits for the server; once it answers, the rest share what is
     * left of the wait. */
    int64_t deadline = xs_clock_mono_ms() + wait_ms;
    for (int i = 0; i < size; i++) {
        int64_t left = deadline - xs_clock_mono_ms();
        e = xs_pg_connect(&pool->conns[i], url, app, left > 0 ? left : 0, log);
        if (e != XS_OK) {
            xs_pg_pool_destroy(pool);
            return e;
        }
    }
    *out = pool;
    return XS_OK;
fail:
    free(pool->conns);
    free(pool->busy);
    free(pool);
    return e;
}

/* revive makes a lent connection usable: it notices a server that went away while the
 * connection sat idle (its socket turns readable with the FATAL message and EOF), reconnects
 * a broken one, and rolls back a transaction left failed. */
static xs_err revive(xs_pg *pg)
{
    /* The server's goodbye and the end of the stream may take two reads to see, and the
     * end may trail the goodbye: once something other than a notification arrived on an
     * idle connection, wait a little for the rest. */
    int wait_ms = 0;
    for (int i = 0; i < 4 && PQstatus(pg->conn) == CONNECTION_OK; i++) {
        int fd = PQsocket(pg->conn);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (fd < 0 || poll(&pfd, 1, wait_ms) <= 0) {
            break;
        }
        PQconsumeInput(pg->conn);
        /* An idle pooled connection listens on nothing: drop stray notifications. */
        PGnotify *n;
        bool notified = false;
        while ((n = PQnotifies(pg->conn)) != NULL) {
            PQfreemem(n);
            notified = true;
        }
        wait_ms = notified ? 0 : 100;
    }
    if (PQstatus(pg->conn) != CONNECTION_OK || PQsocket(pg->conn) < 0) {
        xs_log_warn(pg->log, "pg.pool_reconnect", NULL);
        return xs_pg_reconnect(pg);
    }
    if (PQtransactionStatus(pg->conn) != PQTRANS_IDLE) {
        return xs_pg_rollback(pg);
    }
    return XS_OK;
}

xs_err xs_pg_pool_acquire(xs_pg_pool *pool, int64_t timeout_ms, xs_pg **out)
{
    if (pool == NULL || out == NULL || timeout_ms < 0) {
        return XS_EINVAL;
    }
    int64_t deadline_ms = xs_clock_mono_ms() + timeout_ms;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&pool->mu);
    int slot = -1;
    for (;;) {
        for (int i = 0; i < pool->size; i++) {
            if (!pool->busy[i]) {
                slot = i;
                break;
            }
        }
        if (slot >= 0 || xs_clock_mono_ms() >= deadline_ms) {
            break;
        }
        int rc = pthread_cond_timedwait(&pool->cv, &pool->mu, &deadline);
        if (rc == ETIMEDOUT) {
            /* One last look: a release may have raced the timeout. */
            for (int i = 0; i < pool->size && slot < 0; i++) {
                if (!pool->busy[i]) {
                    slot = i;
                }
            }
            break;
        }
    }
    if (slot < 0) {
        pthread_mutex_unlock(&pool->mu);
        return XS_ETIMEDOUT;
    }
    pool->busy[slot] = true;
    pthread_mutex_unlock(&pool->mu);

    /* Outside the lock: a reconnect can take a while and must not stall other threads. */
    xs_pg *pg = pool->conns[slot];
    xs_err e = revive(pg);
    if (e != XS_OK) {
        pthread_mutex_lock(&pool->mu);
        pool->busy[slot] = false;
        pthread_cond_signal(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
        return e == XS_ENOMEM ? e : XS_EUNAVAILABLE;
    }
    *out = pg;
    return XS_OK;
}

void xs_pg_pool_release(xs_pg_pool *pool, xs_pg *pg)
{
    if (pool == NULL || pg == NULL) {
        return;
    }
    int slot = -1;
    for (int i = 0; i < pool->size; i++) {
        if (pool->conns[i] == pg) {
            slot = i;
            break;
        }
    }
    if (slot < 0) {
        xs_log_error(pool->log, "pg.pool_foreign_release", NULL);
        return;
    }
    /* The next borrower starts clean: no open transaction, no subscriptions. A broken
     * connection is left for the next acquire to reconnect. */
    if (PQstatus(pg->conn) == CONNECTION_OK) {
        if (PQtransactionStatus(pg->conn) != PQTRANS_IDLE) {
            xs_pg_rollback(pg);
        }
        if (pg->nchannels > 0) {
            xs_pg_q0(pg, NULL, "UNLISTEN *");
            free_channels(pg);
        }
    }
    pthread_mutex_lock(&pool->mu);
    pool->busy[slot] = false;
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
}

void xs_pg_pool_destroy(xs_pg_pool *pool)
{
    if (pool == NULL) {
        return;
    }
    for (int i = 0; i < pool->size; i++) {
        xs_pg_close(pool->conns[i]);
    }
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool->conns);
    free(pool->busy);
    free(pool);
}
