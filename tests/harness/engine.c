/* engine.c: the whole engine for end-to-end tests (see engine.h). */
#include "engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xs/json.h"
#include "xs/pg.h"

#define ENV_MAX 64

xst_engine *xst_engine_new(const char *prefix)
{
    xst_engine *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        xst_die("out of memory");
    }
    e->db_url = xst_db_migrated(prefix);
    static int n;
    snprintf(e->dir, sizeof(e->dir), "/tmp/xs-%s-%d-%d", prefix, (int)getpid(), ++n);
    mkdir(e->dir, 0700);
    snprintf(e->bus, sizeof(e->bus), "ipc://%s/bus", e->dir);
    e->api_port = xst_free_port();
    do {
        e->sim_port = xst_free_port();
    } while (e->sim_port == e->api_port);
    snprintf(e->api, sizeof(e->api), "http://127.0.0.1:%u", e->api_port);
    snprintf(e->sim, sizeof(e->sim), "http://127.0.0.1:%u", e->sim_port);
    snprintf(e->token_key, sizeof(e->token_key), "%s", XST_TOKEN_KEY_A);
    return e;
}

char **xst_engine_env(xst_engine *e, char *const extra[])
{
    static char store[ENV_MAX][600];
    static char *env[ENV_MAX + 1];
    int n = 0;
#define ADD(...) snprintf(store[n], sizeof(store[n]), __VA_ARGS__), env[n] = store[n], n++
    ADD("XS_DATABASE_URL=%s", e->db_url);
    ADD("XS_BUS_LISTEN=%s", e->bus);
    if (e->bus2[0] != '\0') {
        ADD("XS_BUS_URL=%s,%s", e->bus, e->bus2);
    } else {
        ADD("XS_BUS_URL=%s", e->bus);
    }
    ADD("XS_HTTP_PORT=%u", e->api_port);
    ADD("XS_API_KEYS=%s", XST_API_KEY);
    ADD("XS_HEARTBEAT=100ms");
    ADD("XS_LOG_LEVEL=debug");
    ADD("XS_XERO_LOGIN_URL=%s", e->sim);
    ADD("XS_XERO_IDENTITY_URL=%s", e->sim);
    ADD("XS_XERO_API_URL=%s", e->sim);
    ADD("XS_XERO_CLIENT_ID=xero-sim-client");
    ADD("XS_XERO_CLIENT_SECRET=xero-sim-secret");
    ADD("XS_XERO_TIMEOUT=10s");
    ADD("XS_OAUTH_REDIRECT_URIS=%s/v1/oauth/callback", e->api);
    ADD("XS_TOKEN_KEY=%s", e->token_key);
    if (e->token_old_keys[0] != '\0') {
        ADD("XS_TOKEN_OLD_KEYS=%s", e->token_old_keys);
    }
    ADD("XS_SIM_PORT=%u", e->sim_port);
    ADD("XS_SIM_REDIRECT_URIS=%s/v1/oauth/callback", e->api);
#undef ADD
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        if (n == ENV_MAX) {
            xst_die("too many environment variables");
        }
        /* A later entry for the same name replaces the earlier one. */
        size_t len = strcspn(extra[i], "=");
        int at = n;
        for (int j = 0; j < n; j++) {
            if (strncmp(env[j], extra[i], len + 1) == 0) {
                at = j;
            }
        }
        snprintf(store[at], sizeof(store[at]), "%s", extra[i]);
        env[at] = store[at];
        if (at == n) {
            n++;
        }
    }
    env[n] = NULL;
    return env;
}

xst_proc *xst_engine_start_sim(xst_engine *e, char *const extra[])
{
    e->sim_proc = xst_spawn("xero-sim", xst_bin("xero-sim"), NULL, xst_engine_env(e, extra));
    char url[256];
    snprintf(url, sizeof(url), "%s/_sim/health", e->sim);
    if (!xst_wait_http(url, 200, 20000)) {
        xst_log_dump(e->sim_proc);
        xst_die("xero-sim did not answer");
    }
    return e->sim_proc;
}

