/*
 * writes.c: the workload's writes, each recorded in the ledger with the time its side
 * stamped it. Locally as a host application writes: through the REST API or straight into
 * app.* by SQL (each write draws which); in Xero as a Xero user does: through the simulator's
 * control API, whose reply carries the record's new UpdatedDateUTC.
 *
 * Only writes Xero and the engine accept are made, so a record that does not reach both
 * sides is the engine's doing: names, numbers and references are unique markers; invoices
 * are made only for contacts never archived; payments go only to invoices never voided, for
 * no more than the workload's own account of what is still due (which a deletion never
 * gives back); an invoice changes status once, a payment is deleted once, and a record
 * voided or deleted is never written again. A REST call whose reply is lost (the
 * orchestrator killed under it) is recorded as uncertain: it may or may not have happened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"
#include "xs/json.h"

/* ------------------------------------------------------------------ helpers */

/* A row's updated_at in epoch milliseconds, as RETURNING gives it. */
#define XS_MS_OF_UPDATED "(extract(epoch FROM updated_at) * 1000)::bigint"

static const char *const KIND[CE_N] = {"Contacts", "Invoices", "Payments"};
static const char *const REST[CE_N] = {"/v1/contacts", "/v1/invoices", "/v1/payments"};
static const char *const TABLE_ID_SQL[CE_N] = {
    "SELECT id FROM app.contacts WHERE organisation_id = $1 AND name = $2 || ' Chaos Ltd'",
    "SELECT id FROM app.invoices WHERE organisation_id = $1 AND invoice_number = $2",
    "SELECT id FROM app.payments WHERE organisation_id = $1 AND reference = $2"};

/* today writes the date days from now (UTC) as YYYY-MM-DD. */
static void date_in(int days, char out[16])
{
    char buf[32];
    xs_time_format_date(xs_clock_now() + (int64_t)days * 86400000, buf);
    snprintf(out, 16, "%.10s", buf);
}

/* use_rest decides REST or SQL for a local write: the draw says, but only REST while the
 * orchestrator runs. */
static bool use_rest(chaos_world *w, uint64_t r)
{
    return (r & 1) == 0 && chaos_fleet_orch_up(w->fleet);
}

/* lost_reply tells whether a REST status leaves it open whether the write happened. */
static bool lost_reply(long status)
{
    return status == 0 || status >= 500;
}

/* rest_call sends body to the orchestrator and returns the reply; a refusal (4xx) is the
 * suite's or the engine's bug and is printed. */
static xst_http rest_call(chaos_world *w, const char *method, const char *path, json_t *body)
{
    char *text = xs_json_dump(body, 0);
    json_decref(body);
    xst_http r = xst_engine_api(w->e, method, path, text);
    if (r.status >= 400 && r.status < 500) {
        fprintf(stderr, "chaos: REST %s %s %s refused: %ld %s\n", method, path, text, r.status,
                r.body);
    }
    free(text);
    return r;
}

/* sim_write sends body to the simulator's control API; the record it answers with (new), its
 * UpdatedDateUTC in at; NULL when Xero refused (printed). */
static json_t *sim_write(chaos_world *w, chaos_ent ent, const char *method, const char *suffix,
                         json_t *body, int64_t *at)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/%s%s", w->tenant, KIND[ent], suffix);
    char *text = body != NULL ? xs_json_dump(body, 0) : NULL;
    json_decref(body);
    xst_http r = xst_engine_simctl(w->e, method, path, text);
    json_t *rec = json_incref(json_array_get(json_object_get(r.json, KIND[ent]), 0));
    xs_time t = 0;
    if (r.status != 200 || rec == NULL ||
        xs_time_parse_xero(xs_json_str_or(rec, "UpdatedDateUTC", ""), &t) != XS_OK) {
        fprintf(stderr, "chaos: Xero refused %s %s %s: %ld %.600s\n", method, path,
                text != NULL ? text : "", r.status, r.body);
        json_decref(rec);
        rec = NULL;
    }
    *at = t;
    free(text);
    xst_http_free(&r);
    return rec;
}

