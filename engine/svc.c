/* svc.c: the domain-service runtime (see svc.h). */
#include "engine/svc.h"

#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "xs/clock.h"
#include "xs/json.h"
#include "xs/migrate.h"

/* How often a worker blocked on the bus looks up to see whether it should stop. */
#define NODE_STALE_MIN_MS 3000 /* the least time without the hub before a redial */
#define RECV_POLL_MS      200

typedef struct svc svc;

/* One counter: its name, its labels' names and values, and its value. */
typedef struct svc_counter {
    char key[512]; /* name and labels joined, to find it */
    char name[48];
    int nlabels;
    char label[XS_SVC_LABELS_MAX][2][96]; /* name, value */
    int64_t value;
} svc_counter;

/* Plain C, not JSON: handlers count inside their request's JSON arena (svc_def.json_arena),
 * whose values do not outlive the request. */
struct xs_svc_counters {
    pthread_mutex_t mu;
    svc_counter *c; /* XS_SVC_COUNTERS_MAX of them */
    int n;
    bool full; /* XS_SVC_COUNTERS_MAX reached (logged once) */
    xs_log *log;
};

typedef struct worker {
    svc *s;
    int index;
    xs_bus_worker *bw;
    xs_svc_ctx ctx;
    pthread_t thread;
    bool started;
} worker;

struct svc {
    const xs_svc_def *def;
    xs_proc proc;
    xs_bus_node *node;
    void *state;
    char replica[128];
    const char *db_url;
    int64_t db_wait_ms;
    int nworkers;
    worker *workers;
    atomic_bool stop;
    atomic_int busy;
    atomic_llong handled;
    atomic_llong failed;
    xs_svc_counters counters;
};

xs_err xs_svc_fail(xs_svc_ctx *ctx, xs_err code, bool retryable, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
    ctx->retryable = retryable;
    ctx->field[0] = '\0';
    return code;
}

xs_err xs_svc_fail_field(xs_svc_ctx *ctx, xs_err code, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
    ctx->retryable = false;
    snprintf(ctx->field, sizeof(ctx->field), "%s", field != NULL ? field : "");
    return code;
}

void xs_svc_publish(xs_svc_ctx *ctx, const char *type, const char *conn, json_t *body)
{
    char id[XS_PROTO_ID_MAX];
    char *buf = NULL;
    size_t len = 0;
    if (xs_proto_new_id(id) != XS_OK) {
        json_decref(body);
        return;
    }
    if (xs_proto_encode(type, id, conn, body, &buf, &len) != XS_OK) {
        xs_log_error(ctx->proc->log, "svc.bad_event", "{s:s}", "type", type);
        return;
    }
    if (xs_bus_publish(ctx->node, buf, len) != XS_OK) {
        xs_log_warn(ctx->proc->log, "svc.publish_failed", "{s:s}", "type", type);
    }
    free(buf);
}

void xs_svc_count(xs_svc_ctx *ctx, const char *name, const char *const *labels, int64_t n)
{
    xs_svc_counters *cs = ctx->counters;
    char key[512];
    size_t len = (size_t)snprintf(key, sizeof(key), "%s", name);
    int nl = 0;
    for (; labels != NULL && labels[2 * nl] != NULL && labels[2 * nl + 1] != NULL &&
           nl < XS_SVC_LABELS_MAX;
         nl++) {
        if (len < sizeof(key)) {
            len += (size_t)snprintf(key + len, sizeof(key) - len, "\x1f%s=%s", labels[2 * nl],
                                    labels[2 * nl + 1]);
        }
    }
    pthread_mutex_lock(&cs->mu);
    int i = 0;
    while (i < cs->n && strcmp(cs->c[i].key, key) != 0) {
        i++;
    }
    if (i < cs->n) {
        cs->c[i].value += n;
    } else if (cs->n < XS_SVC_COUNTERS_MAX) {
        svc_counter *c = &cs->c[cs->n++];
        memset(c, 0, sizeof(*c));
        snprintf(c->key, sizeof(c->key), "%s", key);
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->nlabels = nl;
        for (int k = 0; k < nl; k++) {
            snprintf(c->label[k][0], sizeof(c->label[k][0]), "%s", labels[2 * k]);
            snprintf(c->label[k][1], sizeof(c->label[k][1]), "%s", labels[2 * k + 1]);
        }
        c->value = n;
    } else if (!cs->full) {
        cs->full = true;
        xs_log_warn(cs->log, "svc.counters_full", "{s:s, s:i}", "name", name, "max",
                    XS_SVC_COUNTERS_MAX);
    }
    pthread_mutex_unlock(&cs->mu);
}

