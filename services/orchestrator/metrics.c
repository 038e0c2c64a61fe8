/* metrics.c: the orchestrator's counters and the text exposition format (see metrics.h). */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/buf.h"

#define MAX_LABELS 4
#define KEY_MAX    256

/* Histogram bounds, in ms (the exposition shows seconds). */
static const int64_t STEP_BOUNDS[] = {10,   50,   100,   250,   500,   1000,
                                      2500, 5000, 10000, 30000, 120000};
static const int64_t WAIT_BOUNDS[] = {10, 50, 100, 500, 1000, 5000, 10000, 30000, 60000, 300000};
static const int64_t LAG_BOUNDS[] = {100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000};
/* in microseconds (the family's unit) */
static const int64_t CLAIM_BOUNDS[] = {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000};
#define NBOUNDS(a) (sizeof(a) / sizeof((a)[0]))

/* A family the orchestrator counts itself. */
typedef struct family_def {
    const char *name, *type, *help;
    const char *labels[MAX_LABELS + 1]; /* the labels' names, NULL-terminated */
    const int64_t *bounds;              /* a histogram's bounds (in unit), else NULL */
    size_t nbounds;
    int64_t unit; /* a histogram's observations per second: 0 for ms, 1000000 for us */
} family_def;

enum {
    F_RUNS,
    F_STEPS,
    F_STEP_SECONDS,
    F_RECORDS,
    F_BUDGET_WAIT,
    F_BUDGET_PERMITS,
    F_UNPERMITTED,
    F_WH_RECEIVED,
    F_WH_STORED,
    F_WH_PROCESSED,
    F_WH_LAG,
    F_CLAIM_SECONDS,
    F_COUNT
};

static const family_def DEFS[F_COUNT] = {
    [F_RUNS] = {"xs_runs_total",
                "counter",
                "Runs that ended, by mode, trigger and final status.",
                {"mode", "trigger", "status", NULL},
                NULL,
                0},
    [F_STEPS] = {"xs_steps_total",
                 "counter",
                 "Steps whose execution was recorded, by kind, entity and outcome (done, retry, "
                 "failed, fatal).",
                 {"kind", "entity", "outcome", NULL},
                 NULL,
                 0},
    [F_STEP_SECONDS] = {"xs_step_duration_seconds",
                        "histogram",
                        "Time from a step's claim to the record of its outcome.",
                        {"kind", "entity", NULL},
                        STEP_BOUNDS,
                        NBOUNDS(STEP_BOUNDS)},
    [F_RECORDS] = {"xs_records_total",
                   "counter",
                   "Records the steps of runs reported, by entity, direction (pull: Xero to "
                   "local, push: local to Xero) and outcome, as the runs' counts add them up.",
                   {"entity", "direction", "outcome", NULL},
                   NULL,
                   0},
    [F_BUDGET_WAIT] = {"xs_budget_wait_seconds",
                       "histogram",
                       "How long a tenant's ready step waited for permits of the rate budget, "
                       "from the first refusal to the grant.",
                       {NULL},
                       WAIT_BOUNDS,
                       NBOUNDS(WAIT_BOUNDS)},
    [F_BUDGET_PERMITS] = {"xs_budget_permits_total",
                          "counter",
                          "Permits of the rate budget that steps held, by outcome: charged (a "
                          "call to Xero was made with it) or returned (given back unused).",
                          {"outcome", NULL},
                          NULL,
                          0},
    [F_UNPERMITTED] = {"xs_steps_unpermitted_total",
                       "counter",
                       "Steps that ran holding no permit of the rate budget (they make no call to "
                       "Xero), by kind.",
                       {"kind", NULL},
                       NULL,
                       0},
    [F_WH_RECEIVED] = {"xs_webhook_events_received_total",
                       "counter",
                       "Events in verified webhook deliveries from Xero.",
                       {NULL},
                       NULL,
                       0},
    [F_WH_STORED] = {"xs_webhook_events_stored_total",
                     "counter",
                     "Of the events received, those new to the inbox (not a delivery again).",
                     {NULL},
                     NULL,
                     0},
    [F_WH_PROCESSED] = {"xs_webhook_events_processed_total",
                        "counter",
                        "Stored webhook events the inbox finished with, by result (run: their "
                        "records went into a run; known: that version is here already; "
                        "ignored).",
                        {"result", NULL},
                        NULL,
                        0},
    [F_WH_LAG] = {"xs_webhook_lag_seconds",
                  "histogram",
                  "Time from a webhook event's receipt to the inbox finishing with it.",
                  {NULL},
                  LAG_BOUNDS,
                  NBOUNDS(LAG_BOUNDS)},
    [F_CLAIM_SECONDS] = {"xs_claim_duration_seconds",
                         "histogram",
                         "Time an executor spent choosing and claiming its next step under the "
                         "dispatch lock, by result (claimed: it got one; none: nothing could run).",
                         {"result", NULL},
                         CLAIM_BOUNDS,
                         NBOUNDS(CLAIM_BOUNDS),
                         1000000},
};

