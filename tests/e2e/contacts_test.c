/*
 * contacts_test.c: contacts in two-way sync, end to end. A real PostgreSQL, a real xero-sim,
 * the orchestrator, xs-auth and two xs-contacts replicas over nng:
 *   - an initial import of 10,000 Xero contacts into 1,000 local ones links the overlap by
 *     contact number, e-mail and name, with no duplicate on either side;
 *   - an incremental run picks up exactly the records changed in Xero; with nothing changed
 *     it costs exactly one call;
 *   - a local edit reaches Xero within seconds, and its echo is not pulled back;
 *   - every conflict policy on the same scenario, and a manual conflict resolved;
 *   - archival both ways; a 400 on one item fails only that item;
 *   - the local REST writes;
 *   - matching among many unlinked local contacts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "xs/clock.h"
#include "engine/domain.h"
#include "xs/json.h"

/* A run ended with the status wanted (the run printed when not). */
#define assert_status(run, want) assert_true(xst_run_status_is((run), (want)))

static xst_engine *E;
static char *ORG;
static char CONN[40], TENANT[40];

#define N_XERO  10000
#define N_LOCAL 1000

static char *sql(const char *q, int n, ...)
{
    const char *p[8];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < 8; i++) {
        p[i] = va_arg(ap, const char *);
    }
    va_end(ap);
    return xst_engine_sql(E, q, n, p);
}

static long sql_long(const char *q, int n, ...)
{
    const char *p[8];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < 8; i++) {
        p[i] = va_arg(ap, const char *);
    }
    va_end(ap);
    char *v = xst_engine_sql(E, q, n, p);
    long out = v != NULL ? atol(v) : -1;
    free(v);
    return out;
}

/* wait_run polls a run until it ends and returns its final JSON (caller frees). */
static json_t *wait_run(const char *run, long timeout_ms)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/runs/%s", run);
    int64_t end = xst_now_ms() + timeout_ms;
    for (;;) {
        xst_http r = xst_engine_api(E, "GET", path, NULL);
        const char *st = json_string_value(json_object_get(r.json, "status"));
        if (st != NULL && strcmp(st, "queued") != 0 && strcmp(st, "running") != 0) {
            json_t *j = json_incref(r.json);
            xst_http_free(&r);
            return j;
        }
        if (xst_now_ms() > end) {
            fprintf(stderr, "run %s still %s: %s\n", run, st ? st : "?", r.body);
            xst_http_free(&r);
            return NULL;
        }
        xst_http_free(&r);
        usleep(100000);
    }
}

/* sync starts a run of mode and waits for it; returns the final run (caller frees). */
static json_t *sync_run(const char *mode)
{
    char path[128], body[64];
    snprintf(path, sizeof(path), "/v1/connections/%s/sync", CONN);
    snprintf(body, sizeof(body), "{\"mode\":\"%s\"}", mode);
    xst_http r = xst_engine_api(E, "POST", path, body);
    if (r.status != 202) {
        fprintf(stderr, "sync %s: %ld %s\n", mode, r.status, r.body);
    }
    assert_int_equal(r.status, 202);
    char run[40];
    snprintf(run, sizeof(run), "%s", json_string_value(json_object_get(r.json, "id")));
    xst_http_free(&r);
    json_t *j = wait_run(run, 300000);
    assert_non_null(j);
    return j;
}

static long count_of(const json_t *run, const char *dir, const char *key)
{
    json_t *c = json_object_get(json_object_get(run, "counts"), "contact");
    if (dir != NULL) {
        c = json_object_get(c, dir);
    }
    return (long)json_integer_value(json_object_get(c, key));
}

/* sim_get reads a path of the simulator's control API (JSON, new). */
static json_t *sim_get(const char *path)
{
    xst_http r = xst_engine_simctl(E, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    json_t *j = json_incref(r.json);
    xst_http_free(&r);
    return j;
}

static void sim_post(const char *path, const char *body)
{
    xst_http r = xst_engine_simctl(E, "POST", path, body);
    if (r.status != 200 && r.status != 201) {
        fprintf(stderr, "sim %s: %ld %s\n", path, r.status, r.body);
    }
    assert_true(r.status == 200 || r.status == 201);
    xst_http_free(&r);
}

/* sim_contact reads one contact from the simulator (new). */
static json_t *sim_contact(const char *id)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s", TENANT, id);
    json_t *j = sim_get(path);
    json_t *c = json_incref(json_array_get(json_object_get(j, "Contacts"), 0));
    if (c == NULL) {
        c = json_incref(j);
    }
    json_decref(j);
    return c;
}

static long sim_contacts_total(void)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s", TENANT);
    json_t *t = sim_get(path);
    json_t *counts = json_object_get(t, "counts");
    long n = (long)json_integer_value(json_object_get(counts, "Contacts"));
    if (n == 0) {
        n = (long)json_integer_value(json_object_get(counts, "contacts"));
    }
    json_decref(t);
    return n;
}

static long sim_duplicates(void)
{
    json_t *st = sim_get("/_sim/stats");
    long n = (long)json_integer_value(json_object_get(json_object_get(st, "duplicates"), "total"));
    json_decref(st);
    return n;
}

static long sim_calls(const char *endpoint)
{
    return xst_engine_sim_calls(E, endpoint, 0);
}

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    E = xst_engine_new("contacts");
    char *sim_env[] = {"XS_SIM_TENANTS=1", "XS_SIM_LIMIT_MINUTE=100000",
                       "XS_SIM_LIMIT_DAY=10000000", "XS_SIM_LIMIT_CONCURRENT=1000", NULL};
    xst_engine_start_sim(E, sim_env);
    char *orch_env[] = {"XS_SCHEDULER=false",
                        "XS_BUDGET_TENANT_MINUTE=100000",
                        "XS_BUDGET_TENANT_DAY=10000000",
                        "XS_PUSH_DELAY=300ms",
                        "XS_PUSH_POLL=1s",
                        "XS_STEP_BACKOFF=200ms",
                        NULL};
    xst_engine_start_orchestrator(E, orch_env);
    xst_engine_start_service(E, "auth", "auth-1", NULL);
    xst_engine_start_service(E, "contacts", "contacts-1", NULL);
    xst_engine_start_service(E, "contacts", "contacts-2", NULL);
    /* A run syncs every enabled entity: the chart of accounts and the bank transactions come
     * with the contacts. */
    xst_engine_start_service(E, "invoices", "invoices-1", NULL);
    xst_engine_start_service(E, "payments", "payments-1", NULL);
    xst_engine_start_service(E, "files", "files-1", NULL);
    xst_engine_start_service(E, "jobs", "jobs-1", NULL);
    if (!xst_engine_wait_live(E, "contacts", 2, 20000) ||
        !xst_engine_wait_live(E, "files", 1, 20000) || !xst_engine_wait_live(E, "jobs", 1, 20000) ||
        !xst_engine_wait_live(E, "auth", 1, 20000) ||
        !xst_engine_wait_live(E, "invoices", 1, 20000) ||
        !xst_engine_wait_live(E, "payments", 1, 20000)) {
        xst_die("the services did not come up");
    }
    ORG = xst_engine_org(E, "Coaching Co");
    xst_http cb = xst_engine_connect(E, ORG);
    if (cb.status != 200) {
        xst_die("connect: %ld %s", cb.status, cb.body);
    }
    json_t *c0 = json_array_get(json_object_get(cb.json, "connections"), 0);
    snprintf(CONN, sizeof(CONN), "%s", json_string_value(json_object_get(c0, "id")));
    snprintf(TENANT, sizeof(TENANT), "%s", json_string_value(json_object_get(c0, "tenant_id")));
    xst_http_free(&cb);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int bad = xst_engine_free(E);
    free(ORG);
    return bad == 0 ? 0 : -1;
}

