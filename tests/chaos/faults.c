/*
 * faults.c: every fault the simulator knows, in one list, and the weather that uses them.
 *
 * KINDS is the one list of fault kinds the suite injects (by rate and by script). A kind the
 * running simulator refuses in POST /_sim/config (one being added to it, say) is skipped
 * with a printed note, so the suite runs before and after the simulator learns it. Left out
 * on purpose: `revoked` (the user's grants are revoked; the connection then needs a person,
 * which no engine recovers from by itself). Besides the kinds, "429 storms": the simulator's
 * per-minute limit dropped far below the engine's budget for a phase, so real rate-limit
 * refusals (with Retry-After) pour in.
 *
 * The weather is a sequence of phases of 5 to 12 s drawn from the seed: calm (no faults),
 * rain (every kind at its rate), storm (rain and a 429 storm), script (one fault of each kind
 * on the next writes of each entity, so the write faults surely meet writes). The simulator's
 * draws are deterministic under XS_SIM_SEED.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"
#include "xs/json.h"

typedef struct kind {
    const char *name;
    const char *rate; /* probability per accounting call while it rains */
    bool applied;     /* a write met by it went through, though its reply did not */
    const char *what;
} kind;

static const kind KINDS[] = {
    {"500", "0.03", false, "500 with Xero's error body; nothing applied"},
    {"503", "0.03", false, "503 with Retry-After; nothing applied"},
    {"429", "0.03", false, "429 with Retry-After; nothing applied"},
    {"reset", "0.02", false, "a TCP reset; nothing applied"},
    {"hang", "0.006", false, "no reply for XS_SIM_HANG, then the connection closes"},
    {"truncated", "0.015", true, "the body cut short (the write applied)"},
    {"garbled", "0.015", true, "200 with corrupted bytes (the write applied)"},
    {"lost", "0.025", true, "the write applied, then a TCP reset: the reply is lost"},
    {"slow", "0.006", true, "the reply after XS_SIM_HANG (the write applied meanwhile)"},
    {"applied_5xx", "0.025", true, "the write applied, then a 504"},
    {"nil_id", "0.025", false, "nothing saved; items come back with the nil GUID"},
};
#define NKINDS  (int)(sizeof(KINDS) / sizeof(KINDS[0]))
#define NPHASES 64

typedef enum weather { CALM = 0, RAIN = 1, STORM = 2, SCRIPT = 3 } weather;

struct chaos_faults {
    xst_engine *e;
    bool ok[NKINDS];
    int64_t phase_end[NPHASES];
    weather phase[NPHASES];
    int nphases, current;
    bool raining, storming;
    int storms;
};

/* config posts a body to /_sim/config; the HTTP status. */
static long config(chaos_faults *f, json_t *body)
{
    char *text = xs_json_dump(body, 0);
    json_decref(body);
    xst_http r = xst_engine_simctl(f->e, "POST", "/_sim/config", text);
    long st = r.status;
    if (st != 200) {
        fprintf(stderr, "chaos: POST /_sim/config %s: %ld %s\n", text, st, r.body);
    }
    free(text);
    xst_http_free(&r);
    return st;
}

/* rates_body is {"faults":{"rates":{kind: rate or 0}}} for the kinds the simulator takes. */
static json_t *rates_body(chaos_faults *f, bool on)
{
    json_t *rates = json_object();
    for (int k = 0; k < NKINDS; k++) {
        if (f->ok[k]) {
            json_object_set_new(rates, KINDS[k].name, xs_json_decimal(on ? KINDS[k].rate : "0"));
        }
    }
    return json_pack("{s:{s:o}}", "faults", "rates", rates);
}

/* probe asks the simulator to take each kind at rate 0; a refusal skips the kind. */
static void probe(chaos_faults *f)
{
    for (int k = 0; k < NKINDS; k++) {
        json_t *rates = json_object();
        json_object_set_new(rates, KINDS[k].name, xs_json_decimal("0"));
        json_t *body = json_pack("{s:{s:o}}", "faults", "rates", rates);
        char *text = xs_json_dump(body, 0);
        json_decref(body);
        xst_http r = xst_engine_simctl(f->e, "POST", "/_sim/config", text);
        f->ok[k] = r.status == 200;
        if (!f->ok[k]) {
            fprintf(stderr,
                    "chaos: NOTE: this xero-sim refuses fault kind \"%s\" (%s): skipped "
                    "(%ld %s)\n",
                    KINDS[k].name, KINDS[k].what, r.status, r.body);
        }
        xst_http_free(&r);
        free(text);
    }
}