/* sql_ms runs an UPDATE ... RETURNING the row's updated_at in epoch ms; -1 when no row. */
static int64_t sql_ms(chaos_world *w, const char *sql, const char *id, const char *value)
{
    const char *p[] = {id, value};
    return xst_engine_sql_long(w->e, sql, 2, p);
}

int chaos_pick(chaos_world *w, chaos_ent ent, unsigned roles, chaos_side side, uint64_t r)
{
    chaos_ledger *L = &w->L;
    int64_t now = xs_clock_now();
    int *cand = malloc(sizeof(int) * (size_t)(L->nrecs + 1));
    int n = 0;
    bool once = (roles & (ROLE_DRAFT | ROLE_VOIDABLE)) != 0 || ent == CE_PAYMENT;
    for (int i = 0; i < L->nrecs; i++) {
        const chaos_rec *c = &L->recs[i];
        if (c->ent == ent && (c->roles & roles) == roles && !c->final &&
            !(once && c->status_written) && now - c->last_ms >= 100 &&
            !((roles & ROLE_PAYABLE) && xs_money_cmp(c->due, xs_money_zero()) <= 0)) {
            cand[n++] = i;
        }
    }
    int found = -1;
    for (int k = 0; k < n && found < 0; k++) {
        int i = cand[(chaos_below(r, n) + k) % n];
        if (chaos_resolve(w, i, side)) {
            found = i;
        }
    }
    free(cand);
    return found;
}

bool chaos_resolve(chaos_world *w, int rec, chaos_side side)
{
    chaos_rec *c = &w->L.recs[rec];
    char *got = NULL;
    if (c->uncertain && c->local_id[0] == '\0') {
        const char *p[] = {w->org, c->marker};
        got = xst_engine_sql(w->e, TABLE_ID_SQL[c->ent], 2, p);
        if (got == NULL) {
            return false;
        }
        snprintf(c->local_id, sizeof(c->local_id), "%s", got);
        c->uncertain = false;
        free(got);
    }
    const char *ent = chaos_ent_name(c->ent);
    if (side == SIDE_LOCAL && c->local_id[0] == '\0' && c->xero_id[0] != '\0') {
        const char *p[] = {w->conn, ent, c->xero_id};
        got = xst_engine_sql(w->e,
                             "SELECT local_id FROM sync.mappings WHERE connection_id = $1 AND "
                             "entity = $2 AND xero_id = $3::uuid",
                             3, p);
    } else if (side == SIDE_XERO && c->xero_id[0] == '\0' && c->local_id[0] != '\0') {
        const char *p[] = {w->conn, ent, c->local_id};
        got = xst_engine_sql(w->e,
                             "SELECT xero_id FROM sync.mappings WHERE connection_id = $1 AND "
                             "entity = $2 AND local_id = $3::uuid",
                             3, p);
    }
    if (got != NULL) {
        snprintf(side == SIDE_LOCAL ? c->local_id : c->xero_id, 40, "%s", got);
        free(got);
    }
    return (side == SIDE_LOCAL ? c->local_id : c->xero_id)[0] != '\0';
}

/* ------------------------------------------------------------------ creates */

/* A record being made: what the creates of both sides share. */
typedef struct making {
    int rec;    /* its index in the ledger */
    int parent; /* an invoice's contact, a payment's invoice */
    bool accrec;
    const char *status;
    char name[80], email[80], date[16], due[16], ref[48], amount[32];
} making;

/* new_rec registers a record the workload is making. */
static int new_rec(chaos_world *w, chaos_ent ent, chaos_side origin, unsigned roles,
                   const char *kind)
{
    chaos_rec c;
    memset(&c, 0, sizeof(c));
    c.ent = ent;
    c.origin = origin;
    c.roles = roles;
    c.invoice = -1;
    c.due = xs_money_zero();
    chaos_marker(&w->L, w->opt.seed, kind, c.marker);
    return chaos_rec_add(&w->L, &c);
}