/* The overlap made before the import: locals matching Xero by number, e-mail and name. */
static char XID_NUMBER[40], XID_EMAIL[40], XID_NAME[40];
static char LID_NUMBER[40], LID_EMAIL[40], LID_NAME[40];

static void insert_local(const char *name, const char *email, const char *number, char *id_out)
{
    char *id = sql("INSERT INTO app.contacts (organisation_id, name, email, contact_number) VALUES "
                   "($1, $2, $3, $4) RETURNING id",
                   4, ORG, name, email, number);
    assert_non_null(id);
    if (id_out != NULL) {
        snprintf(id_out, 40, "%s", id);
    }
    free(id);
}

/* lower_key writes a matching key: lower case, letters and digits only, one space between
 * words (the rule of sync.normalise_name, for ASCII). */
static void lower_key(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    bool space = false;
    for (const char *c = in != NULL ? in : ""; *c && o + 2 < cap; c++) {
        char ch = *c;
        if (ch >= 'A' && ch <= 'Z') {
            ch = (char)(ch + 32);
        }
        if (ch == ' ' || ch == '\t') {
            space = o > 0;
            continue;
        }
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '@' || ch == '.' ||
            (unsigned char)ch >= 0x80) {
            if (space) {
                out[o++] = ' ';
                space = false;
            }
            out[o++] = ch;
        }
    }
    out[o] = '\0';
}

/* mangle changes the case, spacing and punctuation of a name (still the same name). */
static void mangle(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *c = in; *c && o + 3 < cap; c++) {
        char ch = *c;
        if (ch >= 'a' && ch <= 'z') {
            ch = (char)(ch - 32);
        }
        out[o++] = ch;
        if (*c == ' ') {
            out[o++] = ' ';
        }
    }
    snprintf(out + o, cap - o, " !");
}