chaos_faults *chaos_faults_new(xst_engine *e, uint64_t seed, int64_t duration_ms)
{
    chaos_faults *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        xst_die("out of memory");
    }
    f->e = e;
    f->current = -1;
    probe(f);
    uint64_t rng = seed ^ UINT64_C(0x77656174686572);
    int64_t at = 0;
    while (at < duration_ms && f->nphases < NPHASES) {
        at += 5000 + chaos_below(chaos_rand(&rng), 7001);
        f->phase[f->nphases] = (weather)chaos_below(chaos_rand(&rng), 4);
        f->phase_end[f->nphases++] = at;
    }
    return f;
}

/* script_each scripts one fault of every kind on the next write of each entity's endpoint. */
static void script_each(chaos_faults *f)
{
    static const char *const paths[] = {"/api.xro/2.0/Contacts", "/api.xro/2.0/Invoices",
                                        "/api.xro/2.0/Payments"};
    json_t *script = json_array();
    for (int k = 0; k < NKINDS * 3; k++) {
        if (f->ok[k % NKINDS]) {
            json_array_append_new(script, json_pack("{s:s,s:s,s:s,s:i}", "method", "POST", "path",
                                                    paths[k / NKINDS], "fault",
                                                    KINDS[k % NKINDS].name, "times", 1));
        }
    }
    json_t *body = json_pack("{s:o}", "script", script);
    char *text = xs_json_dump(body, 0);
    json_decref(body);
    xst_http r = xst_engine_simctl(f->e, "POST", "/_sim/faults", text);
    if (r.status != 200) {
        fprintf(stderr, "chaos: POST /_sim/faults: %ld %s\n", r.status, r.body);
    }
    xst_http_free(&r);
    free(text);
}

/* storm drops (or restores) the simulator's per-minute limit below the engine's budget. */
static void storm(chaos_faults *f, bool on)
{
    config(f, json_pack("{s:{s:i}}", "limits", "minute", on ? 10 : 120));
    f->storming = on;
    f->storms += on ? 1 : 0;
}

void chaos_faults_weather(chaos_faults *f, int64_t elapsed_ms)
{
    int p = 0;
    while (p < f->nphases - 1 && elapsed_ms >= f->phase_end[p]) {
        p++;
    }
    if (p == f->current) {
        return;
    }
    f->current = p;
    weather w = f->phase[p];
    static const char *const names[] = {"calm", "rain", "storm", "script"};
    fprintf(stderr, "chaos: t=%llds weather: %s\n", (long long)(elapsed_ms / 1000), names[w]);
    bool rain = w == RAIN || w == STORM;
    if (rain != f->raining) {
        config(f, rates_body(f, rain));
        f->raining = rain;
    }
    if ((w == STORM) != f->storming) {
        storm(f, w == STORM);
    }
    if (w == SCRIPT) {
        script_each(f);
    }
}

void chaos_faults_off(chaos_faults *f)
{
    config(f, rates_body(f, false));
    f->raining = false;
    storm(f, false);
    xst_http r = xst_engine_simctl(f->e, "DELETE", "/_sim/faults", NULL);
    xst_http_free(&r);
}

void chaos_faults_summary(chaos_faults *f, json_t *summary)
{
    xst_http r = xst_engine_simctl(f->e, "GET", "/_sim/stats", NULL);
    json_t *faults = json_object_get(r.json, "faults");
    json_object_set_new(summary, "faults", faults != NULL ? json_incref(faults) : json_object());
    json_t *limited = json_object_get(json_object_get(r.json, "rate_limited"), "total");
    json_object_set_new(summary, "rate_limited", json_integer(json_integer_value(limited)));
    xst_http_free(&r);
    json_t *skipped = json_array();
    for (int k = 0; k < NKINDS; k++) {
        if (!f->ok[k]) {
            json_array_append_new(skipped, json_string(KINDS[k].name));
        }
    }
    json_object_set_new(summary, "faults_skipped", skipped);
    json_object_set_new(summary, "storms_429", json_integer(f->storms));
}

bool chaos_fault_applied(const char *name)
{
    for (int k = 0; k < NKINDS; k++) {
        if (strcmp(KINDS[k].name, name) == 0) {
            return KINDS[k].applied;
        }
    }
    return false;
}

void chaos_faults_free(chaos_faults *f)
{
    free(f);
}
