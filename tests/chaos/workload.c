/*
 * workload.c: the set-up and the hostile workload.
 *
 * Set-up: Xero seeded with hundreds of contacts, invoices (with lines) and payments; the
 * chart read (a bank account for payments, revenue and expense codes for lines); the
 * organisation connected through OAuth, whose initial import the scheduler runs; then the hot
 * sets chosen from the seeded records, by the seed: contacts archived and restored (with no
 * invoice), contacts edited and given new invoices, invoices that take payments, unpaid ones
 * that may be voided, drafts that change status once, paid ones edited.
 *
 * The workload: one tick every opt.tick_ms for the duration, each drawing five numbers from
 * the seeded PRNG whatever happens (so the same seed makes the same decisions; what a
 * decision finds depends on timing) and making one write, on either side, or starting a run
 * of some mode, while the killer thread kills and the fault weather changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chaos.h"
#include "xs/json.h"

json_t *chaos_sql_json(chaos_world *w, const char *sql, int n, const char *const *params)
{
    char *text = xst_engine_sql(w->e, sql, n, params);
    json_t *j = text != NULL ? xs_json_parse(text, strlen(text), NULL) : NULL;
    if (text != NULL && j == NULL) {
        xst_die("SQL gave no JSON: %.200s", text);
    }
    free(text);
    return j;
}

/* count_run adds one to w->runs[what][mode]. */
static void count_run(chaos_world *w, const char *what, const char *mode)
{
    json_t *o = json_object_get(w->runs, what);
    json_t *v = json_object_get(o, mode);
    json_object_set_new(o, mode, json_integer(v != NULL ? json_integer_value(v) + 1 : 1));
}

char *chaos_run_start(chaos_world *w, const char *mode, const char *entity_body)
{
    char path[160];
    snprintf(path, sizeof(path), "/v1/connections/%s/sync%s", w->conn,
             entity_body != NULL ? "/entity" : "");
    char body[64];
    snprintf(body, sizeof(body), "{\"mode\":\"%s\"}", mode);
    xst_http r = xst_engine_api(w->e, "POST", path, entity_body != NULL ? entity_body : body);
    char *id = NULL;
    if (r.status == 202) {
        id = strdup(xs_json_str_or(r.json, "id", ""));
        count_run(w, "started", mode);
    } else {
        count_run(w, "refused", mode);
    }
    xst_http_free(&r);
    return id;
}

/* ------------------------------------------------------------------ set-up */

/* read_chart finds a bank account and the revenue and expense codes lines may use. */
static void read_chart(chaos_world *w)
{
    char path[128];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Accounts", w->tenant);
    json_t *j = xst_engine_sim_json(w->e, "GET", path, NULL);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(j, "Accounts"), i, a)
    {
        const char *type = xs_json_str_or(a, "Type", ""), *code = xs_json_str_or(a, "Code", "");
        if (code[0] == '\0' || strcmp(xs_json_str_or(a, "Status", ""), "ACTIVE") != 0) {
            continue;
        }
        if (strcmp(type, "BANK") == 0 && w->bank_code[0] == '\0') {
            snprintf(w->bank_code, sizeof(w->bank_code), "%s", code);
        } else if (strcmp(type, "REVENUE") == 0 && w->nsales < 4) {
            snprintf(w->sales_code[w->nsales++], 16, "%s", code);
        } else if (strcmp(type, "EXPENSE") == 0 && w->npurchase < 4) {
            snprintf(w->purchase_code[w->npurchase++], 16, "%s", code);
        }
    }
    json_decref(j);
    if (w->bank_code[0] == '\0' || w->nsales == 0 || w->npurchase == 0) {
        xst_die("the simulator's chart has no bank, revenue or expense account");
    }
}

/* wait_import waits for the scheduler's initial import and checks it succeeded (running a
 * full run itself otherwise). */