static void test_initial_import_links_the_overlap(void **state)
{
    (void)state;
    char path[256], body[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", TENANT);
    snprintf(body, sizeof(body), "{\"contacts\":%d,\"seed\":11}", N_XERO);
    sim_post(path, body);
    assert_int_equal(sim_contacts_total(), N_XERO);

    /* 1,000 local contacts: 300 share a Xero contact's number, 300 its e-mail (in another
     * case), 200 its name (in another case, spacing and punctuation); 200 are new. The
     * e-mails and names chosen are each Xero's only one (seeded data repeats some: an e-mail
     * two Xero contacts share says nothing about which of them a local record is). */
    json_t *all = json_array();
    for (int page = 1; page <= N_XERO / 1000; page++) {
        snprintf(path, sizeof(path),
                 "/_sim/tenants/%s/Contacts?page=%d&pageSize=1000&includeArchived=true", TENANT,
                 page);
        json_t *list = sim_get(path);
        json_array_extend(all, json_object_get(list, "Contacts"));
        json_decref(list);
    }
    assert_int_equal(json_array_size(all), N_XERO);
    json_t *emails = json_object(), *names = json_object();
    size_t i;
    json_t *c;
    json_array_foreach(all, i, c)
    {
        char key[300];
        const char *email = json_string_value(json_object_get(c, "EmailAddress"));
        if (email != NULL) {
            lower_key(email, key, sizeof(key));
            json_object_set_new(emails, key,
                                json_integer(json_integer_value(json_object_get(emails, key)) + 1));
        }
        lower_key(json_string_value(json_object_get(c, "Name")), key, sizeof(key));
        json_object_set_new(names, key,
                            json_integer(json_integer_value(json_object_get(names, key)) + 1));
    }
    int overlap = 0, k = 0;
    json_array_foreach(all, i, c)
    {
        if (overlap >= 800) {
            break;
        }
        const char *xid = json_string_value(json_object_get(c, "ContactID"));
        const char *name = json_string_value(json_object_get(c, "Name"));
        const char *email = json_string_value(json_object_get(c, "EmailAddress"));
        if (strcmp(json_string_value(json_object_get(c, "ContactStatus")), "ACTIVE") != 0) {
            continue;
        }
        char other[300], key[300];
        if (overlap < 300) {
            /* The number is set in Xero, as the host application once did. */
            char num[32], p2[256], b2[128];
            snprintf(num, sizeof(num), "CUST-%05d", overlap);
            snprintf(p2, sizeof(p2), "/_sim/tenants/%s/Contacts/%s", TENANT, xid);
            snprintf(b2, sizeof(b2), "{\"ContactNumber\":\"%s\"}", num);
            sim_post(p2, b2);
            snprintf(other, sizeof(other), "Local name %d", overlap);
            insert_local(other, NULL, num, overlap == 0 ? LID_NUMBER : NULL);
            if (overlap == 0) {
                snprintf(XID_NUMBER, sizeof(XID_NUMBER), "%s", xid);
            }
        } else if (overlap < 600) {
            if (email == NULL || email[0] == '\0') {
                continue;
            }
            lower_key(email, key, sizeof(key));
            if (json_integer_value(json_object_get(emails, key)) != 1) {
                continue;
            }
            char upper[300];
            size_t n = 0;
            for (const char *e = email; *e && n < sizeof(upper) - 1; e++) {
                upper[n++] = (*e >= 'a' && *e <= 'z') ? (char)(*e - 32) : *e;
            }
            upper[n] = '\0';
            snprintf(other, sizeof(other), "Someone else %d", overlap);
            insert_local(other, upper, NULL, overlap == 300 ? LID_EMAIL : NULL);
            if (overlap == 300) {
                snprintf(XID_EMAIL, sizeof(XID_EMAIL), "%s", xid);
            }
        } else {
            lower_key(name, key, sizeof(key));
            if (json_integer_value(json_object_get(names, key)) != 1 ||
                (email != NULL && email[0] != '\0' &&
                 (lower_key(email, key, sizeof(key)),
                  json_integer_value(json_object_get(emails, key)) != 1))) {
                continue;
            }
            mangle(name, other, sizeof(other));
            insert_local(other, NULL, NULL, overlap == 600 ? LID_NAME : NULL);
            if (overlap == 600) {
                snprintf(XID_NAME, sizeof(XID_NAME), "%s", xid);
            }
        }
        overlap++;
    }
    assert_int_equal(overlap, 800);
    json_decref(all);
    json_decref(emails);
    json_decref(names);
    for (k = 0; k < 200; k++) {
        char name[64], email[64];
        snprintf(name, sizeof(name), "Brand New Client %03d", k);
        snprintf(email, sizeof(email), "new%03d@client.example", k);
        insert_local(name, email, NULL, NULL);
    }
    assert_int_equal(sql_long("SELECT count(*) FROM app.contacts", 0), N_LOCAL);
    /* Those inserts are the host application's: they are in the outbox. */
    assert_true(sql_long("SELECT count(*) FROM sync.changes WHERE processed_at IS NULL", 0) > 0 ||
                sql_long("SELECT count(*) FROM sync.runs WHERE mode = 'push'", 0) > 0);

    long puts_before = sim_calls("POST /Contacts") + sim_calls("PUT /Contacts");
    json_t *run = sync_run("full");
    assert_status(run, "succeeded");
    /* Everything is linked both ways, nothing doubled. */
    long total = N_XERO + 200;
    assert_int_equal(sql_long("SELECT count(*) FROM app.contacts", 0), total);
    assert_int_equal(sql_long("SELECT count(*) FROM sync.mappings WHERE entity = 'contact'", 0),
                     total);
    /* The new locals may have been pushed by the realtime push run meanwhile; either way
     * Xero holds each exactly once. */
    for (int w = 0; w < 100 && sim_contacts_total() < total; w++) {
        usleep(100000);
    }
    assert_int_equal(sim_contacts_total(), total);
    assert_int_equal(sim_duplicates(), 0);
    /* Writes go 50 to a call, whichever run sent them (the full run's scan, or the push run
     * the waiting outbox became once the import was done). */
    long sent = sql_long("SELECT coalesce(sum((counts->'contact'->'push'->>'sent')::int), 0) "
                         "FROM sync.runs",
                         0);
    long most = sql_long("SELECT coalesce(sum(((counts->'contact'->'push'->>'sent')::int + 49) / "
                         "50), 0) FROM sync.runs",
                         0);
    long writes = sim_calls("POST /Contacts") + sim_calls("PUT /Contacts") - puts_before;
    fprintf(stderr, "pushed %ld records in %ld calls (at most %ld)\n", sent, writes, most);
    if (writes > most) {
        /* Which steps wrote: their kind, attempts, what they sent and how many calls. */
        char *steps = sql("SELECT string_agg(format('%s %s %s attempts=%s calls=%s sent=%s "
                          "created=%s updated=%s failed=%s linked=%s err=%s', r.mode, s.kind, "
                          "s.status, s.attempts, s.result->>'calls', "
                          "s.result->'counts'->>'sent', s.result->'counts'->>'created', "
                          "s.result->'counts'->>'updated', s.result->'counts'->>'failed', "
                          "s.result->'counts'->>'linked', s.error), E'\\n' ORDER BY s.id) FROM "
                          "sync.run_steps s JOIN sync.runs r ON r.id = s.run_id WHERE s.kind <> "
                          "'pull' AND s.entity = 'contact'",
                          0);
        fprintf(stderr, "%s\n", steps != NULL ? steps : "(none)");
        free(steps);
    }
    assert_true(sent >= 1000);
    assert_true(writes <= most);
    assert_int_equal(count_of(run, "pull", "linked"), 800);
    char *m = sql("SELECT xero_id FROM sync.mappings WHERE local_id = $1", 1, LID_NUMBER);
    assert_string_equal(m, XID_NUMBER);
    free(m);
    m = sql("SELECT xero_id FROM sync.mappings WHERE local_id = $1", 1, LID_EMAIL);
    assert_string_equal(m, XID_EMAIL);
    free(m);
    m = sql("SELECT xero_id FROM sync.mappings WHERE local_id = $1", 1, LID_NAME);
    assert_string_equal(m, XID_NAME);
    free(m);
    /* No two local rows for one Xero contact, no two Xero contacts for one local row. */
    assert_int_equal(sql_long("SELECT count(*) FROM (SELECT xero_id FROM sync.mappings GROUP BY "
                              "xero_id HAVING count(*) > 1) d",
                              0),
                     0);
    json_decref(run);
}

static void test_incremental_picks_up_exactly_the_changes(void **state)
{
    (void)state;
    /* Settle what the import queued (the realtime push of the new local records). */
    usleep(1500000);
    json_t *run = sync_run("incremental");
    json_decref(run);

    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts?page=3&pageSize=7", TENANT);
    json_t *list = sim_get(path);
    json_t *cs = json_object_get(list, "Contacts");
    assert_int_equal(json_array_size(cs), 7);
    char ids[7][40];
    for (size_t i = 0; i < 7; i++) {
        snprintf(ids[i], 40, "%s",
                 json_string_value(json_object_get(json_array_get(cs, i), "ContactID")));
        char p2[256], b2[128];
        snprintf(p2, sizeof(p2), "/_sim/tenants/%s/Contacts/%s", TENANT, ids[i]);
        snprintf(b2, sizeof(b2), "{\"FirstName\":\"Changed%zu\"}", i);
        sim_post(p2, b2);
    }
    json_decref(list);
    run = sync_run("incremental");
    assert_status(run, "succeeded");
    assert_int_equal(count_of(run, "pull", "updated"), 7);
    assert_int_equal(count_of(run, "pull", "created"), 0);
    for (int i = 0; i < 7; i++) {
        char want[32];
        snprintf(want, sizeof(want), "Changed%d", i);
        char *fn = sql("SELECT c.first_name FROM app.contacts c JOIN sync.mappings m ON "
                       "m.local_id = c.id WHERE m.xero_id = $1",
                       1, ids[i]);
        assert_string_equal(fn, want);
        free(fn);
    }
    json_decref(run);

    /* Nothing changed: exactly one call. */
    long before = sim_calls("GET /Contacts");
    run = sync_run("incremental");
    assert_status(run, "succeeded");
    assert_int_equal(sim_calls("GET /Contacts") - before, 1);
    assert_int_equal(count_of(run, "pull", "updated"), 0);
    json_decref(run);

    /* A full run with nothing changed on either side: its push phase reads no local record
     * (each one's updated_at is still its mapping's), so it examines and sends nothing. */
    run = sync_run("full");
    assert_status(run, "succeeded");
    assert_int_equal(count_of(run, "pull", "updated"), 0);
    assert_int_equal(count_of(run, "pull", "created"), 0);
    assert_int_equal(count_of(run, "push", "unchanged"), 0);
    assert_int_equal(count_of(run, "push", "sent"), 0);
    json_decref(run);
}

/* wait_sim waits until Xero's contact xid has field == want. */
static bool wait_sim(const char *xid, const char *field, const char *want, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    for (;;) {
        json_t *c = sim_contact(xid);
        const char *v = json_string_value(json_object_get(c, field));
        bool ok = v != NULL && strcmp(v, want) == 0;
        json_decref(c);
        if (ok) {
            return true;
        }
        if (xst_now_ms() > end) {
            return false;
        }
        usleep(100000);
    }
}

static void test_local_edit_reaches_xero_without_echo(void **state)
{
    (void)state;
    long before_runs = sql_long("SELECT count(*) FROM sync.runs WHERE mode = 'push'", 0);
    free(sql("UPDATE app.contacts SET email = 'edited.locally@example.com' WHERE id = $1", 1,
             LID_EMAIL));
    int64_t t0 = xst_now_ms();
    assert_true(wait_sim(XID_EMAIL, "EmailAddress", "edited.locally@example.com", 15000));
    fprintf(stderr, "local edit reached Xero in %lld ms\n", (long long)(xst_now_ms() - t0));
    assert_true(sql_long("SELECT count(*) FROM sync.runs WHERE mode = 'push'", 0) > before_runs);
    /* Pulling it back changes nothing locally and queues nothing. */
    usleep(500000);
    json_t *run = sync_run("incremental");
    assert_status(run, "succeeded");
    assert_int_equal(count_of(run, "pull", "updated"), 0);
    assert_int_equal(count_of(run, "pull", "queued"), 0);
    assert_int_equal(sql_long("SELECT count(*) FROM sync.changes WHERE processed_at IS NULL", 0),
                     0);
    json_decref(run);
}

/* set_policy sets the contact conflict policy (and merge fallback). */
static void set_policy(const char *policy, const char *fallback)
{
    char path[128], body[256];
    snprintf(path, sizeof(path), "/v1/connections/%s/settings", CONN);
    snprintf(body, sizeof(body),
             "{\"conflict_policy\":{\"contact\":\"%s\"},\"merge_fallback\":{\"contact\":\"%s\"}}",
             policy, fallback);
    xst_http r = xst_engine_api(E, "PUT", path, body);
    assert_int_equal(r.status, 200);
    xst_http_free(&r);
}

/* conflict_scenario: one contact changed in Xero (last name, and e-mail when both_email) and
 * then locally (first name, and e-mail when both_email); the sync settles it. */
static void conflict_scenario(const char *lid, const char *xid, const char *tag, bool both_email)
{
    char p2[256], b2[256];
    snprintf(p2, sizeof(p2), "/_sim/tenants/%s/Contacts/%s", TENANT, xid);
    if (both_email) {
        snprintf(b2, sizeof(b2), "{\"LastName\":\"XeroLast-%s\",\"EmailAddress\":\"xero-%s@x.nz\"}",
                 tag, tag);
    } else {
        snprintf(b2, sizeof(b2), "{\"LastName\":\"XeroLast-%s\"}", tag);
    }
    sim_post(p2, b2);
    usleep(20000);
    char first[64], mail[64];
    snprintf(first, sizeof(first), "LocalFirst-%s", tag);
    snprintf(mail, sizeof(mail), "local-%s@x.nz", tag);
    if (both_email) {
        free(sql("UPDATE app.contacts SET first_name = $2, email = $3 WHERE id = $1", 3, lid, first,
                 mail));
    } else {
        free(sql("UPDATE app.contacts SET first_name = $2 WHERE id = $1", 2, lid, first));
    }
}

/* settle waits until the outbox is empty and every run ended. */
static void settle(void)
{
    if (!xst_engine_settle(E, 30000)) {
        fail_msg("the engine did not settle");
    }
}

/* pick returns the mapped contact at offset (local and Xero ids). */
static void pick(int offset, char lid[40], char xid[40])
{
    xst_engine_mapped(E, "contact", offset, lid, xid);
}

/* contacts_engine starts an engine of its own (prefix): one simulated tenant, the
 * orchestrator with orch_env, auth and one contacts replica, and an organisation (name, *org
 * new) connected to the tenant (conn, tenant). */
static xst_engine *contacts_engine(const char *prefix, char *const orch_env[], const char *name,
                                   char conn[40], char tenant[40], char **org)
{
    xst_engine *e = xst_engine_new(prefix);
    char *sim_env[] = {"XS_SIM_TENANTS=1", NULL};
    xst_engine_start_sim(e, sim_env);
    xst_engine_start_orchestrator(e, orch_env);
    xst_engine_start_service(e, "auth", "auth-1", NULL);
    xst_engine_start_service(e, "contacts", "contacts-1", NULL);
    assert_true(xst_engine_wait_live(e, "auth", 1, 20000));
    assert_true(xst_engine_wait_live(e, "contacts", 1, 20000));
    *org = xst_engine_connected(e, name, conn, tenant);
    return e;
}

/* XS_PUSH_DELAY 0 and XS_PUSH_EVERY: an organisation's change after a quiet spell is drained
 * at once, and the next one not before XS_PUSH_EVERY after that drain (its own engine, for
 * the settings). */
static void test_push_leaves_at_once_then_every(void **state)
{
    (void)state;
    char *orch_env[] = {"XS_SCHEDULER=false", "XS_PUSH_DELAY=0ms", "XS_PUSH_EVERY=3s",
                        "XS_PUSH_POLL=1s", NULL};
    char conn[40], tenant[40], *org = NULL;
    xst_engine *e = contacts_engine("push_every", orch_env, "Every Ltd", conn, tenant, &org);
    /* Changes wait for the contacts' first full run. */
    json_t *run = xst_engine_run(e, conn, "{\"mode\":\"full\",\"entities\":[\"contact\"]}", 60000);
    assert_status(run, "succeeded");
    json_decref(run);
    assert_true(xst_engine_settle(e, 30000));
    sleep(4); /* a quiet spell longer than XS_PUSH_EVERY */

    const char *pending = "SELECT count(*) FROM sync.changes WHERE processed_at IS NULL";
    int64_t t0 = xst_now_ms();
    free(xst_engine_sqlf(e, "INSERT INTO app.contacts (organisation_id, name) VALUES ($1, $2)", 2,
                         org, "Every First"));
    while (xst_engine_sql_longf(e, pending, 0) > 0) {
        assert_true(xst_now_ms() - t0 < 1500); /* at once, not after a delay */
        usleep(20000);
    }
    int64_t drained = xst_now_ms();
    free(xst_engine_sqlf(e, "INSERT INTO app.contacts (organisation_id, name) VALUES ($1, $2)", 2,
                         org, "Every Second"));
    while (xst_engine_sql_longf(e, pending, 0) > 0) {
        assert_true(xst_now_ms() - drained < 8000);
        usleep(20000);
    }
    int64_t second = xst_now_ms() - drained;
    fprintf(stderr, "first drained after %lld ms, the second %lld ms after it\n",
            (long long)(drained - t0), (long long)second);
    assert_true(second >= 2500); /* not before XS_PUSH_EVERY since the last drain */
    assert_true(xst_engine_settle(e, 30000));
    assert_int_equal(xst_engine_sql_longf(e,
                                          "SELECT count(*) FROM sync.mappings WHERE entity = "
                                          "'contact'",
                                          0),
                     xst_engine_sql_longf(e, "SELECT count(*) FROM app.contacts", 0));
    free(org);
    assert_int_equal(xst_engine_free(e), 0);
}

/* A realtime push of records all linked reads just them from Xero (by id, in its push step)
 * instead of pulling what changed first; and local changes that come while a connection's
 * push waits join that push rather than queueing another behind it. */
static void test_realtime_push_one_pending_and_rereads(void **state)
{
    (void)state;
    xst_engine_settle(E, 30000);
    /* The last edit's run: one push step that re-read the record, no pull. */
    char *run = sql("SELECT id FROM sync.runs WHERE mode = 'push' AND trigger = 'realtime' ORDER "
                    "BY created_at DESC LIMIT 1",
                    0);
    assert_non_null(run);
    assert_int_equal(sql_long("SELECT count(*) FROM sync.run_steps WHERE run_id = $1 AND kind "
                              "<> 'push'",
                              1, run),
                     0);
    assert_true(sql_long("SELECT coalesce((counts->'contact'->'push'->>'reread')::int, 0) FROM "
                         "sync.runs WHERE id = $1",
                         1, run) >= 1);
    free(run);

    /* Xero slow: the first push is in flight for seconds while six more edits come, 300 ms
     * apart (the push delay): pushes of other records start beside it (XS_PUSH_PARALLEL), and
     * beyond them one waits, which the rest join. */
    json_t *cfg =
        xst_engine_sim_json(E, "POST", "/_sim/config", "{\"latency\":{\"fixed_ms\":2000}}");
    json_decref(cfg);
    char *t0 = sql("SELECT now()::text", 0);
    char lid[7][40], xid[7][40], mail[7][64];
    long most_queued = 0, most_running = 0;
    for (int i = 0; i < 7; i++) {
        pick(40 + i, lid[i], xid[i]);
        snprintf(mail[i], sizeof(mail[i]), "pending-%d@x.nz", i);
        free(sql("UPDATE app.contacts SET email = $2 WHERE id = $1", 2, lid[i], mail[i]));
        for (int j = 0; j < 6; j++) {
            long q = sql_long("SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND mode "
                              "= 'push' AND trigger = 'realtime' AND status = 'queued'",
                              1, CONN);
            most_queued = q > most_queued ? q : most_queued;
            long n = sql_long("SELECT count(*) FROM sync.run_steps s JOIN sync.runs r ON r.id = "
                              "s.run_id WHERE r.connection_id = $1 AND s.kind = 'push' AND "
                              "s.entity = 'contact' AND s.status = 'running'",
                              1, CONN);
            most_running = n > most_running ? n : most_running;
            usleep(50000);
        }
    }
    cfg = xst_engine_sim_json(E, "POST", "/_sim/config", "{\"latency\":{\"fixed_ms\":0}}");
    json_decref(cfg);
    settle();
    for (int i = 0; i < 7; i++) {
        assert_true(wait_sim(xid[i], "EmailAddress", mail[i], 10000));
    }
    /* One push waiting at most, up to XS_PUSH_PARALLEL (3) under way at once; the seven edits
     * went in few runs (one per drain without the merge: about seven). */
    assert_true(most_queued <= 1);
    assert_true(most_running >= 2 && most_running <= 3);
    long runs = sql_long("SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND mode = "
                         "'push' AND created_at >= $2::timestamptz",
                         2, CONN, t0);
    fprintf(stderr, "seven edits during a slow push went in %ld push runs, %ld at once\n", runs,
            most_running);
    assert_true(runs >= 1 && runs <= 4);
    free(t0);

    /* A record edited again, with another, while its push is in flight: the second push
     * starts beside the first without it (a record is in one push at a time), and takes it in a
     * later push once the first is done; the last edits are what Xero holds. */
    cfg = xst_engine_sim_json(E, "POST", "/_sim/config", "{\"latency\":{\"fixed_ms\":1500}}");
    json_decref(cfg);
    char one[40], onex[40], two[40], twox[40];
    pick(47, one, onex);
    pick(48, two, twox);
    free(sql("UPDATE app.contacts SET email = 'again-1@x.nz' WHERE id = $1", 1, one));
    usleep(700000);
    free(sql("UPDATE app.contacts SET email = CASE WHEN id = $1 THEN 'again-2@x.nz' ELSE "
             "'beside-2@x.nz' END WHERE id IN ($1, $2)",
             2, one, two));
    long together = 0, beside = 0;
    for (int j = 0; j < 60; j++) {
        long n = sql_long("SELECT count(*) FROM sync.run_steps s JOIN sync.runs r ON r.id = "
                          "s.run_id WHERE r.connection_id = $1 AND s.kind = 'push' AND s.status = "
                          "'running' AND s.input->'local_ids' ? $2",
                          2, CONN, one);
        together = n > together ? n : together;
        beside += sql_long("SELECT count(*) FROM sync.run_steps s JOIN sync.runs r ON r.id = "
                           "s.run_id JOIN sync.run_steps t ON t.run_id <> s.run_id AND t.status = "
                           "'running' AND t.kind = 'push' AND t.input->'local_ids' ? $2 WHERE "
                           "r.connection_id = $1 AND s.kind = 'push' AND s.status = 'running' AND "
                           "s.input->'local_ids' ? $3 AND NOT s.input->'local_ids' ? $2",
                           3, CONN, one, two);
        usleep(50000);
    }
    cfg = xst_engine_sim_json(E, "POST", "/_sim/config", "{\"latency\":{\"fixed_ms\":0}}");
    json_decref(cfg);
    settle();
    assert_true(wait_sim(onex, "EmailAddress", "again-2@x.nz", 10000));
    assert_true(wait_sim(twox, "EmailAddress", "beside-2@x.nz", 10000));
    assert_int_equal(together, 1);
    assert_true(beside > 0);
}

static void test_conflict_policies(void **state)
{
    (void)state;
    settle();
    char lid[40], xid[40];

    /* local_wins: the e-mail changed on both sides; the local one is kept, everywhere. */
    set_policy("local_wins", "last_write_wins");
    pick(10, lid, xid);
    conflict_scenario(lid, xid, "lw", true);
    settle();
    assert_true(wait_sim(xid, "EmailAddress", "local-lw@x.nz", 10000));
    assert_true(wait_sim(xid, "FirstName", "LocalFirst-lw", 1000));
    char *v = sql("SELECT email FROM app.contacts WHERE id = $1", 1, lid);
    assert_string_equal(v, "local-lw@x.nz");
    free(v);

    /* xero_wins: Xero's version everywhere. */
    set_policy("xero_wins", "last_write_wins");
    pick(11, lid, xid);
    conflict_scenario(lid, xid, "xw", true);
    settle();
    v = sql("SELECT email FROM app.contacts WHERE id = $1", 1, lid);
    assert_string_equal(v, "xero-xw@x.nz");
    free(v);
    v = sql("SELECT coalesce(first_name, '') FROM app.contacts WHERE id = $1", 1, lid);
    assert_string_not_equal(v, "LocalFirst-xw");
    free(v);
    assert_true(wait_sim(xid, "EmailAddress", "xero-xw@x.nz", 1000));

    /* last_write_wins: the local change came later. */
    set_policy("last_write_wins", "last_write_wins");
    pick(12, lid, xid);
    conflict_scenario(lid, xid, "lww", true);
    settle();
    assert_true(wait_sim(xid, "EmailAddress", "local-lww@x.nz", 10000));

    /* merge: disjoint fields combine on both sides. */
    set_policy("merge", "xero_wins");
    pick(13, lid, xid);
    conflict_scenario(lid, xid, "mg", false);
    settle();
    v = sql("SELECT first_name || '/' || last_name FROM app.contacts WHERE id = $1", 1, lid);
    assert_string_equal(v, "LocalFirst-mg/XeroLast-mg");
    free(v);
    assert_true(wait_sim(xid, "FirstName", "LocalFirst-mg", 10000));
    assert_true(wait_sim(xid, "LastName", "XeroLast-mg", 1000));
    /* merge with a field changed on both sides falls back (here: Xero's). */
    pick(14, lid, xid);
    conflict_scenario(lid, xid, "mb", true);
    settle();
    v = sql("SELECT first_name || '/' || email FROM app.contacts WHERE id = $1", 1, lid);
    assert_string_equal(v, "LocalFirst-mb/xero-mb@x.nz");
    free(v);
    assert_true(wait_sim(xid, "FirstName", "LocalFirst-mb", 10000));

    /* manual: held, neither side overwritten, until resolved. */
    set_policy("manual", "last_write_wins");
    pick(15, lid, xid);
    conflict_scenario(lid, xid, "mn", true);
    settle();
    v = sql("SELECT email FROM app.contacts WHERE id = $1", 1, lid);
    assert_string_equal(v, "local-mn@x.nz");
    free(v);
    assert_true(wait_sim(xid, "EmailAddress", "xero-mn@x.nz", 1000));
    char path[256];
    snprintf(path, sizeof(path), "/v1/conflicts?connection_id=%s&status=PENDING", CONN);
    xst_http r = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    json_t *list = json_object_get(r.json, "conflicts");
    assert_int_equal(json_array_size(list), 1);
    json_t *c = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(c, "local_id")), lid);
    /* Named for people: the local contact's name. */
    v = sql("SELECT name FROM app.contacts WHERE id = $1", 1, lid);
    assert_string_equal(json_string_value(json_object_get(c, "record")), v);
    free(v);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "local"), "email")),
                        "local-mn@x.nz");
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "xero"), "email")),
                        "xero-mn@x.nz");
    char cid[40];
    snprintf(cid, sizeof(cid), "%s", json_string_value(json_object_get(c, "id")));
    xst_http_free(&r);
    /* A bad resolution names the field; a good one settles it. */
    snprintf(path, sizeof(path), "/v1/conflicts/%s/resolve", cid);
    r = xst_engine_api(E, "POST", path, "{\"resolution\":\"KEEP_BOTH\"}");
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
    r = xst_engine_api(E, "POST", path, "{\"resolution\":\"MERGED\"}");
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
    r = xst_engine_api(E, "POST", path, "{\"resolution\":\"KEEP_LOCAL\",\"by\":\"ana@coaching\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "RESOLVED");
    xst_http_free(&r);
    settle();
    assert_true(wait_sim(xid, "EmailAddress", "local-mn@x.nz", 10000));
    r = xst_engine_api(E, "POST", path, "{\"resolution\":\"KEEP_XERO\"}");
    assert_int_equal(r.status, 409);
    xst_http_free(&r);
    /* Every decision is kept, with both versions. */
    assert_true(sql_long("SELECT count(*) FROM sync.conflicts WHERE status = 'RESOLVED' AND "
                         "local_version IS NOT NULL AND xero_version IS NOT NULL",
                         0) >= 6);
    set_policy("last_write_wins", "last_write_wins");
}