/* wait_health waits until the orchestrator p at base answers /health. */
static xst_proc *wait_health(xst_proc *p, const char *base)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/health", base);
    int64_t end = xst_now_ms() + 20000;
    for (;;) {
        xst_http r = xst_http_do("GET", url, NULL, NULL, 2000);
        long st = r.status;
        xst_http_free(&r);
        if (st == 200 || st == 503) {
            return p;
        }
        if (xst_now_ms() > end || !xst_alive(p)) {
            xst_log_dump(p);
            xst_die("the orchestrator at %s did not answer /health", base);
        }
        usleep(50000);
    }
}

xst_proc *xst_engine_start_orchestrator(xst_engine *e, char *const extra[])
{
    e->orch = xst_spawn("orchestrator", xst_bin("xs-orchestrator"), NULL, xst_engine_env(e, extra));
    return wait_health(e->orch, e->api);
}

void xst_engine_add_orchestrator(xst_engine *e)
{
    snprintf(e->bus2, sizeof(e->bus2), "ipc://%s/bus2", e->dir);
    do {
        e->api2_port = xst_free_port();
    } while (e->api2_port == e->api_port || e->api2_port == e->sim_port);
    snprintf(e->api2, sizeof(e->api2), "http://127.0.0.1:%u", e->api2_port);
}

xst_proc *xst_engine_start_orchestrator2(xst_engine *e, char *const extra[])
{
    if (e->bus2[0] == '\0') {
        xst_die("xst_engine_add_orchestrator first");
    }
    char listen[300], port[40];
    snprintf(listen, sizeof(listen), "XS_BUS_LISTEN=%s", e->bus2);
    snprintf(port, sizeof(port), "XS_HTTP_PORT=%u", e->api2_port);
    char *more[ENV_MAX];
    int n = 0;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < ENV_MAX - 3; i++) {
        more[n++] = extra[i];
    }
    more[n++] = listen;
    more[n++] = port;
    more[n] = NULL;
    e->orch2 =
        xst_spawn("orchestrator-2", xst_bin("xs-orchestrator"), NULL, xst_engine_env(e, more));
    return wait_health(e->orch2, e->api2);
}

xst_proc *xst_engine_start_service(xst_engine *e, const char *service, const char *replica,
                                   char *const extra[])
{
    if (e->nprocs == XST_MAX_PROCS) {
        xst_die("too many processes");
    }
    char bin[64], rid[160];
    snprintf(bin, sizeof(bin), "xs-%s", service);
    snprintf(rid, sizeof(rid), "XS_REPLICA_ID=%s", replica);
    char *more[ENV_MAX];
    int n = 0;
    more[n++] = rid;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < ENV_MAX - 1; i++) {
        more[n++] = extra[i];
    }
    more[n] = NULL;
    xst_proc *p = xst_spawn(replica, xst_bin(bin), NULL, xst_engine_env(e, more));
    e->procs[e->nprocs++] = p;
    return p;
}

void xst_engine_forget(xst_engine *e, xst_proc *p)
{
    for (int i = 0; i < e->nprocs; i++) {
        if (e->procs[i] == p) {
            e->procs[i] = e->procs[--e->nprocs];
            return;
        }
    }
    if (e->orch == p) {
        e->orch = NULL;
    }
    if (e->orch2 == p) {
        e->orch2 = NULL;
    }
    if (e->sim_proc == p) {
        e->sim_proc = NULL;
    }
}

bool xst_engine_wait_live(xst_engine *e, const char *domain, int live, long timeout_ms)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/health", e->api);
    int64_t end = xst_now_ms() + timeout_ms;
    for (;;) {
        xst_http h = xst_http_do("GET", url, NULL, NULL, 5000);
        json_t *v =
            json_object_get(json_object_get(json_object_get(h.json, "domains"), domain), "live");
        int got = json_is_integer(v) ? (int)json_integer_value(v) : -1;
        xst_http_free(&h);
        if (got == live) {
            return true;
        }
        if (xst_now_ms() > end) {
            return false;
        }
        usleep(50000);
    }
}

xst_http xst_engine_api(xst_engine *e, const char *method, const char *path, const char *body)
{
    return xst_engine_api_at(e->api, method, path, body);
}

xst_http xst_engine_api_at(const char *base, const char *method, const char *path, const char *body)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", base, path);
    const char *hdr[] = {"Authorization: Bearer " XST_API_KEY, NULL};
    return xst_http_do(method, url, body, hdr, 60000);
}