void xs_svc_count_call(xs_svc_ctx *ctx, const xs_xero_call *call)
{
    char endpoint[XS_XERO_ENDPOINT_MAX], status[24];
    xs_xero_endpoint(call, endpoint);
    if (call->status > 0) {
        snprintf(status, sizeof(status), "%ld", call->status);
    } else {
        snprintf(status, sizeof(status), "error");
    }
    const char *req[] = {"endpoint", endpoint, "status", status, NULL};
    xs_svc_count(ctx, "xero_requests", req, 1);
    ctx->calls++;
    if (call->status == 429) {
        static const char *const problems[] = {"minute", "day", "appminute", "concurrent"};
        const char *problem = "unknown";
        for (size_t i = 0; i < sizeof(problems) / sizeof(problems[0]); i++) {
            if (strcasecmp(call->rate.problem, problems[i]) == 0) {
                problem = problems[i];
            }
        }
        const char *lim[] = {"problem", problem, NULL};
        xs_svc_count(ctx, "xero_rate_limited", lim, 1);
    }
}

/* counters_json is every counter as JSON (new), for a heartbeat (outside any arena). */
static json_t *counters_json(xs_svc_counters *cs)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&cs->mu);
    for (int i = 0; arr != NULL && i < cs->n; i++) {
        const svc_counter *c = &cs->c[i];
        json_t *labels = json_object();
        for (int k = 0; k < c->nlabels; k++) {
            json_object_set_new(labels, c->label[k][0], json_string(c->label[k][1]));
        }
        json_array_append_new(arr, json_pack("{s:s, s:o, s:I}", "name", c->name, "labels", labels,
                                             "value", (json_int_t)c->value));
    }
    pthread_mutex_unlock(&cs->mu);
    return arr != NULL ? arr : json_array();
}

/* default_retryable: whether an error the handler did not describe is worth retrying. */
static bool default_retryable(xs_err e)
{
    switch (e) {
    case XS_ETIMEDOUT:
    case XS_ECLOSED:
    case XS_EDB:
    case XS_EBUSY:
    case XS_ECONFLICT:
    case XS_ERATELIMIT:
    case XS_EUNAVAILABLE:
    case XS_EIO:
    case XS_EHTTP:
    case XS_ENOMEM:
        return true;
    default:
        return false;
    }
}

/* handle_ping answers sys.ping (every service). */
static xs_err handle_ping(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply)
{
    int64_t delay = 0;
    if (xs_json_get_int(req->body, "delay_ms", &delay) == XS_OK && delay > 0) {
        xs_clock_sleep_ms(delay);
    }
    json_t *body = json_pack("{s:s, s:s, s:I}", "service", ctx->service, "replica", ctx->replica,
                             "pid", (json_int_t)getpid());
    if (body == NULL) {
        return XS_ENOMEM;
    }
    json_t *echo = json_object_get(req->body, "echo");
    if (json_is_string(echo)) {
        json_object_set(body, "echo", echo);
    }
    *reply = body;
    return XS_OK;
}

/* counts_calls tells whether spec (a request's, NULL: none) is a step's, whose reply and error
 * say the calls to Xero it made. */
static bool counts_calls(const xs_proto_spec *spec)
{
    const xs_proto_spec *reply =
        spec != NULL && spec->reply != NULL ? xs_proto_find(spec->reply) : NULL;
    for (size_t i = 0; reply != NULL && i < reply->nfields; i++) {
        if (strcmp(reply->fields[i].name, "calls") == 0) {
            return true;
        }
    }
    return false;
}

/* settle_calls makes a step's reply say the calls it made: the handler's own count, raised
 * to the runtime's (calls) when lower, since every call that passed its audit was made. */
static void settle_calls(const svc *s, const xs_msg *req, json_t *reply, int64_t calls)
{
    int64_t said = -1;
    if (!counts_calls(req->spec) ||
        (xs_json_get_int(reply, "calls", &said) == XS_OK && said >= calls)) {
        return;
    }
    if (said >= 0) {
        xs_log_warn(s->proc.log, "svc.calls_undercounted", "{s:s, s:s, s:I, s:I}", "request",
                    req->id, "type", req->type, "said", (json_int_t)said, "made",
                    (json_int_t)calls);
    }
    json_object_set_new(reply, "calls", json_integer(calls));
}