static void test_archival_both_ways(void **state)
{
    (void)state;
    settle();
    char lid[40], xid[40];
    /* Archived in Xero: archived here. */
    pick(20, lid, xid);
    char p2[256];
    snprintf(p2, sizeof(p2), "/_sim/tenants/%s/Contacts/%s/archive", TENANT, xid);
    sim_post(p2, "{}");
    json_t *run = sync_run("incremental");
    json_decref(run);
    char *v = sql("SELECT status FROM app.contacts WHERE id = $1", 1, lid);
    assert_string_equal(v, "ARCHIVED");
    free(v);
    /* Archived here: archived in Xero. Deleted here: archived in Xero, the row gone only here. */
    pick(21, lid, xid);
    free(sql("UPDATE app.contacts SET status = 'ARCHIVED' WHERE id = $1", 1, lid));
    assert_true(wait_sim(xid, "ContactStatus", "ARCHIVED", 15000));
    char lid2[40], xid2[40];
    pick(22, lid2, xid2);
    free(sql("DELETE FROM app.contacts WHERE id = $1", 1, lid2));
    assert_true(wait_sim(xid2, "ContactStatus", "ARCHIVED", 15000));
    settle();
}

static void test_one_bad_item_fails_alone(void **state)
{
    (void)state;
    settle();
    /* Three new local contacts, one with an address Xero refuses. */
    char a[40], b[40], c[40];
    insert_local("Good One Ltd", "good.one@example.com", NULL, a);
    insert_local("Bad Email Ltd", "not an email", NULL, b);
    insert_local("Good Two Ltd", "good.two@example.com", NULL, c);
    settle();
    assert_int_equal(
        sql_long("SELECT count(*) FROM sync.mappings WHERE local_id IN ($1, $2)", 2, a, c), 2);
    assert_int_equal(sql_long("SELECT count(*) FROM sync.mappings WHERE local_id = $1", 1, b), 0);
    char *msg = sql("SELECT message FROM sync.run_item_errors WHERE local_id = $1 ORDER BY id DESC "
                    "LIMIT 1",
                    1, b);
    assert_non_null(msg);
    fprintf(stderr, "refused item: %s\n", msg);
    free(msg);
    char *run = sql("SELECT run_id FROM sync.run_item_errors WHERE local_id = $1 LIMIT 1", 1, b);
    char *st = sql("SELECT status FROM sync.runs WHERE id = $1", 1, run);
    assert_string_equal(st, "partial");
    free(st);
    free(run);
}