json_t *xst_engine_stats(xst_engine *e, const char *conn, const char *block)
{
    char path[160];
    snprintf(path, sizeof(path), "/v1/connections/%s/stats", conn);
    xst_http r = xst_engine_api(e, "GET", path, NULL);
    if (r.status != 200) {
        xst_die("GET %s: %ld %s", path, r.status, r.body != NULL ? r.body : "");
    }
    json_t *b = json_incref(json_object_get(r.json, block));
    xst_http_free(&r);
    return b;
}

json_t *xst_engine_run(xst_engine *e, const char *conn, const char *body, long timeout_ms)
{
    char path[160];
    snprintf(path, sizeof(path), "/v1/connections/%s/sync", conn);
    xst_http r = xst_engine_api(e, "POST", path, body);
    if (r.status != 202) {
        xst_die("POST %s %s: %ld %s", path, body, r.status, r.body);
    }
    char id[40];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r.json, "id")));
    xst_http_free(&r);
    return xst_engine_wait_run(e, id, timeout_ms);
}

json_t *xst_engine_wait_run(xst_engine *e, const char *run_id, long timeout_ms)
{
    char path[160];
    snprintf(path, sizeof(path), "/v1/runs/%s", run_id);
    int64_t end = xst_now_ms() + timeout_ms;
    for (;;) {
        xst_http g = xst_engine_api(e, "GET", path, NULL);
        const char *st = json_string_value(json_object_get(g.json, "status"));
        if (g.status == 200 && st != NULL && strcmp(st, "queued") != 0 &&
            strcmp(st, "running") != 0) {
            json_t *out = json_incref(g.json);
            xst_http_free(&g);
            return out;
        }
        xst_http_free(&g);
        if (xst_now_ms() > end) {
            xst_die("run %s did not end within %ld ms", path, timeout_ms);
        }
        usleep(100000);
    }
}

void xst_engine_start_services(xst_engine *e)
{
    static const char *const services[][2] = {
        {"auth", "auth-1"},         {"contacts", "contacts-1"}, {"invoices", "invoices-1"},
        {"payments", "payments-1"}, {"files", "files-1"},       {"jobs", "jobs-1"}};
    for (size_t i = 0; i < 6; i++) {
        xst_engine_start_service(e, services[i][0], services[i][1], NULL);
    }
    for (size_t i = 0; i < 6; i++) {
        if (!xst_engine_wait_live(e, services[i][0], 1, 20000)) {
            xst_die("%s did not come up", services[i][1]);
        }
    }
}

void xst_engine_start_app_bound(xst_engine *e, int tenants, int app, int window_ms)
{
    char t[40], a[48], w[48];
    snprintf(t, sizeof(t), "XS_SIM_TENANTS=%d", tenants);
    snprintf(a, sizeof(a), "XS_BUDGET_APP_MINUTE=%d", app);
    snprintf(w, sizeof(w), "XS_BUDGET_MINUTE_WINDOW=%dms", window_ms);
    char *const sim_env[] = {t, "XS_SIM_LIMIT_MINUTE=100000", "XS_SIM_LIMIT_DAY=10000000",
                             "XS_SIM_LIMIT_CONCURRENT=1000", NULL};
    xst_engine_start_sim(e, sim_env);
    char *const orch_env[] = {"XS_SCHEDULER=false",
                              "XS_BUDGET_TENANT_MINUTE=100000",
                              "XS_BUDGET_TENANT_DAY=10000000",
                              "XS_BUDGET_MARGIN=50ms",
                              "XS_PUSH_DELAY=600s",
                              a,
                              w,
                              NULL};
    xst_engine_start_orchestrator(e, orch_env);
    xst_engine_start_services(e);
}

void xst_engine_connect_tenants(xst_engine *e, int n, const char *prefix, char (*conns)[40])
{
    json_t *tenants = xst_engine_sim_json(e, "GET", "/_sim/tenants", NULL);
    if ((int)json_array_size(tenants) < n) {
        xst_die("the simulator has %zu tenants, not %d", json_array_size(tenants), n);
    }
    for (int i = 0; i < n; i++) {
        char name[96], consent[96], tenant[40];
        snprintf(name, sizeof(name), "%s %d Ltd", prefix, i);
        snprintf(consent, sizeof(consent), "{\"tenants\":[\"%s\"]}",
                 xs_json_str_or(json_array_get(tenants, (size_t)i), "tenantId", ""));
        json_decref(xst_engine_sim_json(e, "POST", "/_sim/consent", consent));
        free(xst_engine_connected(e, name, conns[i], tenant));
    }
    json_decref(tenants);
}