static void wait_import(chaos_world *w)
{
    const char *p[] = {w->conn};
    int64_t end = xst_now_ms() + 60000;
    while (xst_engine_sql_long(w->e, "SELECT count(*) FROM sync.runs WHERE connection_id = $1", 1,
                               p) == 0) {
        if (xst_now_ms() > end) {
            xst_die("no initial import started within 60 s of connecting");
        }
        usleep(100000);
    }
    if (!xst_engine_settle(w->e, 600000)) {
        xst_die("the initial import did not end within 600 s");
    }
    char *st = xst_engine_sql(w->e,
                              "SELECT string_agg(status, ',') FROM sync.runs WHERE "
                              "connection_id = $1 AND status <> 'succeeded'",
                              1, p);
    if (st != NULL) {
        fprintf(stderr, "chaos: the initial import ended %s; running a full run\n", st);
        json_decref(xst_engine_run(w->e, w->conn, "{\"mode\":\"full\"}", 600000));
    }
    free(st);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* shuffled lists the keys of obj in an order drawn from the seed (new array of borrowed
 * strings; *n their count). */
static const char **shuffled(chaos_world *w, json_t *obj, int *n)
{
    const char **ids = malloc(sizeof(char *) * (json_object_size(obj) + 1));
    int k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        ids[k++] = key;
    }
    qsort(ids, (size_t)k, sizeof(char *), cmp_str);
    for (int i = k - 1; i > 0; i--) {
        int j = chaos_below(chaos_rand(&w->rng), i + 1);
        const char *t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
    }
    *n = k;
    return ids;
}

/* seeded adds a seeded record (linked on both sides) with roles. */
static int seeded(chaos_world *w, chaos_sides *s, chaos_ent ent, const char *xid, unsigned roles)
{
    chaos_rec c;
    memset(&c, 0, sizeof(c));
    c.ent = ent;
    c.seeded = true;
    c.origin = SIDE_XERO;
    c.roles = roles;
    c.invoice = -1;
    c.due = xs_money_zero();
    snprintf(c.xero_id, sizeof(c.xero_id), "%s", xid);
    snprintf(c.local_id, sizeof(c.local_id), "%s", xs_json_str_or(s->maps[ent], xid, ""));
    return chaos_rec_add(&w->L, &c);
}

/* hot_contacts: 8 to archive and restore (without invoices), 12 to edit and bill, 8 to bill. */
static void hot_contacts(chaos_world *w, chaos_sides *s)
{
    json_t *billed = json_object();
    const char *k;
    json_t *x;
    json_object_foreach(s->xero[CE_INVOICE], k, x)
    {
        json_object_set_new(billed, xs_json_str_or(json_object_get(x, "Contact"), "ContactID", ""),
                            json_true());
    }
    int n, archivable = 0, hot = 0, payer = 0;
    const char **ids = shuffled(w, s->xero[CE_CONTACT], &n);
    for (int i = 0; i < n; i++) {
        json_t *c = json_object_get(s->xero[CE_CONTACT], ids[i]);
        if (strcmp(xs_json_str_or(c, "ContactStatus", ""), "ACTIVE") != 0 ||
            json_object_get(s->maps[CE_CONTACT], ids[i]) == NULL) {
            continue;
        }
        if (json_object_get(billed, ids[i]) == NULL && archivable < 8) {
            seeded(w, s, CE_CONTACT, ids[i], ROLE_HOT | ROLE_ARCHIVABLE);
            archivable++;
        } else if (hot < 12) {
            seeded(w, s, CE_CONTACT, ids[i], ROLE_HOT | ROLE_PAYER);
            hot++;
        } else if (payer < 8) {
            seeded(w, s, CE_CONTACT, ids[i], ROLE_PAYER);
            payer++;
        }
    }
    free(ids);
    json_decref(billed);
}

/* invoice_role is the role a seeded invoice may take, given how many of each are taken. */
static unsigned invoice_role(const json_t *x, const int taken[4])
{
    const char *st = xs_json_str_or(x, "Status", "");
    xs_money due = xs_money_zero(), paid = xs_money_zero();
    xs_json_get_money(x, "AmountDue", &due);
    xs_json_get_money(x, "AmountPaid", &paid);
    bool nzd = strcmp(xs_json_str_or(x, "CurrencyCode", "NZD"), "NZD") == 0;
    bool unpaid = xs_money_is_zero(paid) && json_array_size(json_object_get(x, "Payments")) == 0;
    if (strcmp(st, "AUTHORISED") == 0 && nzd && !xs_money_is_zero(due) && taken[0] < 10) {
        return ROLE_HOT | ROLE_PAYABLE;
    }
    if (strcmp(st, "AUTHORISED") == 0 && unpaid && taken[1] < 6) {
        return ROLE_HOT | ROLE_VOIDABLE;
    }
    if (strcmp(st, "DRAFT") == 0 && json_array_size(json_object_get(x, "LineItems")) > 0 &&
        taken[2] < 6) {
        return ROLE_HOT | ROLE_DRAFT;
    }
    if (strcmp(st, "PAID") == 0 && taken[3] < 4) {
        return ROLE_HOT;
    }
    return 0;
}