/* pay_amount draws an amount from r, at most the invoice's due, and takes it off the due;
 * false when nothing is due. */
static bool pay_amount(chaos_rec *inv, uint64_t r, char out[32])
{
    xs_money m;
    char text[32];
    snprintf(text, sizeof(text), "%d.%02d", 1 + (int)(r % 150), (int)((r >> 8) % 100));
    xs_money_parse(text, &m);
    if (xs_money_cmp(m, inv->due) > 0) {
        m = inv->due;
    }
    if (xs_money_is_zero(m) || xs_money_is_negative(m)) {
        return false;
    }
    xs_money_sub(inv->due, m, &inv->due);
    xs_money_format(m, 2, out);
    return true;
}

/* invoice_lines makes 1 to 3 lines (local form, or Xero's) for type, drawn from r. */
static json_t *invoice_lines(chaos_world *w, bool accrec, uint64_t r, bool xero)
{
    json_t *lines = json_array();
    int n = 1 + chaos_below(r, 3);
    for (int i = 0; i < n; i++) {
        uint64_t d = r >> (8 * (i + 1));
        char qty[24], unit[24], desc[40];
        snprintf(qty, sizeof(qty), "%d.%04d", 1 + (int)(d % 5), (int)((d >> 3) % 4) * 2500);
        snprintf(unit, sizeof(unit), "%d.%04d", 1 + (int)((d >> 5) % 400), (int)((d >> 7) % 10000));
        snprintf(desc, sizeof(desc), "Chaos line %d", i + 1);
        const char *code = accrec ? w->sales_code[(d >> 11) % (uint64_t)w->nsales]
                                  : w->purchase_code[(d >> 11) % (uint64_t)w->npurchase];
        json_array_append_new(
            lines, json_pack("{s:s,s:o,s:o,s:s,s:s}", xero ? "Description" : "description", desc,
                             xero ? "Quantity" : "quantity", xs_json_decimal(qty),
                             xero ? "UnitAmount" : "unit_amount", xs_json_decimal(unit),
                             xero ? "AccountCode" : "account_code", code,
                             xero ? "TaxType" : "tax_type", accrec ? "OUTPUT2" : "INPUT2"));
    }
    return lines;
}

/* local_invoice_sql writes an invoice and its lines in one statement, as a host would. */
static bool local_invoice_sql(chaos_world *w, chaos_rec *c, const char *contact, const char *type,
                              const char *status, const char *ref, const char *date,
                              const char *due, json_t *lines)
{
    char *lt = xs_json_dump(lines, 0);
    const char *p[] = {w->org, contact, type, c->marker, ref, status, date, due, lt};
    char *id = xst_engine_sql(
        w->e,
        "WITH i AS (INSERT INTO app.invoices (organisation_id, contact_id, type, invoice_number, "
        "reference, status, date, due_date) VALUES ($1, $2, $3, $4, $5, $6, $7::date, $8::date) "
        "RETURNING id), l AS (INSERT INTO app.invoice_lines (organisation_id, invoice_id, "
        "position, description, quantity, unit_amount, account_code, tax_type) SELECT $1, i.id, "
        "x.o - 1, x.v->>'description', (x.v->>'quantity')::numeric, "
        "(x.v->>'unit_amount')::numeric, x.v->>'account_code', x.v->>'tax_type' FROM i, "
        "jsonb_array_elements($9::jsonb) WITH ORDINALITY AS x(v, o) RETURNING 1) SELECT i.id "
        "FROM i, (SELECT count(*) FROM l) n",
        9, p);
    free(lt);
    snprintf(c->local_id, 40, "%s", id != NULL ? id : "");
    free(id);
    return c->local_id[0] != '\0';
}

/* make_begin draws what a new record of ent made on side needs and registers it: a contact
 * (archived and restored later, or given invoices), an invoice (sales or bill, draft or
 * authorised) of a contact that is never archived, a payment of an invoice still due. False
 * when there is nothing to make it for. */