char *xst_engine_connected(xst_engine *e, const char *name, char *conn, char *tenant)
{
    char *org = xst_engine_org(e, name);
    xst_http cb = xst_engine_connect(e, org);
    if (cb.status != 200) {
        xst_die("connect: %ld %s", cb.status, cb.body);
    }
    json_t *c0 = json_array_get(json_object_get(cb.json, "connections"), 0);
    snprintf(conn, 40, "%s", json_string_value(json_object_get(c0, "id")));
    snprintf(tenant, 40, "%s", json_string_value(json_object_get(c0, "tenant_id")));
    xst_http_free(&cb);
    return org;
}

bool xst_run_status_is(const json_t *run, const char *want)
{
    const char *st = json_string_value(json_object_get(run, "status"));
    if (st != NULL && strcmp(st, want) == 0) {
        return true;
    }
    char *t = xs_json_dump(run, XS_JSON_PRETTY);
    fprintf(stderr, "run: wanted %s, got %s:\n%s\n", want, st != NULL ? st : "(no status)",
            t != NULL ? t : "(none)");
    free(t);
    return false;
}

bool xst_engine_settle(xst_engine *e, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    while (xst_now_ms() < end) {
        if (xst_engine_sql_long(e,
                                "SELECT (SELECT count(*) FROM sync.changes WHERE processed_at IS "
                                "NULL) + (SELECT count(*) FROM sync.runs WHERE status IN "
                                "('queued', 'running'))",
                                0, NULL) == 0) {
            return true;
        }
        usleep(100000);
    }
    return false;
}

long xst_engine_sql_long(xst_engine *e, const char *sql, int nparams, const char *const *params)
{
    char *v = xst_engine_sql(e, sql, nparams, params);
    long n = v != NULL ? atol(v) : -1;
    free(v);
    return n;
}

/* sqlv is xst_engine_sql with its n parameters (at most 8) read from ap. */
static char *sqlv(xst_engine *e, const char *sql, int n, va_list ap)
{
    const char *p[8] = {0};
    if (n > 8) {
        xst_die("at most 8 SQL parameters");
    }
    for (int i = 0; i < n; i++) {
        p[i] = va_arg(ap, const char *);
    }
    return xst_engine_sql(e, sql, n, p);
}

char *xst_engine_sqlf(xst_engine *e, const char *sql, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    char *v = sqlv(e, sql, n, ap);
    va_end(ap);
    return v;
}

long xst_engine_sql_longf(xst_engine *e, const char *sql, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    char *v = sqlv(e, sql, n, ap);
    va_end(ap);
    long out = v != NULL ? atol(v) : -1;
    free(v);
    return out;
}

long xst_run_count(const json_t *run, const char *entity, const char *dir, const char *key)
{
    return (long)json_integer_value(json_object_get(
        json_object_get(json_object_get(json_object_get(run, "counts"), entity), dir), key));
}

json_t *xst_engine_sim_json(xst_engine *e, const char *method, const char *path, const char *body)
{
    xst_http r = xst_engine_simctl(e, method, path, body);
    if (r.status != 200 && r.status != 201) {
        xst_die("sim %s %s: %ld %s", method, path, r.status, r.body != NULL ? r.body : "");
    }
    json_t *j = json_incref(r.json);
    xst_http_free(&r);
    return j;
}

xst_http xst_engine_simctl(xst_engine *e, const char *method, const char *path, const char *body)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", e->sim, path);
    return xst_http_do(method, url, body, NULL, 60000);
}

long xst_engine_sim_calls(xst_engine *e, const char *endpoint, int status)
{
    xst_http r = xst_engine_simctl(e, "GET", "/_sim/stats", NULL);
    json_t *m = json_object_get(json_object_get(r.json, "by_endpoint"), endpoint);
    long n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        if (status == 0 || atoi(k) == status) {
            n += (long)json_integer_value(v);
        }
    }
    xst_http_free(&r);
    return n;
}