/* One series: a family's label values and its value, or a histogram's buckets. */
typedef struct series {
    struct series *next;
    char key[KEY_MAX]; /* the values joined by \x1f */
    char *values[MAX_LABELS];
    int64_t value;
    int64_t *buckets; /* per bound, not cumulative (histograms) */
    int64_t count, sum_ms;
} series;

struct orch_metrics {
    pthread_mutex_t mu;
    series *head[F_COUNT];
    size_t nseries[F_COUNT];
};

/* Past this many series a family adds no more (each value of a label is a bounded name, so
 * this is a guard, never reached in use). */
#define SERIES_MAX 2048

xs_err orch_metrics_create(orch_metrics **out)
{
    orch_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return XS_ENOMEM;
    }
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return XS_OK;
}

static void series_free(series *s)
{
    for (int i = 0; i < MAX_LABELS; i++) {
        free(s->values[i]);
    }
    free(s->buckets);
    free(s);
}

void orch_metrics_destroy(orch_metrics *m)
{
    if (m == NULL) {
        return;
    }
    for (int f = 0; f < F_COUNT; f++) {
        series *s = m->head[f];
        while (s != NULL) {
            series *next = s->next;
            series_free(s);
            s = next;
        }
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* find returns family f's series of values (as many as its labels), made when new; NULL when
 * out of memory or past SERIES_MAX. m->mu held. */
static series *find(orch_metrics *m, int f, const char *const *values)
{
    char key[KEY_MAX];
    size_t len = 0;
    int n = 0;
    key[0] = '\0';
    for (; DEFS[f].labels[n] != NULL; n++) {
        if (len < sizeof(key)) {
            len += (size_t)snprintf(key + len, sizeof(key) - len, "%s\x1f",
                                    values[n] != NULL ? values[n] : "");
        }
    }
    series **pp = &m->head[f];
    for (; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            return *pp;
        }
    }
    if (m->nseries[f] >= SERIES_MAX) {
        return NULL;
    }
    series *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    snprintf(s->key, sizeof(s->key), "%s", key);
    bool ok = true;
    for (int i = 0; i < n; i++) {
        s->values[i] = strdup(values[i] != NULL ? values[i] : "");
        ok = ok && s->values[i] != NULL;
    }
    if (DEFS[f].bounds != NULL) {
        s->buckets = calloc(DEFS[f].nbounds, sizeof(int64_t));
        ok = ok && s->buckets != NULL;
    }
    if (!ok) {
        series_free(s);
        return NULL;
    }
    *pp = s; /* appended: the page lists series in the order first seen */
    m->nseries[f]++;
    return s;
}

/* add adds n to a counter of family f. */
static void add(orch_metrics *m, int f, const char *const *values, int64_t n)
{
    if (m == NULL) {
        return;
    }
    pthread_mutex_lock(&m->mu);
    series *s = find(m, f, values);
    if (s != NULL) {
        s->value += n;
    }
    pthread_mutex_unlock(&m->mu);
}

/* observe counts one observation of ms (the family's unit) in histogram f. */
static void observe(orch_metrics *m, int f, const char *const *values, int64_t ms)
{
    if (m == NULL) {
        return;
    }
    ms = ms > 0 ? ms : 0;
    pthread_mutex_lock(&m->mu);
    series *s = find(m, f, values);
    if (s != NULL) {
        for (size_t i = 0; i < DEFS[f].nbounds; i++) {
            if (ms <= DEFS[f].bounds[i]) {
                s->buckets[i]++;
                break;
            }
        }
        s->count++;
        s->sum_ms += ms;
    }
    pthread_mutex_unlock(&m->mu);
}

void orch_metrics_run_ended(orch_metrics *m, const char *mode, const char *trigger,
                            const char *status)
{
    const char *v[] = {mode, trigger, status};
    add(m, F_RUNS, v, 1);
}

void orch_metrics_step(orch_metrics *m, const char *kind, const char *entity, const char *outcome,
                       int64_t duration_ms)
{
    const char *v[] = {kind, entity, outcome};
    add(m, F_STEPS, v, 1);
    observe(m, F_STEP_SECONDS, v, duration_ms);
}

void orch_metrics_records(orch_metrics *m, const char *entity, const char *direction,
                          const json_t *counts)
{
    static const char *const outcomes[] = {"created", "updated", "unchanged", "failed",
                                           "conflicts"};
    for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
        json_t *n = json_object_get(counts, outcomes[i]);
        if (json_is_integer(n) && json_integer_value(n) > 0) {
            const char *v[] = {entity, direction, outcomes[i]};
            add(m, F_RECORDS, v, json_integer_value(n));
        }
    }
}