static void test_local_rest_writes(void **state)
{
    (void)state;
    settle();
    char body[512];
    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"name\":\"Made Through The API\",\"email\":"
             "\"api@example.com\",\"phones\":[{\"type\":\"MOBILE\",\"number\":\"021 555 0101\"}]}",
             ORG);
    xst_http r = xst_engine_api(E, "POST", "/v1/contacts", body);
    if (r.status != 201) {
        fprintf(stderr, "create: %ld %s\n", r.status, r.body);
    }
    assert_int_equal(r.status, 201);
    char id[40];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r.json, "id")));
    xst_http_free(&r);
    settle();
    char *xid = sql("SELECT xero_id FROM sync.mappings WHERE local_id = $1", 1, id);
    assert_non_null(xid);
    json_t *c = sim_contact(xid);
    assert_string_equal(json_string_value(json_object_get(c, "Name")), "Made Through The API");
    json_decref(c);

    char path[128];
    snprintf(path, sizeof(path), "/v1/contacts/%s", id);
    r = xst_engine_api(E, "PATCH", path, "{\"first_name\":\"Patched\"}");
    if (r.status != 200) {
        fprintf(stderr, "patch: %ld %s\n", r.status, r.body);
    }
    assert_int_equal(r.status, 200);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "record"), "email")),
        "api@example.com");
    xst_http_free(&r);
    assert_true(wait_sim(xid, "FirstName", "Patched", 15000));
    free(xid);

    /* Bad requests name the field. */
    r = xst_engine_api(E, "PATCH", path, "{\"email\":\"nope\"}");
    assert_int_equal(r.status, 400);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "error"), "field")), "email");
    xst_http_free(&r);
    r = xst_engine_api(E, "PATCH", path, "{\"colour\":\"blue\"}");
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
    snprintf(body, sizeof(body), "{\"organisation_id\":\"%s\"}", ORG);
    r = xst_engine_api(E, "POST", "/v1/contacts", body);
    assert_int_equal(r.status, 400);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "error"), "field")), "name");
    xst_http_free(&r);
    r = xst_engine_api(E, "PATCH", "/v1/contacts/6c1d2a1e-0000-4000-8000-000000000000",
                       "{\"name\":\"x\"}");
    assert_int_equal(r.status, 404);
    xst_http_free(&r);
}

