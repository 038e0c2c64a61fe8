/*
 * latency_bench: how long an edit takes to reach the other side (issue 19), end to end on this
 * machine: a private PostgreSQL cluster, xero-sim (its webhooks delivered to the orchestrator),
 * the orchestrator and every domain service as real processes, the engine's default settings.
 *
 * One tenant, CONTACTS contacts in Xero, imported. Then two phases of EDITS edits each
 * (default 1,000), one after the other, on two disjoint sets of PICK contacts:
 *   - local -> Xero: a contact's e-mail changed locally, half through the REST API (PATCH
 *     /v1/contacts/{id}), half by SQL (UPDATE app.contacts), alternately; the edit has
 *     arrived when Xero (read through the simulator's control API, which calls no limit)
 *     holds that value or a later one of the same contact;
 *   - Xero -> local: a contact's e-mail changed in Xero (the simulator's control API, as a
 *     user would, so its webhook fires); the edit has arrived when the local row holds it or
 *     a later one.
 * Each phase is segments of single edits at random 50-500 ms intervals and bursts of 50
 * (50 contacts edited at once), alternately, half the edits each. A watcher thread reads the
 * other side every POLL_MS (the figures are at most that much late); an edit is timed from
 * just before it is made, so the call or statement that makes it is included. Calls per edit: the
 * accounting calls the simulator served during the phase, per edit.
 *
 * Usage: latency_bench BUILD_DIR [--edits N] [--latency MS] [--contacts N] [--webhook-delay MS]
 *                      [--limits room|xero] [--push-delay MS]
 *   --latency: the simulator's fixed latency per call (default 0);
 *   --webhook-delay: how long the simulator gathers events into one delivery (default 100);
 *   --limits: "room" (default) gives the tenant a budget these edits never exhaust (the
 *     simulator's and the engine's limits raised a hundredfold); "xero" keeps Xero's (60 calls
 *     a minute per tenant), which this stream of edits exceeds;
 *   --push-delay: the orchestrator's XS_PUSH_DELAY (default: the engine's default).
 * Prints Markdown for bench/RESULTS.md.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "xs/json.h"

#define POLL_MS 20
#define BURST   50
#define PICK    100

typedef struct edit {
    int contact;    /* index into the phase's contacts */
    int64_t at;     /* when it was made (monotonic ms, after it committed) */
    int64_t landed; /* when the other side first held it (0: not yet) */
} edit;

typedef struct phase {
    const char *name;
    bool to_xero;
    char ids[PICK][40];   /* local ids (to_xero) or Xero ids */
    char other[PICK][40]; /* the other side's id of each */
    edit *edits;
    int nedits;
    atomic_int made; /* edits made so far */
    int seen[PICK];  /* the highest edit number the other side holds, per contact */
    atomic_bool stop;
} phase;

static xst_engine *E;
static char TENANT[40], CONN[40];

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* email_of is edit k's value; edit_of reads k back (-1: not one of ours). */
static void email_of(int k, char *buf, size_t cap)
{
    snprintf(buf, cap, "lat-%d@bench.example", k);
}

static int edit_of(const char *email)
{
    int k = -1;
    if (email == NULL || sscanf(email, "lat-%d@", &k) != 1) {
        return -1;
    }
    return k;
}

/* land marks the edits of contact c up to edit number k as arrived at now. */
static void land(phase *p, int c, int k, int64_t now)
{
    if (k <= p->seen[c]) {
        return;
    }
    p->seen[c] = k;
    int made = atomic_load(&p->made);
    for (int i = 0; i <= k && i < made; i++) {
        if (p->edits[i].contact == c && p->edits[i].landed == 0) {
            p->edits[i].landed = now;
        }
    }
}

/* watch_xero reads the phase's contacts from the simulator (by IDs=, through its control API). */
static void watch_xero(phase *p, const char *url)
{
    xst_http r = xst_http_do("GET", url, NULL, NULL, 5000);
    int64_t now = mono_ms();
    json_t *list = json_object_get(r.json, "Contacts");
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "ContactID"));
        int k = edit_of(json_string_value(json_object_get(c, "EmailAddress")));
        for (int j = 0; j < PICK && id != NULL && k >= 0; j++) {
            if (strcmp(p->other[j], id) == 0) {
                land(p, j, k, now);
            }
        }
    }
    xst_http_free(&r);
}