static bool make_begin(chaos_world *w, chaos_ent ent, chaos_side side, const uint64_t r[4],
                       making *m)
{
    memset(m, 0, sizeof(*m));
    date_in(0, m->date);
    date_in(30, m->due);
    if (ent == CE_INVOICE) {
        m->parent = chaos_pick(w, CE_CONTACT, ROLE_PAYER, side, r[1]);
        m->accrec = (r[2] & 2) == 0;
        bool draft = chaos_below(r[2] >> 2, 3) == 0;
        m->status = draft ? "DRAFT" : "AUTHORISED";
        if (m->parent < 0) {
            return false;
        }
        m->rec = new_rec(w, ent, side, ROLE_HOT | (draft ? ROLE_DRAFT : ROLE_VOIDABLE), "I");
        snprintf(w->L.recs[m->rec].type, 8, "%s", m->accrec ? "ACCREC" : "ACCPAY");
    } else if (ent == CE_PAYMENT) {
        m->parent = chaos_pick(w, CE_INVOICE, ROLE_PAYABLE, side, r[1]);
        if (m->parent < 0 || !pay_amount(&w->L.recs[m->parent], r[2], m->amount)) {
            return false;
        }
        m->rec = new_rec(w, ent, side, 0, "P");
        w->L.recs[m->rec].invoice = m->parent;
    } else {
        unsigned roles = ROLE_HOT | (chaos_below(r[1], 3) == 0 ? ROLE_ARCHIVABLE : ROLE_PAYER);
        m->rec = new_rec(w, ent, side, roles, "C");
    }
    const char *marker = w->L.recs[m->rec].marker;
    snprintf(m->name, sizeof(m->name), "%s Chaos Ltd", marker);
    snprintf(m->email, sizeof(m->email), "%s.%s@chaos.example", side == SIDE_LOCAL ? "l" : "x",
             marker);
    for (char *p = m->email; *p; p++) {
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    }
    snprintf(m->ref, sizeof(m->ref), "R-%s", marker);
    return true;
}

/* created records the creation of m's record on side, and the values it was made with. */
static void created(chaos_world *w, const making *m, chaos_side side, const char *how, int64_t at,
                    bool uncertain)
{
    chaos_rec *c = &w->L.recs[m->rec];
    c->uncertain = uncertain && c->local_id[0] == '\0';
    chaos_write_add(&w->L, m->rec, side, CF_CREATE, c->marker, how, at, uncertain, "create");
    if (c->ent == CE_CONTACT) {
        const chaos_field f[] = {CF_EMAIL, CF_LAST_NAME, CF_CSTATUS};
        const char *v[] = {m->email, "Made", "ACTIVE"};
        for (int i = 0; i < 3; i++) {
            chaos_write_add(&w->L, m->rec, side, f[i], v[i], how, at, uncertain, NULL);
        }
    } else if (c->ent == CE_INVOICE) {
        const chaos_field f[] = {CF_REFERENCE, CF_DUE_DATE, CF_ISTATUS};
        const char *v[] = {m->ref, m->due, m->status};
        for (int i = 0; i < 3; i++) {
            chaos_write_add(&w->L, m->rec, side, f[i], v[i], how, at, uncertain, NULL);
        }
    }
}

/* local_body is the REST body that makes m's record (new). */
static json_t *local_body(chaos_world *w, chaos_ent ent, const making *m, json_t *lines)
{
    const chaos_rec *c = &w->L.recs[m->rec];
    const char *parent = m->parent >= 0 ? w->L.recs[m->parent].local_id : "";
    if (ent == CE_CONTACT) {
        return json_pack("{s:s,s:s,s:s,s:s}", "organisation_id", w->org, "name", m->name, "email",
                         m->email, "last_name", "Made");
    }
    if (ent == CE_INVOICE) {
        return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O}", "organisation_id", w->org, "type",
                         c->type, "contact", parent, "invoice_number", c->marker, "reference",
                         m->ref, "status", m->status, "date", m->date, "due_date", m->due, "lines",
                         lines);
    }
    return json_pack("{s:s,s:s,s:s,s:s,s:o,s:s}", "organisation_id", w->org, "invoice", parent,
                     "account_code", w->bank_code, "date", m->date, "amount",
                     xs_json_decimal(m->amount), "reference", c->marker);
}

