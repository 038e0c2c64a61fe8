/*
 * engine.h: the whole engine for an end-to-end test. A fresh migrated database, a real
 * xero-sim process, the orchestrator and any domain-service replicas as real processes
 * talking over real nng sockets, and helpers to call the REST API and the simulator's
 * control API. Tests only.
 */
#ifndef XS_TEST_ENGINE_H
#define XS_TEST_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"

#define XST_MAX_PROCS 16
#define XST_API_KEY   "test-api-key-0123456789abcdef"
/* Two 32-byte sealing keys, base64. */
#define XST_TOKEN_KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define XST_TOKEN_KEY_B "H+Dd3NvZ2NfW1dTT0tHQz87NzMvKycjHxsXEw8LBwMA="

typedef struct xst_engine {
    char *db_url;
    char dir[128];
    char bus[256];
    char api[128]; /* http://127.0.0.1:port of the orchestrator */
    char sim[128]; /* http://127.0.0.1:port of xero-sim */
    uint16_t api_port, sim_port;
    char token_key[128];      /* XS_TOKEN_KEY given to xs-auth */
    char token_old_keys[256]; /* XS_TOKEN_OLD_KEYS, "" for none */
    xst_proc *sim_proc;
    xst_proc *orch;
    /* A second orchestrator (xst_engine_add_orchestrator): its own bus and HTTP port, the same
     * database; bus2 "" while there is none. */
    char bus2[256];
    char api2[128];
    uint16_t api2_port;
    xst_proc *orch2;
    xst_proc *procs[XST_MAX_PROCS]; /* domain-service replicas */
    int nprocs;
} xst_engine;

/* xst_engine_new makes a migrated database and picks ports; nothing runs yet. */
xst_engine *xst_engine_new(const char *prefix);

/* xst_engine_env builds the environment of a process: the engine's variables (database,
 * bus, ports, Xero URLs pointing at the simulator, client id and secret, token keys, API
 * key) followed by extra (NULL-terminated, may be NULL), which wins. Returns a static array
 * valid until the next call. */
char **xst_engine_env(xst_engine *e, char *const extra[]);

/* xst_engine_start_sim starts xero-sim with extra variables and waits until it answers. */
xst_proc *xst_engine_start_sim(xst_engine *e, char *const extra[]);

/* xst_engine_start_orchestrator starts the orchestrator and waits until /health answers. */
xst_proc *xst_engine_start_orchestrator(xst_engine *e, char *const extra[]);

/* xst_engine_add_orchestrator plans a second orchestrator: its bus and HTTP port are picked,
 * and every process started from now on dials both orchestrators' buses (XS_BUS_URL lists
 * both), so call it before starting the services. */
void xst_engine_add_orchestrator(xst_engine *e);

/* xst_engine_start_orchestrator2 starts the second orchestrator (xst_engine_add_orchestrator)
 * with extra variables and waits until its /health answers; it is stopped by
 * xst_engine_free unless the test forgets it (xst_engine_forget). */
xst_proc *xst_engine_start_orchestrator2(xst_engine *e, char *const extra[]);

/* xst_engine_api_at is xst_engine_api against the orchestrator at base (an engine's api or
 * api2). */
xst_http xst_engine_api_at(const char *base, const char *method, const char *path,
                           const char *body);

/* xst_engine_start_service starts one replica of service ("auth", "contacts", ...) named
 * replica; it is stopped by xst_engine_free. */
xst_proc *xst_engine_start_service(xst_engine *e, const char *service, const char *replica,
                                   char *const extra[]);

/* xst_engine_forget removes p from the engine's list (after the test stopped it itself). */
void xst_engine_forget(xst_engine *e, xst_proc *p);

/* xst_engine_wait_live waits until /health counts `live` replicas of domain. */
bool xst_engine_wait_live(xst_engine *e, const char *domain, int live, long timeout_ms);

/* xst_engine_api calls the orchestrator's REST API with the API key; path may hold a query.
 * body may be NULL. */
xst_http xst_engine_api(xst_engine *e, const char *method, const char *path, const char *body);

/* xst_engine_simctl calls the simulator (control API or any other path). */
xst_http xst_engine_simctl(xst_engine *e, const char *method, const char *path, const char *body);

/* xst_engine_sim_json calls the simulator and returns the JSON of its reply (new); dies
 * unless it answered 200 or 201. */
json_t *xst_engine_sim_json(xst_engine *e, const char *method, const char *path, const char *body);

/* xst_engine_sim_calls counts the calls the simulator answered on endpoint (as named in
 * /_sim/stats by_endpoint, e.g. "POST /connect/token") with status (0: any). */
long xst_engine_sim_calls(xst_engine *e, const char *endpoint, int status);

/* xst_engine_org makes an organisation in app.organisations and returns its id (new). */
char *xst_engine_org(xst_engine *e, const char *name);