void orch_metrics_budget_wait(orch_metrics *m, int64_t waited_ms)
{
    observe(m, F_BUDGET_WAIT, NULL, waited_ms);
}

void orch_metrics_claim(orch_metrics *m, bool claimed, int64_t us)
{
    const char *v[] = {claimed ? "claimed" : "none"};
    observe(m, F_CLAIM_SECONDS, v, us);
}

void orch_metrics_permits(orch_metrics *m, int64_t granted, int64_t charged)
{
    const char *c[] = {"charged"}, *r[] = {"returned"};
    charged = charged < 0 ? 0 : charged > granted ? granted : charged;
    add(m, F_BUDGET_PERMITS, c, charged);
    add(m, F_BUDGET_PERMITS, r, granted - charged);
}

void orch_metrics_unpermitted(orch_metrics *m, const char *kind)
{
    const char *v[] = {kind};
    add(m, F_UNPERMITTED, v, 1);
}

void orch_metrics_webhooks_received(orch_metrics *m, int64_t events, int64_t stored)
{
    add(m, F_WH_RECEIVED, NULL, events);
    add(m, F_WH_STORED, NULL, stored);
}

void orch_metrics_webhook_processed(orch_metrics *m, const char *result, int64_t lag_ms)
{
    const char *v[] = {result};
    add(m, F_WH_PROCESSED, v, 1);
    observe(m, F_WH_LAG, NULL, lag_ms);
}

/* --- the text exposition format --- */

struct orch_metrics_page {
    xs_buf text; /* a failed append leaves it failed: orch_metrics_page_take says so */
};

orch_metrics_page *orch_metrics_page_new(void)
{
    orch_metrics_page *p = calloc(1, sizeof(orch_metrics_page));
    if (p != NULL) {
        xs_buf_init(&p->text, 4096);
    }
    return p;
}

/* put appends text of n bytes. */
static void put(orch_metrics_page *p, const char *text, size_t n)
{
    xs_buf_append(&p->text, text, n);
}

static void puts_(orch_metrics_page *p, const char *text)
{
    xs_buf_puts(&p->text, text);
}

/* put_escaped appends s with the format's escapes: backslash, and (with quote, in a label
 * value) the double quote; a line break always. */
static void put_escaped(orch_metrics_page *p, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\') {
            puts_(p, "\\\\");
        } else if (*s == '\n') {
            puts_(p, "\\n");
        } else if (*s == '"' && quote) {
            puts_(p, "\\\"");
        } else {
            put(p, s, 1);
        }
    }
}

