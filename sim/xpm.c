/*
 * xpm.c: a tenant's Xero Practice Manager data (clients, job states, jobs), rendered in the
 * XPM API v3.1's JSON shapes, changed as a practice's staff change it, and seeded.
 *
 * XPM writes dates as "yyyy-MM-ddTHH:mm:ss" without a zone (its documentation's examples:
 * "2008-08-29T00:00:00"); a job's start, due and completed dates are days, so their time is
 * always midnight. Flags such as isArchived are the strings "Yes" and "No", as the spec types
 * them (string) and XPM writes them.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xpm.h"
#include "store.h"
#include "util.h"

/* ------------------------------------------------------------------ life */

static void client_free(sim_xpm_client *cl)
{
    if (cl != NULL) {
        sim__strs_free(&cl->s);
        free(cl);
    }
}

static void job_free(sim_xpm_job *j)
{
    if (j != NULL) {
        sim__strs_free(&j->s);
        free(j);
    }
}

/* xpm_free frees a tenant's XPM data (NULL accepted). */
static void xpm_free(sim_xpm *x)
{
    if (x == NULL) {
        return;
    }
    for (uint32_t i = 0; i < x->nclients; i++) {
        client_free(x->clients[i]);
    }
    for (uint32_t i = 0; i < x->njobs; i++) {
        job_free(x->jobs[i]);
    }
    free(x->clients);
    free(x->jobs);
    free(x);
}

/* The job states of a practice as XPM sets them up, in their workflow order. */
static const struct {
    const char *name;
    bool completed;
} default_states[] = {
    {"Planned", false}, {"In Progress", false}, {"Waiting on Client", false},
    {"Review", false},  {"Completed", true},
};

xs_err sim__xpm_attach(sim_tenant *t, uint64_t seed)
{
    sim_xpm *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return XS_ENOMEM;
    }
    x->rng.s = seed ^ sim__hash64(t->ids, strlen(t->ids), UINT64_C(0x78706d));
    for (size_t i = 0; i < sizeof(default_states) / sizeof(*default_states); i++) {
        sim_xpm_state *st = &x->states[x->nstates++];
        sim__rng_uuid(&x->rng, &st->uuid);
        snprintf(st->name, sizeof(st->name), "%s", default_states[i].name);
        st->completed = default_states[i].completed;
    }
    x->next_number = 1;
    t->xpm = x;
    t->xpm_free = xpm_free;
    return XS_OK;
}

/* ------------------------------------------------------------------ lookups */

sim_xpm_client *sim__xpm_client_find(const sim_xpm *x, const char *uuid, uint32_t *index)
{
    xs_uuid id;
    if (uuid == NULL || !xs_uuid_parse(uuid, &id)) {
        return NULL;
    }
    for (uint32_t i = 0; i < x->nclients; i++) {
        if (memcmp(&x->clients[i]->uuid, &id, sizeof(id)) == 0) {
            if (index != NULL) {
                *index = i;
            }
            return x->clients[i];
        }
    }
    return NULL;
}

sim_xpm_job *sim__xpm_job_find(const sim_xpm *x, const char *number)
{
    for (uint32_t i = 0; number != NULL && i < x->njobs; i++) {
        if (strcasecmp(x->jobs[i]->number, number) == 0) {
            return x->jobs[i];
        }
    }
    return NULL;
}

uint32_t sim__xpm_state_find(const sim_xpm *x, const char *name)
{
    for (uint32_t i = 0; name != NULL && i < x->nstates; i++) {
        if (strcasecmp(x->states[i].name, name) == 0) {
            return i;
        }
    }
    return SIM_NONE;
}

/* ------------------------------------------------------------------ rendering */

/* date_json makes XPM's "yyyy-MM-ddTHH:mm:ss" (new). */
static json_t *date_json(xs_time t)
{
    char buf[XS_TIME_ISO_MAX];
    sim__time_format_plain(t, buf);
    return json_string(buf);
}

static const char *yes_no(bool b)
{
    return b ? "Yes" : "No";
}

