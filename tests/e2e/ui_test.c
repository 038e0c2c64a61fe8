/*
 * ui_test.c: the dashboard (docs/UI.md) in a real browser. Starts the engine and xero-sim
 * (1,500 contacts in Xero, each call 120 ms slow, pages of 100, so a run's bars are seen
 * moving), then runs tests/ui/dashboard.mjs: Debian's chromium driven by puppeteer-core,
 * which signs in, adds an organisation, connects it through Xero's consent page, watches the
 * initial import and a "sync now" reach 100%, changes settings (an invalid one first),
 * merges a conflict made on both sides, follows an item error to the record's mappings,
 * pauses and resumes, shows that another origin can neither act nor frame the page, and
 * disconnects; each step asserts on what the page shows and saves a screenshot
 * (build/ui-shots; scripts/ui-screenshots copies them to docs/ui).
 *
 * Then, from the facts the script wrote, this checks the engine's side of those steps: the
 * settings stored, the merged contact the same here and in Xero, the connection
 * disconnected. Only in the plain pass of `make test` (it drives a browser).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"

#define N_CONTACTS 1500
#define RUN_MS     420000

static xst_engine *E;
static char TENANT[40];

static char *const SIM_ENV[] = {"XS_SIM_TENANTS=1", NULL};
/* Small pages, so a pull takes several steps and its bar moves in between. */
static char *const ORCH_ENV[] = {"XS_PULL_PAGE_SIZE=100", "XS_PULL_PAGES_PER_STEP=2", NULL};

static int setup(void **state)
{
    (void)state;
    E = xst_engine_new("ui");
    xst_engine_start_sim(E, SIM_ENV);
    xst_engine_start_orchestrator(E, ORCH_ENV);
    xst_engine_start_services(E);
    xst_http t = xst_engine_simctl(E, "GET", "/_sim/tenants", NULL);
    const char *tid = json_string_value(json_object_get(json_array_get(t.json, 0), "tenantId"));
    if (tid == NULL) {
        xst_die("the simulator has no tenant: %s", t.body);
    }
    snprintf(TENANT, sizeof(TENANT), "%s", tid);
    xst_http_free(&t);
    char path[256], body[96];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", TENANT);
    snprintf(body, sizeof(body), "{\"contacts\":%d,\"seed\":21}", N_CONTACTS);
    json_decref(xst_engine_sim_json(E, "POST", path, body));
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/config", "{\"latency\":{\"fixed_ms\":120}}"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return xst_engine_free(E) == 0 ? 0 : -1;
}

/* run_browser runs dashboard.mjs and returns its facts (new); fails the test when it fails. */
static json_t *run_browser(void)
{
    const char *src = getenv("XS_TEST_SOURCE_DIR"), *bin = getenv("XS_TEST_BINARY_DIR");
    assert_non_null(src);
    assert_non_null(bin);
    if (access(XST_CHROMIUM, X_OK) != 0) {
        fail_msg("no chromium at \"%s\": scripts/install-deps installs Debian's", XST_CHROMIUM);
    }
    char script[512], mods[512], shots[512], result[512];
    snprintf(script, sizeof(script), "%s/tests/ui/dashboard.mjs", src);
    snprintf(mods, sizeof(mods), "%s/npm/node_modules", bin);
    snprintf(shots, sizeof(shots), "%s/ui-shots", bin);
    snprintf(result, sizeof(result), "%s/ui-result-%d.json", bin, (int)getpid());
    if (access(mods, R_OK) != 0) {
        fail_msg("no %s: the npm_tools test (scripts/npm-tools) installs puppeteer-core", mods);
    }
    char e[9][640];
    snprintf(e[0], sizeof(e[0]), "XS_UI_API=%s", E->api);
    snprintf(e[1], sizeof(e[1]), "XS_UI_KEY=%s", XST_API_KEY);
    snprintf(e[2], sizeof(e[2]), "XS_UI_SIM=%s", E->sim);
    snprintf(e[3], sizeof(e[3]), "XS_UI_TENANT=%s", TENANT);
    snprintf(e[4], sizeof(e[4]), "XS_UI_CHROMIUM=%s", XST_CHROMIUM);
    snprintf(e[5], sizeof(e[5]), "XS_UI_NODE_MODULES=%s", mods);
    snprintf(e[6], sizeof(e[6]), "XS_UI_SHOTS=%s", shots);
    snprintf(e[7], sizeof(e[7]), "XS_UI_RESULT=%s", result);
    snprintf(e[8], sizeof(e[8]), "HOME=%s", bin); /* chromium's profile folders go there */
    char *env[] = {e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], NULL};
    char *argv[] = {"node", script, NULL};
    unlink(result);
    xst_proc *p = xst_spawn("dashboard", XST_NODE, argv, env);
    int64_t end = xst_now_ms() + RUN_MS;
    while (xst_alive(p) && xst_now_ms() < end) {
        usleep(200000);
    }
    int code = xst_stop(p, 5000);
    int sig = p->reaped && WIFSIGNALED(p->status) ? WTERMSIG(p->status) : 0;
    xst_log_dump(p); /* every step it took, passed or not */
    xst_proc_free(p);
    if (code != 0) {
        fail_msg("the browser test failed (exit %d, signal %d): its steps are above", code, sig);
    }
    char *text = xst_slurp(result);
    assert_non_null(text);
    json_t *facts = json_loads(text, 0, NULL);
    free(text);
    unlink(result);
    assert_non_null(facts);
    return facts;
}