/* local_sql makes m's record by SQL, as a host application writes its tables; its id. */
static bool local_sql(chaos_world *w, chaos_ent ent, const making *m, json_t *lines)
{
    chaos_rec *c = &w->L.recs[m->rec];
    const char *parent = m->parent >= 0 ? w->L.recs[m->parent].local_id : "";
    if (ent == CE_INVOICE) {
        return local_invoice_sql(w, c, parent, c->type, m->status, m->ref, m->date, m->due, lines);
    }
    char *id;
    if (ent == CE_CONTACT) {
        const char *p[] = {w->org, m->name, m->email};
        id = xst_engine_sql(w->e,
                            "INSERT INTO app.contacts (organisation_id, name, email, last_name) "
                            "VALUES ($1, $2, $3, 'Made') RETURNING id",
                            3, p);
    } else {
        const char *p[] = {w->org, parent, w->bank_code, m->date, m->amount, c->marker};
        id = xst_engine_sql(w->e,
                            "INSERT INTO app.payments (organisation_id, invoice_id, "
                            "account_code, date, amount, reference) VALUES ($1, $2, $3, "
                            "$4::date, $5::numeric, $6) RETURNING id",
                            6, p);
    }
    snprintf(c->local_id, 40, "%s", id != NULL ? id : "");
    free(id);
    return c->local_id[0] != '\0';
}

bool chaos_local_create(chaos_world *w, chaos_ent ent, const uint64_t r[4])
{
    making m;
    if (!make_begin(w, ent, SIDE_LOCAL, r, &m)) {
        return false;
    }
    chaos_rec *c = &w->L.recs[m.rec];
    json_t *lines = ent == CE_INVOICE ? invoice_lines(w, m.accrec, r[3], false) : NULL;
    if (use_rest(w, r[0])) {
        static const char *const paths[CE_N] = {"/v1/contacts", "/v1/invoices", "/v1/payments"};
        xst_http h = rest_call(w, "POST", paths[ent], local_body(w, ent, &m, lines));
        if (h.status == 201) {
            snprintf(c->local_id, 40, "%s", xs_json_str_or(h.json, "id", ""));
        }
        if (h.status == 201 || lost_reply(h.status)) {
            created(w, &m, SIDE_LOCAL, "rest", xs_clock_now(), lost_reply(h.status));
        }
        xst_http_free(&h);
    } else if (local_sql(w, ent, &m, lines)) {
        created(w, &m, SIDE_LOCAL, "sql", xs_clock_now(), false);
    }
    json_decref(lines);
    return true;
}

/* xero_body is the control API's body that makes m's record in Xero (new). */
static json_t *xero_body(chaos_world *w, chaos_ent ent, const making *m, const uint64_t r[4])
{
    const chaos_rec *c = &w->L.recs[m->rec];
    const char *parent = m->parent >= 0 ? w->L.recs[m->parent].xero_id : "";
    if (ent == CE_CONTACT) {
        return json_pack("{s:s,s:s,s:s}", "Name", m->name, "EmailAddress", m->email, "LastName",
                         "Made");
    }
    if (ent == CE_INVOICE) {
        return json_pack("{s:s,s:{s:s},s:s,s:s,s:s,s:s,s:s,s:o}", "Type", c->type, "Contact",
                         "ContactID", parent, "InvoiceNumber", c->marker, "Reference", m->ref,
                         "Status", m->status, "Date", m->date, "DueDate", m->due, "LineItems",
                         invoice_lines(w, m->accrec, r[3], true));
    }
    return json_pack("{s:{s:s},s:{s:s},s:s,s:o,s:s}", "Invoice", "InvoiceID", parent, "Account",
                     "Code", w->bank_code, "Date", m->date, "Amount", xs_json_decimal(m->amount),
                     "Reference", c->marker);
}