json_t *sim__xpm_client_json(const sim_xpm_client *cl, bool detailed)
{
    static const struct {
        const char *key;
        unsigned f;
    } fields[] = {
        {"name", XC_NAME},     {"firstName", XC_FIRST},   {"lastName", XC_LAST},
        {"email", XC_EMAIL},   {"address", XC_ADDRESS},   {"city", XC_CITY},
        {"region", XC_REGION}, {"postCode", XC_POSTCODE}, {"country", XC_COUNTRY},
        {"phone", XC_PHONE},   {"website", XC_WEBSITE},
    };
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    bool ok = json_object_set_new(o, "uuid", sim__json_uuid(&cl->uuid)) == 0;
    for (size_t i = 0; ok && i < sizeof(fields) / sizeof(*fields); i++) {
        ok = json_object_set_new(o, fields[i].key,
                                 json_string(sim__strs_get(&cl->s, fields[i].f))) == 0;
    }
    ok = ok && json_object_set_new(o, "isProspect", json_string("No")) == 0 &&
         json_object_set_new(o, "isArchived", json_string(yes_no(cl->archived))) == 0 &&
         json_object_set_new(o, "isDeleted", json_string("No")) == 0;
    if (ok && detailed) {
        ok = json_object_set_new(o, "contacts", json_array()) == 0 &&
             json_object_set_new(o, "notes", json_array()) == 0 &&
             json_object_set_new(o, "groups", json_array()) == 0 &&
             json_object_set_new(o, "relationships", json_array()) == 0;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *sim__xpm_job_json(const sim_xpm *x, const sim_xpm_job *j, bool detailed)
{
    const sim_xpm_client *cl = x->clients[j->client];
    char url[128];
    snprintf(url, sizeof(url), "https://app.practicemanager.xero.com/job/jobview.aspx?id=%s",
             j->number);
    json_t *o = json_pack(
        "{s:s,s:o,s:s,s:s,s:{s:o,s:s},s:s,s:s,s:s,s:o,s:o,s:s}", "id", j->number, "uuid",
        sim__json_uuid(&j->uuid), "name", sim__strs_get(&j->s, XJ_NAME), "description",
        sim__strs_get(&j->s, XJ_DESCRIPTION), "client", "uuid", sim__json_uuid(&cl->uuid), "name",
        sim__strs_get(&cl->s, XC_NAME), "clientOrderNumber", sim__strs_get(&j->s, XJ_ORDER),
        "state", x->states[j->state].name, "type", sim__strs_get(&j->s, XJ_TYPE), "startDate",
        date_json(j->start), "dueDate", date_json(j->due), "webUrl", url);
    if (o == NULL) {
        return NULL;
    }
    bool ok = true;
    if (j->has_budget) {
        ok = json_object_set_new(o, "budget", sim__json_money(j->budget, 2)) == 0;
    }
    if (ok && j->completed != 0) {
        ok = json_object_set_new(o, "completedDate", date_json(j->completed)) == 0;
    }
    if (ok && detailed) {
        ok = json_object_set_new(o, "assigned", json_array()) == 0 &&
             json_object_set_new(o, "tasks", json_array()) == 0 &&
             json_object_set_new(o, "milestones", json_array()) == 0 &&
             json_object_set_new(o, "notes", json_array()) == 0;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *sim__xpm_state_json(const sim_xpm_state *st)
{
    return json_pack("{s:o,s:s}", "uuid", sim__json_uuid(&st->uuid), "name", st->name);
}

/* ------------------------------------------------------------------ changes */

/* grow makes room for one more pointer in *arr (n used, *cap allocated). */
static xs_err grow(void ***arr, uint32_t n, uint32_t *cap)
{
    if (n < *cap) {
        return XS_OK;
    }
    uint32_t c = *cap ? *cap * 2 : 16;
    void **a = realloc(*arr, (size_t)c * sizeof(*a));
    if (a == NULL) {
        return XS_ENOMEM;
    }
    *arr = a;
    *cap = c;
    return XS_OK;
}

/* text_field reads an optional string field into *out (borrowed; untouched when absent).
 * False with why when it is not a string or is too long. */
static bool text_field(const json_t *item, const char *key, size_t max, const char **out, char *why)
{
    json_t *v = json_object_get(item, key);
    if (v == NULL || json_is_null(v)) {
        return true;
    }
    const char *s = xs_json_string_value(v, NULL);
    if (s == NULL) {
        snprintf(why, 256, "%s must be a string", key);
        return false;
    }
    if (sim__utf8_len(s) > max) {
        snprintf(why, 256, "%s must be at most %zu characters", key, max);
        return false;
    }
    *out = s;
    return true;
}

xs_err sim__xpm_client_put(sim_xpm *x, sim_xpm_client *cl, const json_t *item, xs_time now,
                           sim_xpm_client **out, char *why)
{
    static const struct {
        const char *key;
        unsigned f;
        size_t max;
    } fields[] = {
        {"name", XC_NAME, 255},       {"email", XC_EMAIL, 255},     {"firstName", XC_FIRST, 255},
        {"lastName", XC_LAST, 255},   {"phone", XC_PHONE, 50},      {"address", XC_ADDRESS, 500},
        {"city", XC_CITY, 255},       {"region", XC_REGION, 255},   {"postCode", XC_POSTCODE, 50},
        {"country", XC_COUNTRY, 255}, {"website", XC_WEBSITE, 255},
    };
    if (!json_is_object(item)) {
        snprintf(why, 256, "a client must be a JSON object");
        return XS_EINVAL;
    }
    const char *vals[XC_NSTR];
    for (unsigned i = 0; i < XC_NSTR; i++) {
        vals[i] = cl != NULL ? sim__strs_get(&cl->s, i) : "";
    }
    for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++) {
        if (!text_field(item, fields[i].key, fields[i].max, &vals[fields[i].f], why)) {
            return XS_EINVAL;
        }
    }
    bool archived = cl != NULL && cl->archived;
    json_t *a = json_object_get(item, "isArchived");
    if (a != NULL && !json_is_boolean(a)) {
        snprintf(why, 256, "isArchived must be true or false");
        return XS_EINVAL;
    }
    if (a != NULL) {
        archived = json_is_true(a);
    }
    char key[256];
    sim__norm_key(vals[XC_NAME], key, sizeof(key));
    if (key[0] == '\0') {
        snprintf(why, 256, "name is required");
        return XS_EINVAL;
    }
    if (cl == NULL) {
        if (grow((void ***)&x->clients, x->nclients, &x->capclients) != XS_OK ||
            (cl = calloc(1, sizeof(*cl))) == NULL) {
            return XS_ENOMEM;
        }
        if (sim__strs_build(&cl->s, vals, XC_NSTR) != XS_OK) {
            free(cl);
            return XS_ENOMEM;
        }
        sim__rng_uuid(&x->rng, &cl->uuid);
        cl->created = now;
        x->clients[x->nclients++] = cl;
    } else if (sim__strs_build(&cl->s, vals, XC_NSTR) != XS_OK) {
        return XS_ENOMEM;
    }
    cl->archived = archived;
    cl->modified = now > cl->modified ? now : cl->modified;
    *out = cl;
    return XS_OK;
}

/* day_field reads an optional ISO 8601 date into *out as its day (midnight UTC). */
static bool day_field(const json_t *item, const char *key, xs_time *out, bool keep_time, char *why)
{
    json_t *v = json_object_get(item, key);
    if (v == NULL || json_is_null(v)) {
        return true;
    }
    const char *s = xs_json_string_value(v, NULL);
    xs_time t;
    if (s == NULL || xs_time_parse_iso(s, &t) != XS_OK) {
        snprintf(why, 256, "%s must be an ISO 8601 date (yyyy-MM-dd or yyyy-MM-ddTHH:mm:ss)", key);
        return false;
    }
    *out = keep_time ? t : sim__day_start(t);
    return true;
}

/* job_number_ok tells whether a job number has a form XPM accepts: 1 to 30 letters, digits,
 * '-' or '_' (its URLs carry it unescaped). */
static bool job_number_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 30) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)n[i]) && n[i] != '-' && n[i] != '_') {
            return false;
        }
    }
    return true;
}