/* send_error replies with an error for request id, naming field (may be NULL) and the calls
 * to Xero the request made (-1: not said). */
static void send_error_calls(worker *w, const char *id, xs_err code, const char *field,
                             const char *message, bool retryable, int64_t calls)
{
    char *buf = NULL;
    size_t len = 0;
    if (xs_proto_encode_error_at(id, code, field, message, retryable, calls, &buf, &len) != XS_OK) {
        xs_log_error(w->s->proc.log, "svc.reply_failed", "{s:s}", "request", id);
        return;
    }
    if (xs_bus_worker_reply(w->bw, buf, len) != XS_OK) {
        xs_log_warn(w->s->proc.log, "svc.reply_failed", "{s:s}", "request", id);
    }
    free(buf);
    atomic_fetch_add(&w->s->failed, 1);
}

/* ensure_db re-establishes the worker's database connection when it was lost. */
static xs_err ensure_db(worker *w)
{
    svc *s = w->s;
    if (w->ctx.pg != NULL && xs_pg_is_ok(w->ctx.pg)) {
        return XS_OK;
    }
    if (w->ctx.pg != NULL && xs_pg_reconnect(w->ctx.pg) == XS_OK) {
        return XS_OK;
    }
    xs_pg_close(w->ctx.pg);
    w->ctx.pg = NULL;
    xs_err e = xs_pg_connect(&w->ctx.pg, s->db_url, s->def->name, 0, s->proc.log);
    if (e != XS_OK) {
        w->ctx.pg = NULL;
    }
    return e;
}

/* serve handles one received request and replies. */
static void serve(worker *w, const void *buf, size_t len)
{
    svc *s = w->s;
    xs_msg *req = NULL;
    char id[XS_PROTO_ID_MAX];
    char err[XS_PROTO_ERR_MAX];
    xs_err e = xs_proto_decode(buf, len, &req, id, err);
    if (e != XS_OK) {
        xs_log_warn(s->proc.log, "svc.bad_request", "{s:s, s:s, s:s}", "request", id, "err",
                    xs_err_name(e), "reason", err);
        send_error_calls(w, id, e, NULL, err, false, -1);
        return;
    }
    xs_svc_handler fn = NULL;
    if (req->spec->kind == XS_PROTO_REQUEST) {
        if (strcmp(req->type, "sys.ping") == 0) {
            fn = handle_ping;
        }
        for (size_t i = 0; fn == NULL && i < s->def->nroutes; i++) {
            if (strcmp(s->def->routes[i].type, req->type) == 0) {
                fn = s->def->routes[i].fn;
            }
        }
    }
    if (fn == NULL) {
        snprintf(err, sizeof(err), "%s does not handle %s", s->def->service, req->type);
        xs_log_warn(s->proc.log, "svc.unhandled", "{s:s, s:s}", "request", req->id, "type",
                    req->type);
        send_error_calls(w, req->id, XS_EUNSUPPORTED, NULL, err, false,
                         counts_calls(req->spec) ? 0 : -1);
        xs_msg_free(req);
        return;
    }
    if (fn != handle_ping && (e = ensure_db(w)) != XS_OK) {
        send_error_calls(w, req->id, XS_EUNAVAILABLE, NULL, "database unavailable", true,
                         counts_calls(req->spec) ? 0 : -1);
        xs_msg_free(req);
        return;
    }

    int64_t t0 = xs_clock_mono_ms();
    json_t *reply = NULL;
    w->ctx.err[0] = '\0';
    w->ctx.field[0] = '\0';
    w->ctx.retryable = false;
    w->ctx.calls = 0;
    e = fn(&w->ctx, req, &reply);
    bool described = w->ctx.err[0] != '\0';
    if (fn != handle_ping && w->ctx.pg != NULL) {
        /* A handler never leaves a transaction open for the next request. */
        xs_pg_rollback(w->ctx.pg);
    }
    if (e != XS_OK) {
        json_decref(reply);
        bool retry = described ? w->ctx.retryable : default_retryable(e);
        const char *msg = described ? w->ctx.err : xs_strerror(e);
        xs_log_warn(s->proc.log, "svc.request_failed", "{s:s, s:s, s:s, s:s, s:b}", "request",
                    req->id, "type", req->type, "err", xs_err_name(e), "reason", msg, "retryable",
                    retry);
        send_error_calls(w, req->id, e, w->ctx.field, msg, retry,
                         counts_calls(req->spec) ? w->ctx.calls : -1);
        xs_msg_free(req);
        return;
    }
    settle_calls(s, req, reply, w->ctx.calls);
    char *out = NULL;
    size_t outlen = 0;
    e = xs_proto_encode(req->spec->reply, req->id, req->conn, reply, &out, &outlen);
    if (e != XS_OK) {
        xs_log_error(s->proc.log, "svc.bad_reply", "{s:s, s:s}", "request", req->id, "type",
                     req->type);
        send_error_calls(w, req->id, XS_EPROTO, NULL, "the service built a malformed reply", false,
                         counts_calls(req->spec) ? w->ctx.calls : -1);
        xs_msg_free(req);
        return;
    }
    e = xs_bus_worker_reply(w->bw, out, outlen);
    free(out);
    if (e == XS_ETOOBIG) {
        send_error_calls(w, req->id, XS_ETOOBIG, NULL, "reply larger than XS_BUS_MAX_MSG", false,
                         counts_calls(req->spec) ? w->ctx.calls : -1);
    } else if (e != XS_OK) {
        xs_log_warn(s->proc.log, "svc.reply_failed", "{s:s, s:s}", "request", req->id, "err",
                    xs_err_name(e));
    }
    xs_log_debug(s->proc.log, "svc.request", "{s:s, s:s, s:I}", "request", req->id, "type",
                 req->type, "duration_ms", (json_int_t)(xs_clock_mono_ms() - t0));
    xs_msg_free(req);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    svc *s = w->s;
    if (ensure_db(w) != XS_OK) {
        xs_log_warn(s->proc.log, "svc.db_unavailable", "{s:i}", "worker", w->index);
    }
    while (!atomic_load(&s->stop)) {
        void *buf = NULL;
        size_t len = 0;
        xs_err e = xs_bus_worker_recv(w->bw, RECV_POLL_MS, &buf, &len);
        if (e == XS_ETIMEDOUT) {
            continue;
        }
        if (e == XS_ECLOSED) {
            break;
        }
        if (e != XS_OK) {
            xs_log_warn(s->proc.log, "svc.recv_failed", "{s:s}", "err", xs_err_name(e));
            xs_clock_sleep_ms(RECV_POLL_MS);
            continue;
        }
        atomic_fetch_add(&s->busy, 1);
        if (s->def->json_arena) {
            xs_json_arena_begin();
        }
        serve(w, buf, len);
        if (s->def->json_arena) {
            xs_json_arena_end();
        }
        free(buf);
        atomic_fetch_sub(&s->busy, 1);
        atomic_fetch_add(&s->handled, 1);
    }
    return NULL;
}