static void test_api_validation_and_stats(void **state)
{
    (void)state;
    char path[160];
    snprintf(path, sizeof(path), "/v1/connections/%s/sync", CONN);
    xst_http r = xst_engine_api(E, "POST", path, "{\"mode\":\"sideways\"}");
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
    r = xst_engine_api(E, "POST", path, "{\"mode\":\"full\",\"entities\":[\"unicorn\"]}");
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
    snprintf(path, sizeof(path), "/v1/connections/%s/sync/entity", CONN);
    r = xst_engine_api(E, "POST", path, "{\"entity\":\"contact\"}");
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
    r = xst_engine_api(E, "POST", path,
                       "{\"entity\":\"contact\",\"xero_id\":\"6c1d2a1e-0000-4000-8000-00000000000"
                       "0\",\"local_id\":\"6c1d2a1e-0000-4000-8000-000000000000\"}");
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
    /* One record on demand, by its Xero id. */
    char body[160];
    snprintf(body, sizeof(body), "{\"entity\":\"contact\",\"xero_id\":\"%s\"}", XID_NAME);
    r = xst_engine_api(E, "POST", path, body);
    assert_int_equal(r.status, 202);
    char run[40];
    snprintf(run, sizeof(run), "%s", json_string_value(json_object_get(r.json, "id")));
    xst_http_free(&r);
    json_t *j = wait_run(run, 30000);
    assert_status(j, "succeeded");
    assert_int_equal(count_of(j, "pull", "fetched"), 1);
    json_decref(j);

    snprintf(path, sizeof(path), "/v1/connections/%s/settings", CONN);
    r = xst_engine_api(E, "PUT", path, "{\"conflict_policy\":{\"contact\":\"sometimes\"}}");
    assert_int_equal(r.status, 400);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "error"), "field")),
        "conflict_policy.contact");
    xst_http_free(&r);
    r = xst_engine_api(E, "PUT", path,
                       "{\"schedule\":{\"incremental\":{\"every_minutes\":5},\"full\":{\"at\":"
                       "\"03:30\"}}}");
    assert_int_equal(r.status, 200);
    xst_http_free(&r);
    r = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(r.json, "effective"), "schedule"),
                            "full"),
            "at")),
        "03:30");
    xst_http_free(&r);

    snprintf(path, sizeof(path), "/v1/connections/%s/stats", CONN);
    r = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    json_t *ent = json_object_get(json_object_get(r.json, "entities"), "contact");
    if (json_integer_value(json_object_get(ent, "linked")) < N_XERO) {
        fprintf(stderr, "stats: %s\n", r.body);
    }
    assert_true(json_integer_value(json_object_get(ent, "linked")) >= N_XERO);
    assert_non_null(json_object_get(ent, "last_success"));
    assert_true(json_integer_value(
                    json_object_get(json_object_get(r.json, "api_calls_today"), "total")) > 0);
    assert_non_null(json_object_get(json_object_get(r.json, "budget"), "minute_left"));
    /* No webhook key here: incremental runs pull every entity at their interval. */
    json_t *hooks = json_object_get(r.json, "webhooks");
    assert_string_equal(json_string_value(json_object_get(hooks, "state")), "not_configured");
    assert_string_equal(json_string_value(json_object_get(hooks, "polling")), "normal");
    xst_http_free(&r);
    snprintf(path, sizeof(path), "/v1/runs?connection_id=%s&limit=5", CONN);
    r = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "runs")), 5);
    xst_http_free(&r);
    r = xst_engine_api(E, "GET", "/v1/runs?status=bogus", NULL);
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
}