/* job_client reads the job's client: its uuid as text or {"uuid": ...}. */
static bool job_client(const sim_xpm *x, const json_t *item, uint32_t *index, char *why)
{
    json_t *v = json_object_get(item, "client");
    if (json_is_object(v)) {
        v = json_object_get(v, "uuid");
    }
    const char *uuid = xs_json_string_value(v, NULL);
    if (uuid == NULL) {
        snprintf(why, 256,
                 "client (the uuid of one of the organisation's XPM clients) is required");
        return false;
    }
    if (sim__xpm_client_find(x, uuid, index) == NULL) {
        snprintf(why, 256, "client names no XPM client of this organisation");
        return false;
    }
    return true;
}

xs_err sim__xpm_job_add(sim_xpm *x, const json_t *item, xs_time now, sim_xpm_job **out, char *why)
{
    if (!json_is_object(item)) {
        snprintf(why, 256, "a job must be a JSON object");
        return XS_EINVAL;
    }
    const char *vals[XJ_NSTR] = {"", "", "", ""};
    const char *id = NULL, *state = NULL;
    if (!text_field(item, "name", 255, &vals[XJ_NAME], why) ||
        !text_field(item, "description", 4000, &vals[XJ_DESCRIPTION], why) ||
        !text_field(item, "type", 255, &vals[XJ_TYPE], why) ||
        !text_field(item, "clientOrderNumber", 255, &vals[XJ_ORDER], why) ||
        !text_field(item, "id", 30, &id, why) || !text_field(item, "state", 63, &state, why)) {
        return XS_EINVAL;
    }
    char key[256];
    sim__norm_key(vals[XJ_NAME], key, sizeof(key));
    if (key[0] == '\0') {
        snprintf(why, 256, "name is required");
        return XS_EINVAL;
    }
    uint32_t client = 0, st = 0;
    if (!job_client(x, item, &client, why)) {
        return XS_EINVAL;
    }
    if (state != NULL && (st = sim__xpm_state_find(x, state)) == SIM_NONE) {
        snprintf(why, 256, "state names no job state of this practice (GET jobstate.api/list)");
        return XS_EINVAL;
    }
    if (id != NULL && (!job_number_ok(id) || sim__xpm_job_find(x, id) != NULL)) {
        snprintf(why, 256, "id must be 1 to 30 letters, digits, '-' or '_', unused by other jobs");
        return XS_EINVAL;
    }
    xs_time created = now, start = sim__day_start(now), due = 0;
    if (!day_field(item, "created", &created, true, why) ||
        !day_field(item, "startDate", &start, false, why) ||
        !day_field(item, "dueDate", &due, false, why)) {
        return XS_EINVAL;
    }
    if (due == 0) {
        due = start + 30 * SIM_DAY_MS;
    }
    if (due < start) {
        snprintf(why, 256, "dueDate must not be before startDate");
        return XS_EINVAL;
    }
    xs_money budget = {0};
    json_t *b = json_object_get(item, "budget");
    if (b != NULL && (xs_json_to_money(b, &budget) != XS_OK || budget.units < 0)) {
        snprintf(why, 256, "budget must be a number of at least 0");
        return XS_EINVAL;
    }
    sim_xpm_job *j = NULL;
    if (grow((void ***)&x->jobs, x->njobs, &x->capjobs) != XS_OK ||
        (j = calloc(1, sizeof(*j))) == NULL) {
        return XS_ENOMEM;
    }
    if (sim__strs_build(&j->s, vals, XJ_NSTR) != XS_OK) {
        free(j);
        return XS_ENOMEM;
    }
    if (id != NULL) {
        snprintf(j->number, sizeof(j->number), "%s", id);
    } else {
        /* the practice's sequence, passing numbers given explicitly */
        do {
            snprintf(j->number, sizeof(j->number), "J%06u", (unsigned)x->next_number++);
        } while (sim__xpm_job_find(x, j->number) != NULL);
    }
    sim__rng_uuid(&x->rng, &j->uuid);
    j->client = client;
    j->created = created;
    j->modified = now;
    j->start = start;
    j->due = due;
    j->has_budget = b != NULL;
    j->budget = budget;
    sim__xpm_job_set_state(j, x, st, now);
    j->modified = now;
    x->jobs[x->njobs++] = j;
    *out = j;
    return XS_OK;
}