/* watch_local reads the phase's contacts from app.contacts. */
static void watch_local(phase *p, PGconn *db, const char *ids)
{
    const char *params[] = {ids};
    PGresult *r = PQexecParams(db,
                               "SELECT id::text, email FROM app.contacts WHERE id IN (SELECT "
                               "x::uuid FROM jsonb_array_elements_text($1::jsonb) x)",
                               1, NULL, params, NULL, NULL, 0);
    int64_t now = mono_ms();
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
        int k = edit_of(PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1));
        for (int j = 0; j < PICK && k >= 0; j++) {
            if (strcmp(p->other[j], PQgetvalue(r, i, 0)) == 0) {
                land(p, j, k, now);
            }
        }
    }
    PQclear(r);
}

static void *watcher(void *arg)
{
    phase *p = arg;
    PGconn *db = NULL;
    char *url = NULL, *ids = NULL;
    json_t *arr = json_array();
    for (int j = 0; j < PICK; j++) {
        json_array_append_new(arr, json_string(p->other[j]));
    }
    if (p->to_xero) {
        size_t cap = 256 + PICK * 40;
        url = malloc(cap);
        int n = snprintf(url, cap, "%s/_sim/tenants/%s/Contacts?IDs=", E->sim, TENANT);
        for (int j = 0; j < PICK; j++) {
            n += snprintf(url + n, cap - (size_t)n, "%s%s", j ? "," : "", p->other[j]);
        }
    } else {
        db = PQconnectdb(E->db_url);
        ids = json_dumps(arr, 0);
    }
    json_decref(arr);
    while (!atomic_load(&p->stop)) {
        if (p->to_xero) {
            watch_xero(p, url);
        } else {
            watch_local(p, db, ids);
        }
        usleep(POLL_MS * 1000);
    }
    free(url);
    free(ids);
    if (db != NULL) {
        PQfinish(db);
    }
    return NULL;
}

static long calls(void)
{
    return xst_engine_sim_calls(E, "GET /Contacts", 0) +
           xst_engine_sim_calls(E, "POST /Contacts", 0) +
           xst_engine_sim_calls(E, "PUT /Contacts", 0);
}