static const char *fact(json_t *facts, const char *name)
{
    const char *v = json_string_value(json_object_get(facts, name));
    if (v == NULL) {
        fail_msg("the browser test recorded no %s", name);
    }
    return v;
}

static void test_dashboard_in_a_browser(void **state)
{
    (void)state;
    json_t *facts = run_browser();
    const char *org = fact(facts, "organisation_id");
    const char *conn = fact(facts, "connection_id");
    const char *lid = fact(facts, "conflict_local_id");
    const char *xid = fact(facts, "conflict_xero_id");

    /* The organisation the page added, connected through the consent, now disconnected. */
    char *name = xst_engine_sqlf(E, "SELECT name FROM app.organisations WHERE id = $1", 1, org);
    assert_string_equal(name, "Harbour Physio");
    free(name);
    char *st = xst_engine_sqlf(E,
                               "SELECT status || ' ' || tenant_id FROM sync.connections WHERE id = "
                               "$1 AND organisation_id = $2",
                               2, conn, org);
    char want[80];
    snprintf(want, sizeof(want), "disconnected %s", TENANT);
    assert_string_equal(st, want);
    free(st);

    /* The settings saved from the form (and not the refused ones). */
    char *s = xst_engine_sqlf(E,
                              "SELECT concat_ws(' ', settings #>> '{conflict_policy,contact}', "
                              "settings #>> '{matching,contact}', settings #>> "
                              "'{schedule,incremental,every_minutes}', settings #>> "
                              "'{files,folder}', settings #>> '{xpm,needs_documents}', settings "
                              "#>> '{xpm,enabled}', coalesce(settings #>> '{xpm,webhook_url}', "
                              "'no-hook')) FROM sync.connections WHERE id = $1",
                              1, conn);
    assert_string_equal(s, "manual [\"email\", \"name\"] 30 Dashboard Uploads [\"Waiting on "
                           "Client\", \"Awaiting Documents\"] false no-hook");
    free(s);

    /* The merge: Xero's name and first name, our e-mail, on both sides. */
    char *local = xst_engine_sqlf(
        E, "SELECT concat_ws('|', name, first_name, email) FROM app.contacts WHERE id = $1", 1,
        lid);
    assert_string_equal(local, "Harbour Physio (Xero)|Xena|front-desk@harbour.example");
    free(local);
    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s", TENANT, xid);
    json_t *x = xst_engine_sim_json(E, "GET", path, NULL);
    json_t *c = json_array_get(json_object_get(x, "Contacts"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "Name")), "Harbour Physio (Xero)");
    assert_string_equal(json_string_value(json_object_get(c, "FirstName")), "Xena");
    assert_string_equal(json_string_value(json_object_get(c, "EmailAddress")),
                        "front-desk@harbour.example");
    json_decref(x);
    char *res = xst_engine_sqlf(E,
                                "SELECT status || ' ' || resolution || ' ' || resolved_by FROM "
                                "sync.conflicts WHERE id = $1",
                                1, fact(facts, "conflict_id"));
    assert_string_equal(res, "RESOLVED MERGED dashboard");
    free(res);

    /* Kept Xero's version: written here. Ignored: each side kept its own. */
    json_t *kx = json_object_get(facts, "kept_xero"), *ig = json_object_get(facts, "ignored");
    assert_non_null(kx);
    assert_non_null(ig);
    char *fn = xst_engine_sqlf(E, "SELECT first_name FROM app.contacts WHERE id = $1", 1,
                               json_string_value(json_object_get(kx, "lid")));
    assert_string_equal(fn, "Xero0");
    free(fn);
    fn = xst_engine_sqlf(E, "SELECT first_name FROM app.contacts WHERE id = $1", 1,
                         json_string_value(json_object_get(ig, "lid")));
    assert_string_equal(fn, "Local1");
    free(fn);
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s", TENANT,
             json_string_value(json_object_get(ig, "xid")));
    x = xst_engine_sim_json(E, "GET", path, NULL);
    c = json_array_get(json_object_get(x, "Contacts"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "FirstName")), "Xero1");
    json_decref(x);
    json_decref(facts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dashboard_in_a_browser),
    };
    return xst_result(cmocka_run_group_tests(tests, setup, teardown));
}