void sim__xpm_job_set_state(sim_xpm_job *j, const sim_xpm *x, uint32_t st, xs_time now)
{
    if (x->states[st].completed) {
        if (j->completed == 0 || !x->states[j->state].completed) {
            j->completed = sim__day_start(now);
        }
    } else {
        j->completed = 0;
    }
    j->state = st;
    j->modified = now > j->modified ? now : j->modified;
}

sim_xpm_mark sim__xpm_mark_take(const sim_xpm *x)
{
    sim_xpm_mark m = {x->nclients, x->njobs, x->next_number};
    return m;
}

void sim__xpm_rollback(sim_xpm *x, sim_xpm_mark m)
{
    while (x->njobs > m.njobs) {
        job_free(x->jobs[--x->njobs]);
    }
    while (x->nclients > m.nclients) {
        client_free(x->clients[--x->nclients]);
    }
    x->next_number = m.next_number;
}

/* ------------------------------------------------------------------ seeding */

static const char *const seed_firsts[] = {"Aroha", "Ben",  "Chloe",  "Daniel", "Emma",  "Finn",
                                          "Grace", "Hemi", "Isla",   "Jack",   "Kiri",  "Liam",
                                          "Mia",   "Noah", "Olivia", "Priya",  "Ruben", "Sophie"};