/* hot_invoices: 10 that take payments, 6 to void, 6 drafts, 4 paid, all of active contacts. */
static void hot_invoices(chaos_world *w, chaos_sides *s)
{
    int n, taken[4] = {0, 0, 0, 0};
    const char **ids = shuffled(w, s->xero[CE_INVOICE], &n);
    for (int i = 0; i < n; i++) {
        json_t *x = json_object_get(s->xero[CE_INVOICE], ids[i]);
        const char *cx = xs_json_str_or(json_object_get(x, "Contact"), "ContactID", "");
        json_t *c = json_object_get(s->xero[CE_CONTACT], cx);
        unsigned role = invoice_role(x, taken);
        if (role == 0 || json_object_get(s->maps[CE_INVOICE], ids[i]) == NULL ||
            strcmp(xs_json_str_or(c, "ContactStatus", ""), "ACTIVE") != 0) {
            continue;
        }
        int rec = seeded(w, s, CE_INVOICE, ids[i], role);
        snprintf(w->L.recs[rec].type, 8, "%s", xs_json_str_or(x, "Type", ""));
        if (role & ROLE_PAYABLE) {
            xs_json_get_money(x, "AmountDue", &w->L.recs[rec].due);
        }
        taken[(role & ROLE_PAYABLE)    ? 0
              : (role & ROLE_VOIDABLE) ? 1
              : (role & ROLE_DRAFT)    ? 2
                                       : 3]++;
    }
    free(ids);
}

/* rec_of is the index of the record of ent with Xero id xid, or -1. */
static int rec_of(const chaos_world *w, chaos_ent ent, const char *xid)
{
    for (int i = 0; i < w->L.nrecs; i++) {
        if (w->L.recs[i].ent == ent && strcmp(w->L.recs[i].xero_id, xid) == 0) {
            return i;
        }
    }
    return -1;
}

/* hot_payments: 8 seeded payments that may be deleted, half of them of hot invoices. */
static void hot_payments(chaos_world *w, chaos_sides *s)
{
    int n, of_hot = 0, others = 0;
    const char **ids = shuffled(w, s->xero[CE_PAYMENT], &n);
    for (int i = 0; i < n && of_hot + others < 8; i++) {
        json_t *x = json_object_get(s->xero[CE_PAYMENT], ids[i]);
        int inv =
            rec_of(w, CE_INVOICE, xs_json_str_or(json_object_get(x, "Invoice"), "InvoiceID", ""));
        if (strcmp(xs_json_str_or(x, "Status", ""), "AUTHORISED") != 0 ||
            json_object_get(s->maps[CE_PAYMENT], ids[i]) == NULL ||
            (inv >= 0 ? of_hot >= 4 : others >= 4)) {
            continue;
        }
        w->L.recs[seeded(w, s, CE_PAYMENT, ids[i], 0)].invoice = inv;
        inv >= 0 ? of_hot++ : others++;
    }
    free(ids);
}

void chaos_setup(chaos_world *w)
{
    xst_http t = xst_engine_simctl(w->e, "GET", "/_sim/tenants", NULL);
    snprintf(w->tenant, sizeof(w->tenant), "%s",
             xs_json_str_or(json_array_get(t.json, 0), "tenantId", ""));
    xst_http_free(&t);
    char path[128], body[160];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", w->tenant);
    snprintf(body, sizeof(body), "{\"contacts\":%d,\"invoices\":%d,\"payments\":%d,\"seed\":%llu}",
             w->opt.contacts, w->opt.invoices, w->opt.payments, (unsigned long long)w->opt.seed);
    json_decref(xst_engine_sim_json(w->e, "POST", path, body));
    read_chart(w);
    char tenant[40];
    w->org = xst_engine_connected(w->e, "Chaos Ltd", w->conn, tenant);
    wait_import(w);
    chaos_sides s;
    chaos_sides_read(w, &s);
    hot_contacts(w, &s);
    hot_invoices(w, &s);
    hot_payments(w, &s);
    chaos_sides_free(&s);
    fprintf(stderr, "chaos: imported; %d hot and pool records chosen\n", w->L.nrecs);
}

/* ------------------------------------------------------------------ the ticks */