/* publish_heartbeat publishes event.heartbeat; stopping marks the last one. */
static void publish_heartbeat(svc *s, bool stopping)
{
    char id[XS_PROTO_ID_MAX];
    char started[XS_TIME_ISO_MAX];
    if (xs_proto_new_id(id) != XS_OK) {
        return;
    }
    xs_time_format_iso(s->proc.started, started);
    json_t *body = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:i, s:i, s:I, s:I, s:b}", "service",
                             s->def->service, "domain", xs_bus_domain_name(s->def->domain),
                             "replica", s->replica, "pid", (json_int_t)getpid(), "version",
                             XS_VERSION, "started_at", started, "workers", s->nworkers, "busy",
                             atomic_load(&s->busy), "handled", (json_int_t)atomic_load(&s->handled),
                             "failed", (json_int_t)atomic_load(&s->failed), "stopping", stopping);
    json_object_set_new(body, "counters", counters_json(&s->counters));
    char *buf = NULL;
    size_t len = 0;
    if (xs_proto_encode("event.heartbeat", id, NULL, body, &buf, &len) != XS_OK) {
        return;
    }
    xs_bus_publish(s->node, buf, len);
    free(buf);
}

/* check_database waits for PostgreSQL, refuses a schema of another version, and runs the
 * service's init with that connection. */
static xs_err check_database(svc *s)
{
    xs_pg *pg = NULL;
    xs_err e = xs_pg_connect(&pg, s->db_url, s->def->name, s->db_wait_ms, s->proc.log);
    if (e != XS_OK) {
        xs_log_error(s->proc.log, "db.unreachable", "{s:s}", "err", xs_err_name(e));
        return e;
    }
    char why[160];
    e = xs_migrate_check(pg, why);
    if (e != XS_OK) {
        xs_log_error(s->proc.log, "db.schema_mismatch", "{s:s}", "reason", why);
        xs_pg_close(pg);
        return e;
    }
    if (s->def->init != NULL) {
        e = s->def->init(&s->proc, pg, &s->state);
        if (e != XS_OK) {
            xs_log_error(s->proc.log, "svc.init_failed", "{s:s}", "err", xs_err_name(e));
        }
    }
    xs_pg_close(pg);
    return e;
}