bool chaos_xero_create(chaos_world *w, chaos_ent ent, const uint64_t r[4])
{
    static const char *const id_field[CE_N] = {"ContactID", "InvoiceID", "PaymentID"};
    making m;
    if (!make_begin(w, ent, SIDE_XERO, r, &m)) {
        return false;
    }
    chaos_rec *c = &w->L.recs[m.rec];
    int64_t at;
    json_t *x = sim_write(w, ent, "PUT", "", xero_body(w, ent, &m, r), &at);
    if (x == NULL) {
        c->final = true; /* refused: it does not exist */
        return true;
    }
    snprintf(c->xero_id, 40, "%s", xs_json_str_or(x, id_field[ent], ""));
    json_decref(x);
    created(w, &m, SIDE_XERO, "sim", at, false);
    return true;
}

/* ------------------------------------------------------------------ edits and statuses */

/* edit_value makes the value of the next write of field: unique per write. */
static void edit_value(chaos_world *w, chaos_field f, char out[64])
{
    int seq = w->L.nwrites + 1;
    if (f == CF_EMAIL) {
        snprintf(out, 64, "w%d.s%llu@chaos.example", seq, (unsigned long long)w->opt.seed);
    } else if (f == CF_LAST_NAME) {
        snprintf(out, 64, "Last%d", seq);
    } else if (f == CF_REFERENCE) {
        snprintf(out, 64, "R%d-s%llu", seq, (unsigned long long)w->opt.seed);
    } else {
        date_in(40 + seq % 700, out);
    }
}

/* updated_ms is the local row's updated_at in epoch ms (-1 when unknown). */
static int64_t updated_ms(chaos_world *w, const chaos_rec *c)
{
    static const char *const sql[CE_N] = {
        "SELECT " XS_MS_OF_UPDATED " FROM app.contacts WHERE id = $1::uuid",
        "SELECT " XS_MS_OF_UPDATED " FROM app.invoices WHERE id = $1::uuid",
        "SELECT " XS_MS_OF_UPDATED " FROM app.payments WHERE id = $1::uuid"};
    const char *p[] = {c->local_id};
    return xst_engine_sql_long(w->e, sql[c->ent], 1, p);
}

/* local_set writes field of rec to value locally (REST or SQL by r); false when the write
 * was refused. */
static bool local_set(chaos_world *w, int rec, chaos_field f, const char *value, uint64_t r,
                      const char *kind)
{
    static const char *const col[CF_N] = {NULL,        "email",    "last_name", "status",
                                          "reference", "due_date", "status",    "status"};
    /* an update to the value the row holds already changes nothing (not even updated_at):
     * it is no write, and is not recorded */
    static const char *const sql[CF_N] = {
        NULL,
        "UPDATE app.contacts SET email = $2 WHERE id = $1::uuid AND email IS DISTINCT FROM $2 "
        "RETURNING " XS_MS_OF_UPDATED,
        "UPDATE app.contacts SET last_name = $2 WHERE id = $1::uuid AND last_name IS DISTINCT "
        "FROM $2 RETURNING " XS_MS_OF_UPDATED,
        "UPDATE app.contacts SET status = $2 WHERE id = $1::uuid AND status IS DISTINCT FROM $2 "
        "RETURNING " XS_MS_OF_UPDATED,
        "UPDATE app.invoices SET reference = $2 WHERE id = $1::uuid AND reference IS DISTINCT "
        "FROM $2 RETURNING " XS_MS_OF_UPDATED,
        "UPDATE app.invoices SET due_date = $2::date WHERE id = $1::uuid AND due_date IS "
        "DISTINCT FROM $2::date RETURNING " XS_MS_OF_UPDATED,
        "UPDATE app.invoices SET status = $2 WHERE id = $1::uuid AND status IS DISTINCT FROM $2 "
        "RETURNING " XS_MS_OF_UPDATED,
        "UPDATE app.payments SET status = $2 WHERE id = $1::uuid AND status IS DISTINCT FROM $2 "
        "RETURNING " XS_MS_OF_UPDATED};
    chaos_rec *c = &w->L.recs[rec];
    if (use_rest(w, r)) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", REST[c->ent], c->local_id);
        int64_t before = updated_ms(w, c);
        xst_http h = rest_call(w, "PATCH", path, json_pack("{s:s}", col[f], value));
        bool ok = h.status == 200 || lost_reply(h.status);
        /* a PATCH to the value the row holds changes nothing: no write */
        if (h.status == 200 && updated_ms(w, c) == before) {
            ok = false;
        }
        if (ok) {
            chaos_write_add(&w->L, rec, SIDE_LOCAL, f, value, "rest", xs_clock_now(),
                            h.status != 200, kind);
        }
        xst_http_free(&h);
        return ok;
    }
    int64_t at = sql_ms(w, sql[f], c->local_id, value);
    if (at > 0) {
        chaos_write_add(&w->L, rec, SIDE_LOCAL, f, value, "sql", at, false, kind);
    }
    return at > 0;
}