static const char *const seed_lasts[] = {"Anderson", "Brown",  "Campbell", "Davies", "Edwards",
                                         "Fraser",   "Ngata",  "Harris",   "Kaur",   "Lee",
                                         "Morgan",   "Parata", "Singh",    "Taylor", "Walker"};
static const char *const seed_firms[] = {"Harbour", "Kauri",  "Southern", "Summit",  "Tasman",
                                         "Coastal", "Pohutu", "Alpine",   "Redwood", "Riverside"};
static const char *const seed_trades[] = {"Builders", "Dental", "Cafe",     "Motors",
                                          "Plumbing", "Design", "Orchards", "Physio"};
static const char *const seed_types[] = {"Annual Accounts", "GST Return", "Income Tax Return",
                                         "Payroll",         "Advisory",   "FBT Return"};

#define NSEED(a) (sizeof(a) / sizeof((a)[0]))

/* seed_client adds the i-th seeded client: a copy of contact i/2's name and e-mail address
 * for even i while there are contacts, else a name of its own. */
static xs_err seed_client(sim_tenant *t, sim_rng *r, uint32_t i, xs_time created)
{
    sim_xpm *x = t->xpm;
    char name[300], email[320];
    uint32_t k = i / 2;
    if (i % 2 == 0 && k < t->t[SIM_CONTACT].n) {
        sim_contact *ct = sim__contact_at(t, k);
        snprintf(name, sizeof(name), "%s", sim__strs_get(&ct->s, C_NAME));
        snprintf(email, sizeof(email), "%s", sim__strs_get(&ct->s, C_EMAIL));
    } else if (sim__rng_below(r, 2) == 0) {
        const char *f = seed_firsts[sim__rng_below(r, NSEED(seed_firsts))];
        const char *l = seed_lasts[sim__rng_below(r, NSEED(seed_lasts))];
        snprintf(name, sizeof(name), "%s %s (XPM %u)", f, l, (unsigned)i + 1);
        snprintf(email, sizeof(email), "%s.%s%u@example.org", f, l, (unsigned)i + 1);
    } else {
        const char *f = seed_firms[sim__rng_below(r, NSEED(seed_firms))];
        const char *tr = seed_trades[sim__rng_below(r, NSEED(seed_trades))];
        snprintf(name, sizeof(name), "%s %s Ltd (XPM %u)", f, tr, (unsigned)i + 1);
        snprintf(email, sizeof(email), "office%u@%s-%s.example.org", (unsigned)i + 1, f, tr);
    }
    for (char *p = email; *p != '\0'; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    json_t *item = json_pack("{s:s,s:s}", "name", name, "email", email);
    if (item == NULL) {
        return XS_ENOMEM;
    }
    char why[256];
    sim_xpm_client *cl = NULL;
    xs_err e = sim__xpm_client_put(x, NULL, item, created, &cl, why);
    json_decref(item);
    if (e == XS_OK) {
        cl->created = created;
    }
    return e == XS_EINVAL ? XS_ENOMEM : e; /* seeded items are always valid */
}

/* seed_job adds one job for the client at index ci, created at created. */
static xs_err seed_job(sim_xpm *x, sim_rng *r, uint32_t ci, xs_time created, xs_time now)
{
    const char *type = seed_types[sim__rng_below(r, NSEED(seed_types))];
    char name[300], cid[XS_UUID_STR], start[XS_TIME_ISO_MAX], due[XS_TIME_ISO_MAX],
        made[XS_TIME_ISO_MAX];
    xs_time_fields f;
    xs_time_split(created, &f);
    snprintf(name, sizeof(name), "%s %lld", type, (long long)f.year);
    xs_uuid_format(&x->clients[ci]->uuid, cid);
    xs_time_format_iso(created, made);
    xs_time_format_date(created, start);
    xs_time_format_date(created + (int64_t)(14 + sim__rng_below(r, 60)) * SIM_DAY_MS, due);
    /* older jobs are further along the workflow */
    uint64_t age = (uint64_t)((now - created) / SIM_DAY_MS);
    uint32_t st = (uint32_t)sim__rng_below(r, x->nstates);
    if (age > 60 && sim__rng_below(r, 2) == 0) {
        st = x->nstates - 1;
    }
    json_t *item =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "name", name, "description",
                  "Prepared from the client's records", "type", type, "client", cid, "state",
                  x->states[st].name, "startDate", start, "dueDate", due, "created", made);
    if (item == NULL) {
        return XS_ENOMEM;
    }
    char why[256];
    sim_xpm_job *j = NULL;
    xs_err e = sim__xpm_job_add(x, item, created, &j, why);
    json_decref(item);
    if (e == XS_OK && x->states[st].completed) {
        /* completed some days after it was created, not on the day it was seeded */
        xs_time done = created + (int64_t)(1 + sim__rng_below(r, 30)) * SIM_DAY_MS;
        j->completed = sim__day_start(done < now ? done : now);
    }
    return e == XS_EINVAL ? XS_ENOMEM : e;
}