/* run_some starts a run: full, incremental, push, or one record by its id on either side. */
static bool run_some(chaos_world *w, const uint64_t r[4])
{
    static const char *const modes[] = {"full", "incremental", "incremental", "push",
                                        "push", "entity",      "entity"};
    if (!chaos_fleet_orch_up(w->fleet)) {
        return false;
    }
    const char *mode = modes[chaos_below(r[0], 7)];
    if (strcmp(mode, "entity") != 0) {
        free(chaos_run_start(w, mode, NULL));
        return true;
    }
    chaos_ent ent = (chaos_ent)chaos_below(r[1], CE_N);
    chaos_side side = (r[2] & 1) ? SIDE_XERO : SIDE_LOCAL;
    int rec = chaos_pick(w, ent, 0, side, r[3]);
    if (rec < 0) {
        return false;
    }
    char body[200];
    snprintf(body, sizeof(body), "{\"entity\":\"%s\",\"%s\":\"%s\"}", chaos_ent_name(ent),
             side == SIDE_XERO ? "xero_id" : "local_id",
             side == SIDE_XERO ? w->L.recs[rec].xero_id : w->L.recs[rec].local_id);
    free(chaos_run_start(w, "entity", body));
    return true;
}

typedef struct action {
    int weight;
    char op; /* c(reate), e(dit), s(tatus), r(un) */
    chaos_side side;
    chaos_ent ent;
} action;

static const action ACTIONS[] = {
    {5, 'c', SIDE_LOCAL, CE_CONTACT},  {5, 'c', SIDE_LOCAL, CE_INVOICE},
    {4, 'c', SIDE_LOCAL, CE_PAYMENT},  {11, 'e', SIDE_LOCAL, CE_CONTACT},
    {11, 'e', SIDE_LOCAL, CE_INVOICE}, {3, 's', SIDE_LOCAL, CE_CONTACT},
    {3, 's', SIDE_LOCAL, CE_INVOICE},  {2, 's', SIDE_LOCAL, CE_PAYMENT},
    {4, 'c', SIDE_XERO, CE_CONTACT},   {4, 'c', SIDE_XERO, CE_INVOICE},
    {4, 'c', SIDE_XERO, CE_PAYMENT},   {10, 'e', SIDE_XERO, CE_CONTACT},
    {10, 'e', SIDE_XERO, CE_INVOICE},  {3, 's', SIDE_XERO, CE_CONTACT},
    {3, 's', SIDE_XERO, CE_INVOICE},   {2, 's', SIDE_XERO, CE_PAYMENT},
    {6, 'r', SIDE_LOCAL, CE_CONTACT},
};
#define NACTIONS (int)(sizeof(ACTIONS) / sizeof(ACTIONS[0]))

/* tick makes one decision from its five draws. */
static void tick(chaos_world *w, const uint64_t d[5])
{
    int total = 0;
    for (int i = 0; i < NACTIONS; i++) {
        total += ACTIONS[i].weight;
    }
    int at = chaos_below(d[0], total), i = 0;
    while (at >= ACTIONS[i].weight) {
        at -= ACTIONS[i++].weight;
    }
    const action *a = &ACTIONS[i];
    const uint64_t *r = d + 1;
    bool local = a->side == SIDE_LOCAL;
    bool (*const fn[3][2])(chaos_world *, chaos_ent,
                           const uint64_t[4]) = {{chaos_local_create, chaos_xero_create},
                                                 {chaos_local_edit, chaos_xero_edit},
                                                 {chaos_local_status, chaos_xero_status}};
    const char *op = strchr("ces", a->op);
    if (op != NULL && a->op != '\0') {
        fn[op - "ces"][local ? 0 : 1](w, a->ent, r);
    } else {
        run_some(w, r);
    }
}

void chaos_workload(chaos_world *w)
{
    int64_t duration = (int64_t)w->opt.duration_s * 1000;
    int ticks = (int)(duration / w->opt.tick_ms);
    int64_t t0 = xst_now_ms(), report = 10000;
    chaos_fleet_unleash(w->fleet, w->opt.kills, duration);
    for (int i = 0; i < ticks; i++) {
        int64_t due = t0 + (int64_t)i * w->opt.tick_ms;
        while (xst_now_ms() < due) {
            usleep((useconds_t)((due - xst_now_ms()) * 1000));
        }
        int64_t elapsed = xst_now_ms() - t0;
        if (elapsed > 2 * duration) {
            fprintf(stderr, "chaos: the workload ran late: stopped after %d of %d ticks\n", i,
                    ticks);
            break;
        }
        chaos_faults_weather(w->faults, elapsed);
        uint64_t d[5];
        for (int k = 0; k < 5; k++) {
            d[k] = chaos_rand(&w->rng);
        }
        tick(w, d);
        if (elapsed >= report) {
            fprintf(stderr, "chaos: t=%llds %d writes, %d records\n", (long long)(elapsed / 1000),
                    w->L.nwrites, w->L.nrecs);
            report += 10000;
        }
    }
    /* the killer's last kills may still be due: let it finish its plan */
    while (xst_now_ms() < t0 + duration) {
        usleep(100000);
    }
    chaos_fleet_leash(w->fleet);
}