/* Matching when many local contacts are unlinked (more than contacts' match reads one by one:
 * FEW_UNLINKED, 4,000): the keys are looked up in their indexes instead, with the same result.
 * The local contacts are written as the engine's (no outbox, so nothing pushes them meanwhile)
 * but not as a pull's, so they are unlinked. */
static void test_match_among_many_unlinked(void **state)
{
    (void)state;
    /* (a contact Xero refused in an earlier test is still unlinked) */
    long had =
        sql_long("SELECT count(*) FROM sync.unlinked_contacts WHERE connection_id = $1", 1, CONN);
    assert_int_equal(
        sql_long("WITH m AS MATERIALIZED (SELECT set_config('xs.origin', 'engine', true)), i AS "
                 "(INSERT INTO app.contacts (organisation_id, name, email) SELECT $1::uuid, "
                 "CASE WHEN g <= 5 THEN 'MANY match ' || g ELSE 'Many local ' || g END, CASE "
                 "WHEN g BETWEEN 6 AND 8 THEN 'Many.Mail' || g || '@Example.com' END FROM m, "
                 "generate_series(1, 4100) g RETURNING 1) SELECT count(*) FROM i",
                 1, ORG),
        4100);
    assert_int_equal(
        sql_long("SELECT count(*) FROM sync.unlinked_contacts WHERE connection_id = $1", 1, CONN),
        had + 4100);
    /* Eight contacts made in Xero: five by name, three by e-mail. */
    char path[256], body[1024];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts", TENANT);
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"Contacts\":[");
    for (int g = 1; g <= 8; g++) {
        if (g <= 5) {
            n += (size_t)snprintf(body + n, sizeof(body) - n, "%s{\"Name\":\"Many  Match %d.\"}",
                                  g > 1 ? "," : "", g);
        } else {
            n += (size_t)snprintf(body + n, sizeof(body) - n,
                                  ",{\"Name\":\"Made in Xero %d\",\"EmailAddress\":"
                                  "\"many.mail%d@example.com\"}",
                                  g, g);
        }
    }
    snprintf(body + n, sizeof(body) - n, "]}");
    sim_post(path, body);
    long before = sql_long("SELECT count(*) FROM app.contacts", 0);
    /* The eight to be linked (a pull may rewrite their names and e-mails: Xero's are newer). */
    char *eight = sql("SELECT string_agg(id::text, ',') FROM app.contacts WHERE name LIKE 'MANY "
                      "match %' OR email LIKE 'Many.Mail%'",
                      0);
    assert_non_null(eight);
    json_t *run = sync_run("incremental");
    assert_status(run, "succeeded");
    if (count_of(run, "pull", "linked") != 8) {
        char *t = xs_json_dump(json_object_get(run, "counts"), 0);
        fprintf(stderr, "counts: %s\n", t);
        free(t);
    }
    assert_int_equal(count_of(run, "pull", "linked"), 8);
    assert_int_equal(count_of(run, "pull", "created"), 0);
    assert_int_equal(sql_long("SELECT count(*) FROM app.contacts", 0), before);
    assert_int_equal(sql_long("SELECT count(*) FROM sync.mappings WHERE connection_id = $1 AND "
                              "local_id = ANY(string_to_array($2, ',')::uuid[])",
                              2, CONN, eight),
                     8);
    /* Linked, so no longer unlinked. */
    assert_int_equal(sql_long("SELECT count(*) FROM sync.unlinked_contacts WHERE connection_id = "
                              "$1 AND contact_id = ANY(string_to_array($2, ',')::uuid[])",
                              2, CONN, eight),
                     0);
    free(eight);
    json_decref(run);
    /* The others go again, as the engine's write: nothing for the outbox. */
    sql_long("WITH m AS MATERIALIZED (SELECT set_config('xs.origin', 'engine', true)), d AS "
             "(DELETE FROM app.contacts c USING m WHERE c.organisation_id = $1 AND c.name LIKE "
             "'Many local %' RETURNING 1) SELECT count(*) FROM d",
             1, ORG);
    assert_int_equal(
        sql_long("SELECT count(*) FROM sync.unlinked_contacts WHERE connection_id = $1", 1, CONN),
        had);
}