/* shutdown_workers stops and joins every started worker and frees them. */
static void shutdown_workers(svc *s)
{
    atomic_store(&s->stop, true);
    for (int i = 0; i < s->nworkers; i++) {
        if (s->workers[i].started) {
            pthread_join(s->workers[i].thread, NULL);
        }
    }
    for (int i = 0; i < s->nworkers; i++) {
        xs_bus_worker_destroy(s->workers[i].bw);
        xs_pg_close(s->workers[i].ctx.pg);
        if (s->def->worker_fini != NULL && s->workers[i].ctx.wstate != NULL) {
            s->def->worker_fini(s->workers[i].ctx.wstate);
        }
    }
    free(s->workers);
    s->workers = NULL;
}

/* tune_malloc keeps a pull's large blocks on the heap rather than mapped afresh each page. */
static void tune_malloc(void)
{
    /* A pull handles megabytes a page (the reply, the documents written to PostgreSQL): glibc
     * would map each such block afresh and give it back when freed, so that every page paid
     * for the kernel zeroing its memory again (a tenth of a contacts pull's CPU in perf).
     * Large blocks come from the heap instead, and freed memory is kept for the next page, up
     * to 256 MiB a process. Fast bins are off: a page frees tens of thousands of small blocks,
     * which the fast bins would hold until the next large request made glibc merge them all at
     * once (malloc_consolidate, a seventh of xs-contacts' CPU in an import); without them each
     * free merges as it goes, and an import page costs xs-contacts 45-47 ms of CPU instead of
     * 53-57 (bench/RESULTS.md). */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MXFAST, 0);
}

/* read_config takes what the runtime reads of the configuration, after the service's own
 * check: XS_EXIT_OK, or the exit code to stop with. */
static int read_config(svc *s)
{
    const xs_config *cfg = s->proc.cfg;
    if (s->def->check_config != NULL) {
        char err[XS_CONFIG_ERR_MAX] = "";
        if (s->def->check_config(&s->proc, err) != XS_OK) {
            xs_log_error(s->proc.log, "config.invalid", "{s:s}", "error", err);
            return XS_EXIT_CONFIG;
        }
    }
    s->db_url = xs_config_str(cfg, "XS_DATABASE_URL");
    s->db_wait_ms = xs_config_int(cfg, "XS_DB_CONNECT_WAIT");
    s->nworkers = (int)xs_config_int(cfg, "XS_WORKERS");
    const char *rid = xs_config_str(cfg, "XS_REPLICA_ID");
    if (rid != NULL) {
        snprintf(s->replica, sizeof(s->replica), "%s", rid);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof(host));
        host[sizeof(host) - 1] = '\0';
        snprintf(s->replica, sizeof(s->replica), "%s-%d", host, (int)getpid());
    }
    return XS_EXIT_OK;
}

/* dial_bus connects the service's node to the orchestrator's bus: XS_EXIT_OK, or the exit
 * code to stop with. */
static int dial_bus(svc *s, const char **url)
{
    const xs_config *cfg = s->proc.cfg;
    xs_bus_opts bo = {.url = xs_config_str(cfg, "XS_BUS_URL"),
                      .tls_dir = xs_config_str(cfg, "XS_BUS_TLS_DIR"),
                      .insecure = xs_config_bool(cfg, "XS_BUS_INSECURE"),
                      .max_msg = (size_t)xs_config_int(cfg, "XS_BUS_MAX_MSG"),
                      .log = s->proc.log};
    *url = bo.url;
    xs_err e = xs_bus_node_create(&s->node, s->def->domain, &bo);
    if (e != XS_OK) {
        xs_log_error(s->proc.log, "bus.dial_failed", "{s:s}", "url", bo.url);
        return e == XS_EINVAL ? XS_EXIT_CONFIG : XS_EXIT_FAIL;
    }
    return XS_EXIT_OK;
}

/* start_workers makes the workers (their bus sockets and own state) and starts their threads;
 * false when one cannot be (logged), the ones made being left to shutdown_workers. */