/* make_edit makes edit k of phase p (contact p->edits[k].contact). */
static void make_edit(phase *p, PGconn *db, int k)
{
    int c = p->edits[k].contact;
    char email[64], path[200], body[200];
    email_of(k, email, sizeof(email));
    /* Counted from before it is made: the watcher may see it before the call returns. */
    p->edits[k].at = mono_ms();
    atomic_store(&p->made, k + 1);
    if (p->to_xero && k % 2 == 0) {
        snprintf(path, sizeof(path), "/v1/contacts/%s", p->ids[c]);
        snprintf(body, sizeof(body), "{\"email\":\"%s\"}", email);
        xst_http r = xst_engine_api(E, "PATCH", path, body);
        if (r.status != 200) {
            xst_die("PATCH %s: %ld %s", path, r.status, r.body);
        }
        xst_http_free(&r);
    } else if (p->to_xero) {
        const char *params[] = {email, p->ids[c]};
        PGresult *r = PQexecParams(db, "UPDATE app.contacts SET email = $1 WHERE id = $2::uuid", 2,
                                   NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            xst_die("UPDATE: %s", PQerrorMessage(db));
        }
        PQclear(r);
    } else {
        snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s", TENANT, p->ids[c]);
        snprintf(body, sizeof(body), "{\"EmailAddress\":\"%s\"}", email);
        xst_http r = xst_engine_simctl(E, "POST", path, body);
        if (r.status != 200) {
            xst_die("sim edit: %ld %s", r.status, r.body);
        }
        xst_http_free(&r);
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* run_phase makes the edits, waits for all of them to arrive, and prints its row. */
static void run_phase(phase *p, unsigned *rnd, long latency)
{
    p->edits = calloc((size_t)p->nedits, sizeof(edit));
    for (int c = 0; c < PICK; c++) {
        p->seen[c] = -1;
    }
    /* The schedule: segments of 50 single edits and bursts of 50, alternately. */
    for (int k = 0; k < p->nedits; k++) {
        bool burst = (k / BURST) % 2 == 1;
        p->edits[k].contact =
            burst ? k % BURST + (k / (2 * BURST)) % 2 * BURST : (int)(rand_r(rnd) % PICK);
    }
    PGconn *db = PQconnectdb(E->db_url);
    pthread_t th;
    pthread_create(&th, NULL, watcher, p);
    long c0 = calls();
    int64_t t0 = mono_ms();
    for (int k = 0; k < p->nedits; k++) {
        make_edit(p, db, k);
        bool burst = (k / BURST) % 2 == 1;
        if (!burst) {
            usleep((useconds_t)(50 + rand_r(rnd) % 451) * 1000);
        }
    }
    int64_t t_made = mono_ms();
    for (int64_t deadline = mono_ms() + 300000; mono_ms() < deadline;) {
        int left = 0;
        for (int k = 0; k < p->nedits; k++) {
            left += p->edits[k].landed == 0;
        }
        if (left == 0) {
            break;
        }
        usleep(100000);
    }
    atomic_store(&p->stop, true);
    pthread_join(th, NULL);
    PQfinish(db);
    long used = calls() - c0;
    int64_t *lat = calloc((size_t)p->nedits, sizeof(int64_t));
    int n = 0, lost = 0;
    for (int k = 0; k < p->nedits; k++) {
        if (p->edits[k].landed == 0) {
            fprintf(stderr,
                    "%s: edit %d of contact %d (%s) never arrived; the other side holds edit %d\n",
                    p->name, k, p->edits[k].contact, p->ids[p->edits[k].contact],
                    p->seen[p->edits[k].contact]);
            lost++;
        } else {
            int64_t d = p->edits[k].landed - p->edits[k].at;
            lat[n++] = d > 0 ? d : 0;
        }
    }
    /* XS_BENCH_TRACE=FILE: each edit's start (ms from the phase's first), contact and
     * latency, to see where the slow ones fall. */
    FILE *trace = getenv("XS_BENCH_TRACE") != NULL ? fopen(getenv("XS_BENCH_TRACE"), "a") : NULL;
    for (int k = 0; trace != NULL && k < p->nedits; k++) {
        fprintf(trace, "%s\t%lld\t%d\t%lld\n", p->to_xero ? "out" : "in",
                (long long)(p->edits[k].at - t0), p->edits[k].contact,
                (long long)(p->edits[k].landed ? p->edits[k].landed - p->edits[k].at : -1));
    }
    if (trace != NULL) {
        fclose(trace);
    }
    qsort(lat, (size_t)n, sizeof(int64_t), cmp64);
    int64_t under = 0;
    for (int i = 0; i < n; i++) {
        under += lat[i] < 1000;
    }
    printf("| %s | %ld ms | %d | %lld ms | %lld ms | %lld ms | %lld ms | %.1f%% | %ld | %.3f | "
           "%d | %.0f s |\n",
           p->name, latency, p->nedits, (long long)(n ? lat[n / 2] : -1),
           (long long)(n ? lat[(n * 90) / 100] : -1),
           (long long)(n ? lat[n * 99 / 100 < n ? n * 99 / 100 : n - 1] : -1),
           (long long)(n ? lat[n - 1] : -1), n ? 100.0 * (double)under / n : 0.0, used,
           (double)used / p->nedits, lost, (double)(t_made - t0) / 1000.0);
    fflush(stdout);
    free(lat);
    free(p->edits);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s BUILD_DIR [--edits N] [--latency MS] [--contacts N] "
                "[--webhook-delay MS]\n",
                argv[0]);
        return 2;
    }
    long nedits = 1000, latency = 0, ncontacts = 500, hook_delay = 100;
    bool room = true;
    char push_delay[64] = "";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--edits") == 0) {
            nedits = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--latency") == 0) {
            latency = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--contacts") == 0) {
            ncontacts = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--webhook-delay") == 0) {
            hook_delay = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--limits") == 0) {
            room = strcmp(argv[i + 1], "xero") != 0;
        } else if (strcmp(argv[i], "--push-delay") == 0) {
            snprintf(push_delay, sizeof(push_delay), "XS_PUSH_DELAY=%ldms", atol(argv[i + 1]));
        }
    }
    if (nedits < 2 * BURST || ncontacts < 2 * PICK) {
        xst_die("--edits must be at least %d and --contacts at least %d", 2 * BURST, 2 * PICK);
    }
    xst_bench_start(argv[1], XS_BENCH_SOURCE_DIR);

    E = xst_engine_new("latency");
    char url[256], lat[64], hd[64];
    snprintf(url, sizeof(url), "XS_SIM_WEBHOOK_URL=%s/v1/webhooks/xero", E->api);
    snprintf(lat, sizeof(lat), "XS_SIM_LATENCY=%ldms", latency);
    snprintf(hd, sizeof(hd), "XS_SIM_WEBHOOK_DELAY=%ldms", hook_delay);
    /* Xero's 60 a minute, or a hundred times that; the day's limit is out of the way. */
    const char *sim_min = room ? "XS_SIM_LIMIT_MINUTE=6000" : "XS_SIM_LIMIT_MINUTE=60";
    const char *orch_min = room ? "XS_BUDGET_TENANT_MINUTE=6000" : "XS_BUDGET_TENANT_MINUTE=60";
    char *sim_env[] = {url,
                       "XS_SIM_WEBHOOK_KEY=latency-bench-webhook-key-0123456789",
                       hd,
                       lat,
                       "XS_LOG_LEVEL=warn",
                       (char *)sim_min,
                       "XS_SIM_LIMIT_DAY=500000",
                       NULL};
    xst_engine_start_sim(E, sim_env);
    char *orch_env[] = {"XS_XERO_WEBHOOK_KEY=latency-bench-webhook-key-0123456789",
                        "XS_SCHEDULER=false",
                        "XS_LOG_LEVEL=warn",
                        (char *)orch_min,
                        "XS_BUDGET_TENANT_DAY=500000",
                        push_delay[0] != '\0' ? push_delay : NULL,
                        NULL};
    xst_engine_start_orchestrator(E, orch_env);
    xst_engine_start_services(E);
    free(xst_engine_connected(E, "Latency Ltd", CONN, TENANT));
    char path[200], body[128];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", TENANT);
    snprintf(body, sizeof(body), "{\"contacts\":%ld,\"seed\":5}", ncontacts);
    xst_http s = xst_engine_simctl(E, "POST", path, body);
    if (s.status != 200) {
        xst_die("seed: %ld %s", s.status, s.body);
    }
    xst_http_free(&s);
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 600000);
    if (strcmp(json_string_value(json_object_get(run, "status")), "succeeded") != 0) {
        xst_die("the import did not succeed");
    }
    json_decref(run);
    json_t *itr = xst_engine_sim_json(E, "POST", "/_sim/webhooks/itr", "{\"count\":4}");
    if (!json_is_true(json_object_get(itr, "ok"))) {
        xst_die("intent to receive failed");
    }
    json_decref(itr);
    /* Two disjoint sets of linked, active contacts. */
    char *rows = xst_engine_sqlf(
        E,
        /* active ones: Xero refuses edits of an archived contact */
        "SELECT json_agg(json_build_array(m.local_id, m.xero_id)) FROM (SELECT m.local_id::text, "
        "m.xero_id FROM sync.mappings m JOIN app.contacts c ON c.id = m.local_id WHERE "
        "m.connection_id = $1 AND m.entity = 'contact' AND c.status = 'ACTIVE' ORDER BY "
        "m.xero_id LIMIT $2) m",
        2, CONN, "200");
    json_t *pairs = xs_json_parse(rows, strlen(rows), NULL);
    free(rows);
    if (json_array_size(pairs) < 2 * PICK) {
        xst_die("fewer than %d linked contacts", 2 * PICK);
    }
    static phase out = {.name = "local -> Xero", .to_xero = true};
    static phase in = {.name = "Xero -> local (webhook)", .to_xero = false};
    for (int j = 0; j < PICK; j++) {
        json_t *a = json_array_get(pairs, (size_t)j),
               *b = json_array_get(pairs, (size_t)(j + PICK));
        snprintf(out.ids[j], 40, "%s", json_string_value(json_array_get(a, 0)));
        snprintf(out.other[j], 40, "%s", json_string_value(json_array_get(a, 1)));
        snprintf(in.ids[j], 40, "%s", json_string_value(json_array_get(b, 1)));
        snprintf(in.other[j], 40, "%s", json_string_value(json_array_get(b, 0)));
    }
    json_decref(pairs);
    out.nedits = in.nedits = (int)nedits;
    unsigned rnd = 19;
    printf("Limits: %s; %s.\n\n",
           room ? "room (6,000 calls a minute per tenant)" : "Xero's (60 a minute per tenant)",
           push_delay[0] != '\0' ? push_delay : "XS_PUSH_DELAY: the default");
    printf("| direction | latency per call | edits | p50 | p90 | p99 | max | under 1 s | calls | "
           "calls per edit | not arrived | edits made over |\n|---|---|---|---|---|---|---|---|"
           "---|---|---|---|\n");
    fflush(stdout);
    run_phase(&out, &rnd, latency);
    xst_engine_settle(E, 120000);
    run_phase(&in, &rnd, latency);
    int bad = xst_engine_free(E);
    xst_bench_stop(argv[1], XS_BENCH_SOURCE_DIR);
    return bad == 0 ? 0 : 1;
}