/* sim_create_batch creates, in one call to the simulator, n contacts named "<tag> k", which
 * Xero stamps with one UpdatedDateUTC; returns that time. */
static xs_time sim_create_batch(xst_engine *e, const char *tenant, const char *tag, int n)
{
    json_t *list = json_array();
    for (int k = 0; k < n; k++) {
        char name[64];
        snprintf(name, sizeof(name), "%s %d", tag, k);
        json_array_append_new(list, json_pack("{s:s}", "Name", name));
    }
    json_t *body = json_pack("{s:o}", "Contacts", list);
    char *text = xs_json_dump(body, 0), path[160];
    json_decref(body);
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts", tenant);
    xst_http r = xst_engine_simctl(e, "PUT", path, text);
    free(text);
    assert_int_equal(r.status, 200);
    json_t *made = json_object_get(r.json, "Contacts");
    assert_int_equal(json_array_size(made), n);
    xs_time at = 0, last = 0;
    size_t i;
    json_t *c;
    json_array_foreach(made, i, c)
    {
        const char *u = json_string_value(json_object_get(c, "UpdatedDateUTC"));
        assert_non_null(u);
        assert_int_equal(xs_time_parse_any(u, i == 0 ? &at : &last), XS_OK);
        assert_true(i == 0 || last == at);
    }
    xst_http_free(&r);
    return at;
}

/* sleep_past_second waits into the next whole second, plus a tenth. */
static void sleep_past_second(void)
{
    xs_clock_sleep_ms(1000 - xs_clock_now() % 1000 + 100);
}

/* A page that ends inside a second of many records: the next page's tie-break leaves them all
 * out by id, in a where as long as TIEBREAK_MAX ids make it. It once did not fit in the path
 * buffer past about 12 ids, and the pull failed ("the request does not fit in a URL"). Here a
 * page of 30 ends with 15 of the 20 records of one second (its own engine, for the page size),
 * and the import takes the fewest calls, reading each record once. */
static void test_tiebreak_of_many_ids(void **state)
{
    (void)state;
    char *orch_env[] = {"XS_SCHEDULER=false", "XS_PULL_PAGE_SIZE=30", NULL};
    char conn[40], tenant[40], *org = NULL;
    xst_engine *e = contacts_engine("tiebreak", orch_env, "Tie Break Ltd", conn, tenant, &org);

    sleep_past_second();
    xs_time t1 = sim_create_batch(e, tenant, "First", 15);
    sleep_past_second();
    xs_time t2 = sim_create_batch(e, tenant, "Second", 20);
    sleep_past_second();
    xs_time t3 = sim_create_batch(e, tenant, "Third", 10);
    assert_true(t1 / 1000 < t2 / 1000 && t2 / 1000 < t3 / 1000);
    /* The tie-break is only for a second well past (XS_DOMAIN_RESUME_MARGIN_MS). */
    int64_t wait = t2 + 1000 + XS_DOMAIN_RESUME_MARGIN_MS + 500 - xs_clock_now();
    assert_true(wait < 10000);
    if (wait > 0) {
        xs_clock_sleep_ms(wait);
    }

    long gets = xst_engine_sim_calls(e, "GET /Contacts", 0);
    json_t *run = xst_engine_run(e, conn, "{\"mode\":\"full\",\"entities\":[\"contact\"]}", 60000);
    assert_status(run, "succeeded");
    assert_int_equal(count_of(run, "pull", "created"), 45);
    assert_int_equal(count_of(run, "pull", "fetched"), 45); /* none read twice */
    assert_int_equal(count_of(run, "pull", "failed"), 0);
    json_decref(run);
    /* ceil(45 / 30): the second page left out the 15 it had read, by id */
    assert_int_equal(xst_engine_sim_calls(e, "GET /Contacts", 0) - gets, 2);
    assert_int_equal(xst_engine_sim_calls(e, "GET /Contacts", 400), 0);
    assert_int_equal(xst_engine_sql_long(e,
                                         "SELECT count(*) FROM sync.mappings WHERE "
                                         "connection_id = $1 AND entity = 'contact'",
                                         1, (const char *const[]){conn}),
                     45);
    free(org);
    assert_int_equal(xst_engine_free(e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_import_links_the_overlap),
        cmocka_unit_test(test_incremental_picks_up_exactly_the_changes),
        cmocka_unit_test(test_local_edit_reaches_xero_without_echo),
        cmocka_unit_test(test_realtime_push_one_pending_and_rereads),
        cmocka_unit_test(test_push_leaves_at_once_then_every),
        cmocka_unit_test(test_conflict_policies),
        cmocka_unit_test(test_archival_both_ways),
        cmocka_unit_test(test_one_bad_item_fails_alone),
        cmocka_unit_test(test_local_rest_writes),
        cmocka_unit_test(test_api_validation_and_stats),
        cmocka_unit_test(test_match_among_many_unlinked),
        cmocka_unit_test(test_tiebreak_of_many_ids),
    };
    return xst_result(cmocka_run_group_tests(tests, setup, teardown));
}