void orch_metrics_page_family(orch_metrics_page *p, const char *name, const char *type,
                              const char *help)
{
    xs_buf_printf(&p->text, "# HELP %s ", name);
    put_escaped(p, help, false);
    xs_buf_printf(&p->text, "\n# TYPE %s %s\n", name, type);
}

void orch_metrics_page_sample(orch_metrics_page *p, const char *name, const char *const *labels,
                              double value)
{
    puts_(p, name);
    for (size_t i = 0; labels != NULL && labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
        xs_buf_printf(&p->text, "%s%s=\"", i == 0 ? "{" : ",", labels[i]);
        put_escaped(p, labels[i + 1], true);
        puts_(p, "\"");
    }
    if (labels != NULL && labels[0] != NULL) {
        puts_(p, "}");
    }
    if (value == floor(value) && fabs(value) < 9007199254740992.0) {
        xs_buf_printf(&p->text, " %lld\n", (long long)value);
    } else {
        xs_buf_printf(&p->text, " %.15g\n", value);
    }
}

/* sample_of writes a sample of series s of family f with one more label (extra, extra_value;
 * NULL: none). */
static void sample_of(orch_metrics_page *p, int f, const series *s, const char *suffix,
                      const char *extra, const char *extra_value, double value)
{
    const char *labels[2 * MAX_LABELS + 3];
    size_t n = 0;
    for (int i = 0; DEFS[f].labels[i] != NULL; i++) {
        labels[n++] = DEFS[f].labels[i];
        labels[n++] = s->values[i];
    }
    if (extra != NULL) {
        labels[n++] = extra;
        labels[n++] = extra_value;
    }
    labels[n] = NULL;
    char name[128];
    snprintf(name, sizeof(name), "%s%s", DEFS[f].name, suffix);
    orch_metrics_page_sample(p, name, labels, value);
}

/* write_histogram writes series s of histogram f: cumulative buckets, +Inf, sum and count. */
static void write_histogram(orch_metrics_page *p, int f, const series *s)
{
    int64_t cum = 0;
    double per_s = DEFS[f].unit > 0 ? (double)DEFS[f].unit : 1000.0;
    for (size_t i = 0; i < DEFS[f].nbounds; i++) {
        cum += s->buckets[i];
        char le[32];
        snprintf(le, sizeof(le), "%g", (double)DEFS[f].bounds[i] / per_s);
        sample_of(p, f, s, "_bucket", "le", le, (double)cum);
    }
    sample_of(p, f, s, "_bucket", "le", "+Inf", (double)s->count);
    sample_of(p, f, s, "_sum", NULL, NULL, (double)s->sum_ms / per_s);
    sample_of(p, f, s, "_count", NULL, NULL, (double)s->count);
}

void orch_metrics_page_write(orch_metrics *m, orch_metrics_page *p)
{
    pthread_mutex_lock(&m->mu);
    for (int f = 0; f < F_COUNT; f++) {
        orch_metrics_page_family(p, DEFS[f].name, DEFS[f].type, DEFS[f].help);
        if (m->head[f] == NULL && DEFS[f].labels[0] == NULL) {
            /* A family without labels is there from the start, at 0. */
            const char *none[] = {NULL};
            series zero = {.values = {NULL}, .buckets = NULL};
            int64_t buckets[16] = {0};
            zero.buckets = buckets;
            if (DEFS[f].bounds != NULL) {
                write_histogram(p, f, &zero);
            } else {
                orch_metrics_page_sample(p, DEFS[f].name, none, 0);
            }
            continue;
        }
        for (const series *s = m->head[f]; s != NULL; s = s->next) {
            if (DEFS[f].bounds != NULL) {
                write_histogram(p, f, s);
            } else {
                sample_of(p, f, s, "", NULL, NULL, (double)s->value);
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
}

char *orch_metrics_page_take(orch_metrics_page *p, size_t *len)
{
    char *text = xs_buf_take(&p->text, len);
    free(p);
    return text;
}
