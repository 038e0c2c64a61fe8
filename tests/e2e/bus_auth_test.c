/*
 * bus_auth_test.c: the bus lets in only the deployment's own processes (issue 17).
 *
 * The real orchestrator listens on tls+tcp:// with certificates made by scripts/xs-certs; the
 * real auth, invoices and payments services dial in with theirs. No contacts replica of the
 * deployment runs at first. Strangers dial the contacts sockets as contacts replicas: one
 * with no certificate, one with a certificate from another deployment's CA, one with the
 * deployment's valid invoices certificate; and the real invoices certificate publishes
 * heartbeats claiming to be a contacts replica. A contacts sync (whose requests hold the
 * connection's live Xero access token) is started: no stranger receives anything, /health
 * keeps reporting no live contacts replica, and the forged heartbeats are logged. Then the
 * deployment's contacts replica starts and the same run finishes.
 */
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "proto.h"
#include "xs/bus.h"

static char certs[200], other[200];

static void sh(const char *cmd)
{
    if (system(cmd) != 0) {
        xst_die("command failed: %s", cmd);
    }
}

/* A stranger on the contacts sockets, built from the bus module (with certificates). */
typedef struct stranger {
    const char *what;
    xs_bus_node *node;
    xs_bus_worker *worker;
    atomic_int received;
    atomic_bool stop;
    pthread_t th;
} stranger;

static void *stranger_main(void *arg)
{
    stranger *s = arg;
    while (!atomic_load(&s->stop)) {
        void *buf = NULL;
        size_t len = 0;
        if (xs_bus_worker_recv(s->worker, 50, &buf, &len) == XS_OK) {
            atomic_fetch_add(&s->received, 1);
            fprintf(stderr, "bus_auth: %s received %.*s\n", s->what, (int)len, (char *)buf);
            free(buf);
        }
    }
    return NULL;
}

static void stranger_start(stranger *s, const char *what, const char *bus, const char *dir,
                           xs_bus_domain domain)
{
    s->what = what;
    atomic_init(&s->received, 0);
    atomic_init(&s->stop, false);
    xs_bus_opts o = {.url = bus, .tls_dir = dir, .max_msg = 16 << 20};
    if (xs_bus_node_create(&s->node, domain, &o) != XS_OK ||
        xs_bus_worker_create(s->node, &s->worker) != XS_OK ||
        pthread_create(&s->th, NULL, stranger_main, s) != 0) {
        xst_die("cannot start the stranger %s", what);
    }
}

static void stranger_stop(stranger *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    xs_bus_worker_destroy(s->worker);
    xs_bus_node_destroy(s->node);
}

/* forged_heartbeat: a heartbeat of a contacts replica "forged-1". */
static void forged_heartbeat(xs_bus_node *node)
{
    char id[XS_PROTO_ID_MAX];
    if (xs_proto_new_id(id) != XS_OK) {
        xst_die("no id");
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:i, s:i, s:i, s:b}", "service",
                             "xs-contacts", "domain", "contacts", "replica", "forged-1", "pid", 1,
                             "version", "0", "started_at", "2026-12-06T00:00:00Z", "workers", 1,
                             "busy", 0, "handled", 0, "failed", 0, "stopping", 0);
    char *buf = NULL;
    size_t len = 0;
    /* The codec takes the body. */
    if (xs_proto_encode("event.heartbeat", id, NULL, body, &buf, &len) != XS_OK) {
        xst_die("cannot encode a heartbeat");
    }
    xs_bus_publish(node, buf, len);
    free(buf);
}

/* health_contacts reads domains.contacts.<key> of /health ("live": replicas with a heartbeat,
 * "connected": pipes on the contacts socket). */
static long health_contacts(xst_engine *e, const char *key)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/health", e->api);
    xst_http h = xst_http_do("GET", url, NULL, NULL, 5000);
    json_t *v =
        json_object_get(json_object_get(json_object_get(h.json, "domains"), "contacts"), key);
    long live = json_is_integer(v) ? (long)json_integer_value(v) : -1;
    xst_http_free(&h);
    return live;
}