/* xst_engine_connect runs the whole OAuth flow for org: POST /v1/connections/authorize,
 * the consent page at the simulator (which redirects), and the callback at the
 * orchestrator. Returns the callback's reply (status and body). */
xst_http xst_engine_connect(xst_engine *e, const char *org);

/* xst_engine_connect_as is xst_engine_connect asking also for XPM's scopes when xpm
 * ("xpm": true in the authorize request). */
xst_http xst_engine_connect_as(xst_engine *e, const char *org, bool xpm);

/* xst_engine_sql runs one statement with parameters on the engine's database, returning the
 * first column of the first row (new), or NULL; dies on error. */
char *xst_engine_sql(xst_engine *e, const char *sql, int nparams, const char *const *params);

/* xst_engine_sql_long is xst_engine_sql read as a number (-1 for no row). */
long xst_engine_sql_long(xst_engine *e, const char *sql, int nparams, const char *const *params);

/* xst_engine_sqlf and xst_engine_sql_longf are xst_engine_sql and xst_engine_sql_long with the
 * n parameters (at most 8; const char *, NULL for SQL NULL) as arguments. */
char *xst_engine_sqlf(xst_engine *e, const char *sql, int n, ...);
long xst_engine_sql_longf(xst_engine *e, const char *sql, int n, ...);

/* xst_engine_mapped gives the local and Xero ids of the mapping of entity at offset, in the
 * order of local ids (a record no test used before, by a fresh offset); dies when none. */
void xst_engine_mapped(xst_engine *e, const char *entity, int offset, char lid[40], char xid[40]);

/* xst_run_count reads counts[entity][dir][key] of a run as GET /v1/runs/{id} gives it (0 when
 * absent). */
long xst_run_count(const json_t *run, const char *entity, const char *dir, const char *key);

/* xst_engine_stats returns the block named block (e.g. "webhooks", "polling") of GET
 * /v1/connections/{conn}/stats (new; NULL when the reply has none); dies unless it answers
 * 200. */
json_t *xst_engine_stats(xst_engine *e, const char *conn, const char *block);

/* xst_engine_run starts a run on connection conn (body: the JSON of POST
 * /v1/connections/{id}/sync, e.g. {"mode":"full"}), waits until it ends, and returns its GET
 * /v1/runs/{id} (new); dies when it cannot be started or does not end within timeout_ms. */
json_t *xst_engine_run(xst_engine *e, const char *conn, const char *body, long timeout_ms);

/* xst_engine_wait_run waits until run run_id ends and returns its GET /v1/runs/{id} (new);
 * dies when it does not end within timeout_ms. */
json_t *xst_engine_wait_run(xst_engine *e, const char *run_id, long timeout_ms);

/* xst_engine_start_services starts one replica of each domain service (auth, contacts,
 * invoices, payments, files, jobs; a run syncs every enabled entity) and waits until each is
 * live. */
void xst_engine_start_services(xst_engine *e);

/* xst_engine_start_app_bound starts the simulator with `tenants` tenants (their own limits out
 * of the way), the orchestrator with an app-wide budget of app calls a window_ms window (each
 * tenant's out of the way, a margin of 50 ms, the scheduler off, no realtime push within 600 s)
 * and every domain service: a deployment where the app's limit is the only one that binds. */
void xst_engine_start_app_bound(xst_engine *e, int tenants, int app, int window_ms);

/* xst_engine_connect_tenants connects n organisations ("<prefix> <i> Ltd"), the i-th by its own
 * consent to the simulator's i-th tenant, and writes their connections' ids into conns. */
void xst_engine_connect_tenants(xst_engine *e, int n, const char *prefix, char (*conns)[40]);

/* xst_engine_connected makes organisation name, connects it to the simulator's first
 * tenant through the OAuth flow and returns the organisation's id (new); the connection's id
 * and the tenant's go into conn and tenant (40 bytes each). Dies when it cannot. */
char *xst_engine_connected(xst_engine *e, const char *name, char *conn, char *tenant);

/* xst_run_status_is tells whether run (a GET /v1/runs/{id} body) has status want; when not,
 * it prints the whole run on standard error, so the failed assertion shows why. */
bool xst_run_status_is(const json_t *run, const char *want);

/* xst_engine_settle waits until the outbox is empty and no run is queued or running; false
 * when that has not happened within timeout_ms. */
bool xst_engine_settle(xst_engine *e, long timeout_ms);

/* xst_engine_free stops every process with SIGTERM and frees e; returns how many did not
 * exit with 0 (their logs are printed). */
int xst_engine_free(xst_engine *e);

/* xst_result is what a test's main returns: cmocka's count of failed tests, or 1 when it is 0
 * but a process stopped by xst_engine_free exited badly. cmocka prints a failed group
 * teardown and still exits 0, so a leak LeakSanitizer reported at a service's exit, or a
 * crash in its shutdown, found in a group teardown would pass without this. */
int xst_result(int failed);

#endif