xs_err sim__xpm_seed(sim_tenant *t, uint32_t n, uint64_t seed, xs_time now)
{
    sim_rng r = {seed ^ sim__hash64(t->ids, strlen(t->ids), UINT64_C(0x786a6f6273))};
    if (n > SIM_XPM_SEED_MAX) {
        n = SIM_XPM_SEED_MAX;
    }
    const int64_t span = 120 * SIM_DAY_MS;
    for (uint32_t i = 0; i < n; i++) {
        xs_time created = now - span + (int64_t)sim__rng_below(&r, (uint64_t)span / 2);
        uint32_t ci = t->xpm->nclients;
        xs_err e = seed_client(t, &r, i, created);
        uint32_t jobs = 1 + (uint32_t)sim__rng_below(&r, 3);
        for (uint32_t k = 0; e == XS_OK && k < jobs; k++) {
            xs_time jc = created + (int64_t)sim__rng_below(&r, (uint64_t)(now - created));
            e = seed_job(t->xpm, &r, ci, jc, now);
        }
        if (e != XS_OK) {
            return e;
        }
    }
    return XS_OK;
}

/* ------------------------------------------------------------------ /_sim */

/* with_times adds the simulator's created and modified times to a rendered record. */
static json_t *with_times(json_t *o, xs_time created, xs_time modified)
{
    char c[XS_TIME_ISO_MAX], m[XS_TIME_ISO_MAX];
    xs_time_format_iso(created, c);
    xs_time_format_iso(modified, m);
    if (o != NULL && (json_object_set_new(o, "created", json_string(c)) != 0 ||
                      json_object_set_new(o, "modified", json_string(m)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *sim__xpm_json(const sim_xpm *x)
{
    json_t *clients = json_array(), *states = json_array(), *jobs = json_array();
    json_t *out = json_pack("{s:o,s:o,s:o}", "clients", clients, "jobStates", states, "jobs", jobs);
    if (out == NULL) {
        return NULL;
    }
    bool ok = true;
    for (uint32_t i = 0; ok && i < x->nclients; i++) {
        const sim_xpm_client *cl = x->clients[i];
        ok = json_array_append_new(clients, with_times(sim__xpm_client_json(cl, true), cl->created,
                                                       cl->modified)) == 0;
    }
    for (uint32_t i = 0; ok && i < x->nstates; i++) {
        json_t *s = sim__xpm_state_json(&x->states[i]);
        ok = s != NULL &&
             json_object_set_new(s, "completed", json_boolean(x->states[i].completed)) == 0 &&
             json_array_append_new(states, s) == 0;
    }
    for (uint32_t i = 0; ok && i < x->njobs; i++) {
        const sim_xpm_job *j = x->jobs[i];
        ok = json_array_append_new(
                 jobs, with_times(sim__xpm_job_json(x, j, true), j->created, j->modified)) == 0;
    }
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}