int main(void)
{
    xst_engine *e = xst_engine_new("busauth");
    snprintf(certs, sizeof(certs), "%s/certs", e->dir);
    snprintf(other, sizeof(other), "%s/other", e->dir);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "sh '%s' init %s >/dev/null && sh '%s' init %s >/dev/null",
             XS_CERTS_SCRIPT, certs, XS_CERTS_SCRIPT, other);
    sh(cmd);
    /* Another deployment's contacts certificate, with this deployment's trust in the hub. */
    snprintf(cmd, sizeof(cmd),
             "mkdir -m 700 %s/strange && cp %s/contacts/cert.pem %s/contacts/key.pem "
             "%s/contacts/trust-orchestrator.pem %s/strange/",
             e->dir, other, other, certs, e->dir);
    sh(cmd);
    snprintf(e->bus, sizeof(e->bus), "tls+tcp://127.0.0.1:%u", xst_free_ports(XS_BUS_SOCKETS));

    char dir_orch[300], dir_auth[300], dir_inv[300], dir_pay[300], dir_con[300], dir_files[300],
        dir_jobs[300];
    snprintf(dir_files, sizeof(dir_files), "XS_BUS_TLS_DIR=%s/files", certs);
    snprintf(dir_jobs, sizeof(dir_jobs), "XS_BUS_TLS_DIR=%s/jobs", certs);
    snprintf(dir_orch, sizeof(dir_orch), "XS_BUS_TLS_DIR=%s/orchestrator", certs);
    snprintf(dir_auth, sizeof(dir_auth), "XS_BUS_TLS_DIR=%s/auth", certs);
    snprintf(dir_inv, sizeof(dir_inv), "XS_BUS_TLS_DIR=%s/invoices", certs);
    snprintf(dir_pay, sizeof(dir_pay), "XS_BUS_TLS_DIR=%s/payments", certs);
    snprintf(dir_con, sizeof(dir_con), "XS_BUS_TLS_DIR=%s/contacts", certs);
    xst_engine_start_sim(e, NULL);
    char *orch_env[] = {dir_orch, NULL};
    xst_engine_start_orchestrator(e, orch_env);
    char *auth_env[] = {dir_auth, NULL}, *inv_env[] = {dir_inv, NULL}, *pay_env[] = {dir_pay, NULL};
    xst_engine_start_service(e, "auth", "auth-1", auth_env);
    xst_engine_start_service(e, "invoices", "invoices-1", inv_env);
    xst_engine_start_service(e, "payments", "payments-1", pay_env);
    char *files_env[] = {dir_files, NULL}, *jobs_env[] = {dir_jobs, NULL};
    xst_engine_start_service(e, "files", "files-1", files_env);
    xst_engine_start_service(e, "jobs", "jobs-1", jobs_env);
    if (!xst_engine_wait_live(e, "auth", 1, 20000) || !xst_engine_wait_live(e, "files", 1, 20000) ||
        !xst_engine_wait_live(e, "jobs", 1, 20000) ||
        !xst_engine_wait_live(e, "invoices", 1, 20000) ||
        !xst_engine_wait_live(e, "payments", 1, 20000)) {
        xst_log_dump(e->orch);
        xst_die("the deployment's own services did not join the bus over TLS");
    }
    char conn[40], tenant[40];
    char *org = xst_engine_connected(e, "Bus Auth Ltd", conn, tenant);

    /* The strangers. */
    char strange[300], inv_dir[300];
    snprintf(strange, sizeof(strange), "%s/strange", e->dir);
    snprintf(inv_dir, sizeof(inv_dir), "%s/invoices", certs);
    stranger other_ca, other_role, forger;
    stranger_start(&other_ca, "another deployment's contacts certificate", e->bus, strange,
                   XS_BUS_DOMAIN_CONTACTS);
    stranger_start(&other_role, "the invoices certificate as contacts", e->bus, inv_dir,
                   XS_BUS_DOMAIN_CONTACTS);
    stranger_start(&forger, "the invoices certificate forging heartbeats", e->bus, inv_dir,
                   XS_BUS_DOMAIN_INVOICES);
    /* And one with no certificate at all, written with nng directly. */
    nng_socket bare;
    nng_dialer bare_d;
    nng_tls_config *bare_tls;
    char url[XS_BUS_URL_MAX];
    if (xs_bus_url(e->bus, XS_BUS_DOMAIN_CONTACTS, url) != XS_OK ||
        nng_tls_config_alloc(&bare_tls, NNG_TLS_MODE_CLIENT) != 0 ||
        nng_tls_config_auth_mode(bare_tls, NNG_TLS_AUTH_MODE_NONE) != 0 ||
        nng_rep0_open(&bare) != 0 || nng_dialer_create(&bare_d, bare, url) != 0 ||
        nng_dialer_set_ptr(bare_d, NNG_OPT_TLS_CONFIG, bare_tls) != 0 ||
        nng_dialer_start(bare_d, NNG_FLAG_NONBLOCK) != 0 ||
        nng_socket_set_ms(bare, NNG_OPT_RECVTIMEO, 50) != 0) {
        xst_die("cannot start the stranger without a certificate");
    }

    /* A contacts sync: its pull carries the connection's access token. */
    char path[128];
    snprintf(path, sizeof(path), "/v1/connections/%s/sync", conn);
    xst_http r = xst_engine_api(e, "POST", path, "{\"mode\":\"full\",\"entities\":[\"contact\"]}");
    if (r.status != 202) {
        xst_die("sync: %ld %s", r.status, r.body);
    }
    const char *run_id = json_string_value(json_object_get(r.json, "id"));
    char run[64];
    snprintf(run, sizeof(run), "%s", run_id != NULL ? run_id : "");
    xst_http_free(&r);

    int bare_received = 0;
    long max_live = 0;
    int64_t end = xst_now_ms() + 4000;
    while (xst_now_ms() < end) {
        forged_heartbeat(forger.node);
        nng_msg *m = NULL;
        if (nng_recvmsg(bare, &m, 0) == 0) {
            bare_received++;
            nng_msg_free(m);
        }
        long live = health_contacts(e, "live") + health_contacts(e, "connected");
        max_live = live > max_live ? live : max_live;
    }
    int failures = 0;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "bus_auth: FAILED: " __VA_ARGS__);                                     \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)
    CHECK(atomic_load(&other_ca.received) == 0, "another CA's certificate received work");
    CHECK(atomic_load(&other_role.received) == 0, "another role's certificate received work");
    CHECK(bare_received == 0, "a dialer without a certificate received work");
    CHECK(max_live == 0, "/health counted %ld live or connected contacts replicas of strangers",
          max_live);
    CHECK(xst_log_contains(e->orch, "\"event\":\"bus.event_forged\""),
          "the forged heartbeats were not logged");
    snprintf(path, sizeof(path), "/v1/runs/%s", run);
    xst_http g = xst_engine_api(e, "GET", path, NULL);
    const char *waiting = json_string_value(json_object_get(g.json, "status"));
    CHECK(waiting != NULL && (strcmp(waiting, "running") == 0 || strcmp(waiting, "queued") == 0),
          "the run should wait for a contacts replica, it is %s", waiting ? waiting : "(none)");
    xst_http_free(&g);

    /* The deployment's own contacts replica joins and the run finishes. */
    char *con_env[] = {dir_con, NULL};
    xst_engine_start_service(e, "contacts", "contacts-1", con_env);
    CHECK(xst_engine_wait_live(e, "contacts", 1, 20000), "the real contacts replica is not live");
    json_t *done = xst_engine_wait_run(e, run, 60000);
    const char *status = json_string_value(json_object_get(done, "status"));
    CHECK(status != NULL && strcmp(status, "succeeded") == 0, "the run ended %s",
          status != NULL ? status : "(none)");
    json_decref(done);
    CHECK(atomic_load(&other_ca.received) == 0 && atomic_load(&other_role.received) == 0,
          "a stranger received work after the real replica joined");

    stranger_stop(&other_ca);
    stranger_stop(&other_role);
    stranger_stop(&forger);
    nng_close(bare);
    nng_tls_config_free(bare_tls);
    free(org);
    if (failures > 0) {
        xst_log_dump(e->orch);
    }
    int bad = xst_engine_free(e);
    if (failures > 0 || bad > 0) {
        return 1;
    }
    printf("bus_auth: strangers got no work, no token and no place in /health; the run "
           "finished once the real replica joined\n");
    return 0;
}