static bool start_workers(svc *s)
{
    s->workers = calloc((size_t)s->nworkers, sizeof(worker));
    if (s->workers == NULL) {
        return false;
    }
    for (int i = 0; i < s->nworkers; i++) {
        worker *w = &s->workers[i];
        w->s = s;
        w->index = i;
        w->ctx.proc = &s->proc;
        w->ctx.state = s->state;
        w->ctx.replica = s->replica;
        w->ctx.service = s->def->service;
        w->ctx.node = s->node;
        w->ctx.counters = &s->counters;
        if (xs_bus_worker_create(s->node, &w->bw) != XS_OK) {
            xs_log_error(s->proc.log, "bus.worker_failed", "{s:i}", "worker", i);
            return false;
        }
        if (s->def->worker_init != NULL && s->def->worker_init(s->state, &w->ctx.wstate) != XS_OK) {
            xs_log_error(s->proc.log, "svc.worker_init_failed", "{s:i}", "worker", i);
            return false;
        }
    }
    for (int i = 0; i < s->nworkers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            xs_log_error(s->proc.log, "svc.thread_failed", "{s:i}", "worker", i);
            return false;
        }
        s->workers[i].started = true;
    }
    return true;
}

/* beat_until_signal publishes heartbeats until SIGTERM or SIGINT, redialling the hub when it
 * has been away, and returns the signal. */
static int beat_until_signal(svc *s)
{
    int64_t beat = xs_config_int(s->proc.cfg, "XS_HEARTBEAT");
    publish_heartbeat(s, false);
    int sig;
    while ((sig = xs_proc_wait_signal(&s->proc, beat)) == 0) {
        /* Away from the orchestrator for five beats (it restarted, say): dial afresh. */
        xs_bus_node_check(s->node, beat * 5 > NODE_STALE_MIN_MS ? beat * 5 : NODE_STALE_MIN_MS);
        publish_heartbeat(s, false);
    }
    return sig;
}

int xs_svc_main(const xs_svc_def *def, int argc, char **argv)
{
    svc s;
    memset(&s, 0, sizeof(s));
    s.def = def;
    if (def->json_arena) {
        xs_json_arena_install(); /* before any thread starts */
        tune_malloc();
    }
    int code;
    if (xs_proc_start(&s.proc, def->name, def->procmask, argc, argv, def->usage, &code) != XS_OK) {
        return code;
    }
    pthread_mutex_init(&s.counters.mu, NULL);
    s.counters.c = calloc(XS_SVC_COUNTERS_MAX, sizeof(svc_counter));
    s.counters.log = s.proc.log;
    if (s.counters.c == NULL) {
        code = XS_EXIT_FAIL;
        goto done;
    }
    const char *url = NULL;
    if ((code = read_config(&s)) != XS_EXIT_OK) {
        goto done;
    }
    xs_err e = check_database(&s);
    if (e != XS_OK) {
        code = e == XS_ECONFIG ? XS_EXIT_CONFIG : XS_EXIT_FAIL;
        goto done;
    }
    if ((code = dial_bus(&s, &url)) != XS_EXIT_OK) {
        goto done;
    }
    if (!start_workers(&s)) {
        code = XS_EXIT_FAIL;
        goto done;
    }
    xs_log_info(s.proc.log, "svc.ready", "{s:s, s:s, s:s, s:i}", "service", def->service, "replica",
                s.replica, "bus", url, "workers", s.nworkers);
    int sig = beat_until_signal(&s);
    xs_log_info(s.proc.log, "svc.stopping", "{s:i, s:i}", "signal", sig, "busy",
                atomic_load(&s.busy));
    code = XS_EXIT_OK;

done:
    if (s.workers != NULL) {
        shutdown_workers(&s);
    }
    if (s.node != NULL) {
        publish_heartbeat(&s, true);
        /* Give the last heartbeat a moment to leave before the socket closes. */
        xs_clock_sleep_ms(100);
        xs_bus_node_destroy(s.node);
    }
    if (def->fini != NULL && s.state != NULL) {
        def->fini(s.state);
    }
    xs_proc_finish(&s.proc, code);
    free(s.counters.c);
    pthread_mutex_destroy(&s.counters.mu);
    return code;
}

xs_err xs_svc_xero_worker(const xs_xero_opts *opts, void **wstate)
{
    xs_xero *x = NULL;
    xs_err e = xs_xero_create(&x, opts);
    if (e == XS_OK) {
        *wstate = x;
    }
    return e;
}

void xs_svc_xero_worker_fini(void *wstate)
{
    xs_xero_destroy(wstate);
}