/* xero_set writes field of rec in Xero: an edit (body) or an action (suffix). */
static bool xero_set(chaos_world *w, int rec, chaos_field f, const char *value, json_t *body,
                     const char *action, const char *kind)
{
    chaos_rec *c = &w->L.recs[rec];
    char suffix[96];
    snprintf(suffix, sizeof(suffix), "/%s%s%s", c->xero_id, action != NULL ? "/" : "",
             action != NULL ? action : "");
    int64_t at;
    json_t *x = sim_write(w, c->ent, "POST", suffix, body, &at);
    if (x == NULL) {
        return false;
    }
    json_decref(x);
    chaos_write_add(&w->L, rec, SIDE_XERO, f, value, "sim", at, false, kind);
    return true;
}

/* edit writes a new value to an edited field (e-mail or last name, reference or due date)
 * of a hot record, on side. */
static bool edit(chaos_world *w, chaos_ent ent, chaos_side side, const uint64_t r[4])
{
    static const char *const key[CF_N] = {NULL,        "EmailAddress", "LastName", NULL,
                                          "Reference", "DueDate",      NULL,       NULL};
    int rec = ent == CE_PAYMENT ? -1 : chaos_pick(w, ent, ROLE_HOT, side, r[1]);
    if (rec < 0) {
        return false;
    }
    chaos_field f = ent == CE_CONTACT ? ((r[2] & 1) ? CF_EMAIL : CF_LAST_NAME)
                                      : ((r[2] & 1) ? CF_REFERENCE : CF_DUE_DATE);
    char value[64];
    edit_value(w, f, value);
    if (side == SIDE_LOCAL) {
        return local_set(w, rec, f, value, r[0], "edit");
    }
    return xero_set(w, rec, f, value, json_pack("{s:s}", key[f], value), NULL, "edit");
}

bool chaos_local_edit(chaos_world *w, chaos_ent ent, const uint64_t r[4])
{
    return edit(w, ent, SIDE_LOCAL, r);
}

bool chaos_xero_edit(chaos_world *w, chaos_ent ent, const uint64_t r[4])
{
    return edit(w, ent, SIDE_XERO, r);
}

/* contact_archived tells whether a contact is archived on side now (a toggle writes the
 * other value, so it is always a change there). */
static bool contact_archived(chaos_world *w, int rec, chaos_side side)
{
    const chaos_rec *c = &w->L.recs[rec];
    if (side == SIDE_LOCAL) {
        const char *p[] = {c->local_id};
        char *st =
            xst_engine_sql(w->e, "SELECT status FROM app.contacts WHERE id = $1::uuid", 1, p);
        bool archived = st != NULL && strcmp(st, "ARCHIVED") == 0;
        free(st);
        return archived;
    }
    char path[160];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s", w->tenant, c->xero_id);
    json_t *j = xst_engine_sim_json(w->e, "GET", path, NULL);
    const char *st =
        xs_json_str_or(json_array_get(json_object_get(j, "Contacts"), 0), "ContactStatus", "");
    bool archived = strcmp(st, "ARCHIVED") == 0;
    json_decref(j);
    return archived;
}