char *xst_engine_sql(xst_engine *e, const char *sql, int nparams, const char *const *params)
{
    xs_pg *pg = NULL;
    if (xs_pg_connect(&pg, e->db_url, "xs-test", 5000, NULL) != XS_OK) {
        xst_die("cannot connect to %s", e->db_url);
    }
    xs_pg_res *r = NULL;
    if (xs_pg_exec(pg, &r, sql, nparams, params) != XS_OK) {
        xst_die("SQL failed: %s: %s", sql, xs_pg_error(pg));
    }
    char *out = NULL;
    if (r != NULL && xs_pg_res_nrows(r) > 0 && xs_pg_res_ncols(r) > 0 &&
        xs_pg_res_get(r, 0, 0) != NULL) {
        out = strdup(xs_pg_res_get(r, 0, 0));
    }
    xs_pg_res_free(r);
    xs_pg_close(pg);
    return out;
}

char *xst_engine_org(xst_engine *e, const char *name)
{
    const char *p[] = {name};
    char *id =
        xst_engine_sql(e, "INSERT INTO app.organisations (name) VALUES ($1) RETURNING id", 1, p);
    if (id == NULL) {
        xst_die("no organisation made");
    }
    return id;
}

xst_http xst_engine_connect(xst_engine *e, const char *org)
{
    return xst_engine_connect_as(e, org, false);
}

xst_http xst_engine_connect_as(xst_engine *e, const char *org, bool xpm)
{
    char body[160];
    snprintf(body, sizeof(body), "{\"organisation_id\":\"%s\"%s}", org, xpm ? ",\"xpm\":true" : "");
    xst_http a = xst_engine_api(e, "POST", "/v1/connections/authorize", body);
    const char *url = json_string_value(json_object_get(a.json, "authorize_url"));
    if (a.status != 201 || url == NULL) {
        fprintf(stderr, "authorize: %ld %s\n", a.status, a.body);
        return a;
    }
    /* The simulator consents at once and redirects to the callback. */
    xst_http consent = xst_http_do("GET", url, NULL, NULL, 10000);
    xst_http_free(&a);
    if (consent.status != 302 || consent.location == NULL) {
        fprintf(stderr, "consent: %ld %s\n", consent.status, consent.body);
        return consent;
    }
    xst_http cb = xst_http_do("GET", consent.location, NULL, NULL, 60000);
    xst_http_free(&consent);
    return cb;
}

/* How many processes xst_engine_free found exited badly, in every engine of the test. */
static int bad_exits;

int xst_result(int failed)
{
    if (failed == 0 && bad_exits > 0) {
        fprintf(stderr, "%d process(es) of the engine exited badly when stopped (above)\n",
                bad_exits);
        return 1;
    }
    return failed;
}

int xst_engine_free(xst_engine *e)
{
    int bad = 0;
    for (int i = 0; i < e->nprocs; i++) {
        int code = xst_stop(e->procs[i], 10000);
        if (code != 0) {
            fprintf(stderr, "%s exited with %d\n", e->procs[i]->name, code);
            xst_log_dump(e->procs[i]);
            bad++;
        }
        xst_proc_free(e->procs[i]);
    }
    xst_proc *last[] = {e->orch2, e->orch, e->sim_proc};
    for (size_t i = 0; i < 3; i++) {
        if (last[i] == NULL) {
            continue;
        }
        int code = xst_stop(last[i], 10000);
        if (code != 0) {
            fprintf(stderr, "%s exited with %d\n", last[i]->name, code);
            xst_log_dump(last[i]);
            bad++;
        }
        xst_proc_free(last[i]);
    }
    free(e->db_url);
    free(e);
    bad_exits += bad;
    return bad;
}

void xst_engine_mapped(xst_engine *e, const char *entity, int offset, char lid[40], char xid[40])
{
    char off[16];
    snprintf(off, sizeof(off), "%d", offset);
    char *row = xst_engine_sqlf(e,
                                "SELECT local_id || ' ' || xero_id FROM sync.mappings WHERE entity "
                                "= $1 ORDER BY local_id OFFSET $2 LIMIT 1",
                                2, entity, off);
    if (row == NULL || strlen(row) != 73) {
        xst_die("no %s mapping at offset %d", entity, offset);
    }
    snprintf(lid, 40, "%.36s", row);
    snprintf(xid, 40, "%s", row + 37);
    free(row);
}