/* status_pick chooses a record and its next status: a contact toggles archived (from what the
 * side holds now), an invoice changes once (a draft to AUTHORISED, SUBMITTED or DELETED; an
 * unpaid authorised one to VOIDED), a payment is deleted once. Returns the record (its status
 * in out) or -1. */
static int status_pick(chaos_world *w, chaos_ent ent, chaos_side side, const uint64_t r[4],
                       const char **out)
{
    static const char *const draft_to[] = {"AUTHORISED", "SUBMITTED", "DELETED"};
    int rec;
    if (ent == CE_CONTACT) {
        rec = chaos_pick(w, ent, ROLE_ARCHIVABLE, side, r[1]);
        *out = rec >= 0 && contact_archived(w, rec, side) ? "ACTIVE" : "ARCHIVED";
    } else if (ent == CE_INVOICE) {
        bool draft = (r[2] & 1) == 0;
        rec = chaos_pick(w, ent, draft ? ROLE_DRAFT : ROLE_VOIDABLE, side, r[1]);
        *out = draft ? draft_to[chaos_below(r[3], 3)] : "VOIDED";
        /* Xero makes no invoice VOIDED or DELETED (docs/MAPPING.md): one made here is voided
         * or deleted only once the engine has linked it */
        bool final = strcmp(*out, "VOIDED") == 0 || strcmp(*out, "DELETED") == 0;
        if (rec >= 0 && side == SIDE_LOCAL && final && !chaos_resolve(w, rec, SIDE_XERO)) {
            rec = -1;
        }
    } else {
        rec = chaos_pick(w, ent, 0, side, r[1]);
        /* a payment deleted here must be one Xero has: the engine links it first */
        if (rec >= 0 && side == SIDE_LOCAL && !chaos_resolve(w, rec, SIDE_XERO)) {
            rec = -1;
        }
        *out = "DELETED";
    }
    return rec;
}

/* status_done marks what a status write means for later writes. */
static void status_done(chaos_world *w, int rec, const char *status)
{
    chaos_rec *c = &w->L.recs[rec];
    if (c->ent != CE_CONTACT) {
        c->status_written = true;
    }
    if (strcmp(status, "VOIDED") == 0 || strcmp(status, "DELETED") == 0) {
        c->final = true;
    }
}

bool chaos_local_status(chaos_world *w, chaos_ent ent, const uint64_t r[4])
{
    const char *status;
    int rec = status_pick(w, ent, SIDE_LOCAL, r, &status);
    if (rec < 0) {
        return false;
    }
    chaos_field f = ent == CE_CONTACT ? CF_CSTATUS : ent == CE_INVOICE ? CF_ISTATUS : CF_PSTATUS;
    if (local_set(w, rec, f, status, r[0], ent == CE_PAYMENT ? "delete" : "status")) {
        status_done(w, rec, status);
    }
    return true;
}

bool chaos_xero_status(chaos_world *w, chaos_ent ent, const uint64_t r[4])
{
    const char *status;
    int rec = status_pick(w, ent, SIDE_XERO, r, &status);
    if (rec < 0) {
        return false;
    }
    static const struct {
        const char *status, *action;
    } acts[] = {{"ARCHIVED", "archive"}, {"ACTIVE", "restore"}, {"AUTHORISED", "authorise"},
                {"SUBMITTED", "submit"}, {"DELETED", "delete"}, {"VOIDED", "void"}};
    const char *action = "delete";
    for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
        if (strcmp(acts[i].status, status) == 0) {
            action = acts[i].action;
        }
    }
    chaos_field f = ent == CE_CONTACT ? CF_CSTATUS : ent == CE_INVOICE ? CF_ISTATUS : CF_PSTATUS;
    if (xero_set(w, rec, f, status, NULL, action, ent == CE_PAYMENT ? "delete" : "status")) {
        status_done(w, rec, status);
    } else if (ent != CE_CONTACT) {
        /* Xero refused: it is in no state the workload knows; leave it alone */
        w->L.recs[rec].final = true;
    }
    return true;
}
