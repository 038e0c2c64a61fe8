/*
 * invoice.c: the invoice entity. Sales invoices (ACCREC) and bills (ACCPAY) with their line
 * items, in two-way sync between Xero and app.invoices + app.invoice_lines (docs/MAPPING.md).
 *
 * Canonical invoice: type, contact (the local contact's id; the domain layer translates it to
 * and from Xero's ContactID through the contact mappings), invoice_number, reference, status,
 * date and due_date ("YYYY-MM-DD"), currency_code, line_amount_types (text or null),
 * currency_rate (6 places), sub_total, total_tax, total, amount_due, amount_paid and
 * amount_credited (2 places; Xero's, computed from the lines), and lines [{description,
 * quantity, unit_amount (4 places), account_code, tax_type, tax_amount, line_amount (2
 * places; Xero's), item_code, discount_rate (2 places)}] in order. Pulls and pushes ask for
 * unitdp=4, so 4-decimal unit amounts survive both ways.
 *
 * What is sent to Xero leaves out what Xero computes (line and tax amounts, totals), so a
 * local edit of a quantity is never contradicted by a stale line amount; Xero's results come
 * back with the next pull. A status change is checked against Xero's transitions before the
 * call (invoice_transition_ok), and the lines' account codes against the mirrored chart of
 * accounts; a refused one fails that record only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invoice.h"
#include "xs/json.h"
#include "xs/uuid.h"
#include "xs/money.h"

static const char *const TEXT[][2] = {
    /* canonical, Xero */
    {"type", "Type"},
    {"invoice_number", "InvoiceNumber"},
    {"reference", "Reference"},
    {"status", "Status"},
    {"currency_code", "CurrencyCode"},
    {"line_amount_types", "LineAmountTypes"},
};
#define NTEXT (sizeof(TEXT) / sizeof(TEXT[0]))

static const xs_domain_field MONEY[] = {
    {"currency_rate", "CurrencyRate", 6},
    {"sub_total", "SubTotal", 2},
    {"total_tax", "TotalTax", 2},
    {"total", "Total", 2},
    {"amount_due", "AmountDue", 2},
    {"amount_paid", "AmountPaid", 2},
    {"amount_credited", "AmountCredited", 2},
};
#define NMONEY (sizeof(MONEY) / sizeof(MONEY[0]))

static const char *const DATES[][2] = {{"date", "Date"}, {"due_date", "DueDate"}};

static const xs_domain_field LINE[] = {
    {"description", "Description", 0},    {"quantity", "Quantity", 4},
    {"unit_amount", "UnitAmount", 4},     {"account_code", "AccountCode", 0},
    {"tax_type", "TaxType", 0},           {"tax_amount", "TaxAmount", 2},
    {"line_amount", "LineAmount", 2},     {"item_code", "ItemCode", 0},
    {"discount_rate", "DiscountRate", 2},
};
#define NLINE (sizeof(LINE) / sizeof(LINE[0]))
/* The line fields Xero computes: read, never sent. */
static const char *const LINE_COMPUTED[] = {"tax_amount", "line_amount", NULL};

/* 100, the most a discount rate (a percentage) can be. */
static const xs_money MONEY_100 = {100 * XS_MONEY_ONE};

/* sign_of returns the sign of line[key] (-1, 0, 1), 1 when it is absent or unreadable (an
 * absent quantity counts as one of the unit; unreadable amounts are refused elsewhere). */
static int sign_of(const json_t *line, const char *key)
{
    json_t *v = json_object_get(line, key);
    xs_money m;
    if (v == NULL || json_is_null(v) || xs_json_to_money(v, &m) != XS_OK) {
        return 1;
    }
    return xs_money_cmp(m, xs_money_zero());
}

/* negative_line tells whether a line's amount, quantity x unit_amount, is below zero, naming
 * the factor that is negative; NULL when it is not. */
static const char *negative_line(const json_t *line)
{
    int q = sign_of(line, "quantity"), u = sign_of(line, "unit_amount");
    if (q * u >= 0) {
        return NULL;
    }
    return u < 0 ? "unit_amount" : "quantity";
}

static const char *const TYPES[] = {"ACCREC", "ACCPAY", NULL};
static const char *const STATUSES[] = {"DRAFT",  "SUBMITTED", "AUTHORISED", "PAID",
                                       "VOIDED", "DELETED",   NULL};
static const char *const LINE_AMOUNT_TYPES[] = {"Exclusive", "Inclusive", "NoTax", NULL};

static bool is_code(const char *s)
{
    return s != NULL && strlen(s) == 3 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 3;
}

/* canonical builds the canonical invoice from an object keyed by Xero's names (xero; its
 * contact is then Xero's ContactID) or the canonical ones, checking what app.invoices
 * requires, so that no record Xero sends can make a page's write fail; why (XS_DOMAIN_WHY_MAX
 * bytes) says what is wrong when it returns NULL. */
static json_t *canonical(const json_t *in, bool xero, char *why)
{
    json_t *rec = json_object();
    for (size_t i = 0; i < NTEXT; i++) {
        json_object_set_new(rec, TEXT[i][0], xs_domain_text(in, TEXT[i][xero ? 1 : 0]));
    }
    for (size_t i = 0; i < NMONEY; i++) {
        const char *key = xero ? MONEY[i].xero : MONEY[i].name;
        json_t *v = xs_domain_amount(in, key, MONEY[i].places, why);
        if (v == NULL) {
            json_decref(rec);
            return NULL;
        }
        json_object_set_new(rec, MONEY[i].name, v);
    }
    for (size_t i = 0; i < 2; i++) {
        const char *key = DATES[i][xero ? 1 : 0];
        json_t *d = xs_domain_date(in, key);
        size_t len = 0;
        if (!xero && json_is_null(d) &&
            xs_json_string_value(json_object_get(in, key), &len) != NULL && len > 0) {
            snprintf(why, XS_DOMAIN_WHY_MAX, "%s must be a date (YYYY-MM-DD)", key);
            json_decref(d);
            json_decref(rec);
            return NULL;
        }
        json_object_set_new(rec, DATES[i][0], d);
    }
    const char *cid = xero ? xs_json_str_or(json_object_get(in, "Contact"), "ContactID", NULL)
                           : xs_json_str_or(in, "contact", NULL);
    char low[XS_ID_MAX] = "";
    if (cid != NULL && xs_uuid_valid(cid)) {
        for (size_t i = 0; i < 36; i++) {
            low[i] = (char)(cid[i] >= 'A' && cid[i] <= 'F' ? cid[i] - 'A' + 'a' : cid[i]);
        }
        low[36] = '\0';
    }
    json_t *ls =
        xs_domain_lines(json_object_get(in, xero ? "LineItems" : "lines"), LINE, NLINE, xero, why);
    if (ls == NULL) {
        json_decref(rec);
        return NULL;
    }
    json_object_set_new(rec, "lines", ls);
    json_object_set_new(rec, "contact", low[0] != '\0' ? json_string(low) : json_null());
    if (json_is_null(json_object_get(rec, "status"))) {
        json_object_set_new(rec, "status", json_string("DRAFT"));
    }
    if (json_is_null(json_object_get(rec, "line_amount_types"))) {
        json_object_set_new(rec, "line_amount_types", json_string("Exclusive"));
    }
    const char *type = xs_json_str_or(rec, "type", NULL);
    const char *status = xs_json_str_or(rec, "status", NULL);
    const char *cur = xs_json_str_or(rec, "currency_code", NULL);
    const char *lat = xs_json_str_or(rec, "line_amount_types", NULL);
    const char *rate = xs_json_str_or(rec, "currency_rate", NULL);
    if (!xs_domain_one_of(type, TYPES)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "type must be ACCREC or ACCPAY, not %.20s",
                 type ? type : "(none)");
    } else if (low[0] == '\0') {
        snprintf(why, XS_DOMAIN_WHY_MAX, "an invoice needs its contact (%s)",
                 xero ? "Contact.ContactID" : "contact: the id of a local contact");
    } else if (!xs_domain_one_of(status, STATUSES)) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "status must be DRAFT, SUBMITTED, AUTHORISED, PAID, VOIDED or DELETED, not %.20s",
                 status);
    } else if (cur != NULL && !is_code(cur)) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "currency_code must be an ISO 4217 code such as NZD, not %.20s", cur);
    } else if (!xs_domain_one_of(lat, LINE_AMOUNT_TYPES)) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "line_amount_types must be Exclusive, Inclusive or NoTax, not %.20s", lat);
    } else if (rate != NULL && (rate[0] == '-' || strspn(rate, "0.") == strlen(rate))) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "currency_rate must be greater than zero");
    } else {
        return rec;
    }
    json_decref(rec);
    return NULL;
}

static json_t *read_xero(const json_t *x, char *why)
{
    return canonical(x, true, why);
}

/* put_text sets x[key] to the canonical text rec[name] when it has one. */
static void put_text(json_t *x, const char *key, const json_t *rec, const char *name)
{
    const char *v = xs_json_str_or(rec, name, NULL);
    if (v != NULL) {
        json_object_set_new(x, key, json_string(v));
    }
}

/* put_amount sets x[key] to the amount rec[name] as an exact JSON number when it has one. */
static void put_amount(json_t *x, const char *key, const json_t *rec, const char *name)
{
    const char *v = xs_json_str_or(rec, name, NULL);
    json_t *d = v != NULL ? xs_json_decimal(v) : NULL;
    if (d != NULL) {
        json_object_set_new(x, key, d);
    }
}

/* to_xero: an update names each line by the LineItemID of the base's line at its position
 * (parts), so Xero updates that line in place, keeping an unchanged one as it is; lines
 * beyond the base's are new, and the base's lines beyond the record's are deleted by Xero.
 * Without the ids Xero would replace every line, which it refuses on an invoice with
 * payments. */
static json_t *to_xero(const json_t *rec, const char *xero_id, const json_t *parts)
{
    json_t *x = json_object();
    if (xero_id != NULL) {
        json_object_set_new(x, "InvoiceID", json_string(xero_id));
    }
    put_text(x, "Type", rec, "type");
    json_object_set_new(x, "Contact",
                        json_pack("{s:s}", "ContactID", xs_json_str_or(rec, "contact", "")));
    put_text(x, "InvoiceNumber", rec, "invoice_number");
    /* an empty Reference clears one that Xero holds */
    json_object_set_new(x, "Reference", json_string(xs_domain_text_or_empty(rec, "reference")));
    put_text(x, "Status", rec, "status");
    put_text(x, "Date", rec, "date");
    put_text(x, "DueDate", rec, "due_date");
    put_text(x, "CurrencyCode", rec, "currency_code");
    put_amount(x, "CurrencyRate", rec, "currency_rate");
    put_text(x, "LineAmountTypes", rec, "line_amount_types");
    json_t *lines = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(rec, "lines"), i, l)
    {
        json_t *xl = json_object();
        const char *lid =
            xero_id != NULL ? xs_json_string_value(json_array_get(parts, i), NULL) : NULL;
        if (lid != NULL) {
            json_object_set_new(xl, "LineItemID", json_string(lid));
        }
        for (size_t f = 0; f < NLINE; f++) {
            if (xs_domain_one_of(LINE[f].name, LINE_COMPUTED)) {
                continue;
            }
            if (LINE[f].places > 0) {
                put_amount(xl, LINE[f].xero, l, LINE[f].name);
            } else {
                put_text(xl, LINE[f].xero, l, LINE[f].name);
            }
        }
        json_array_append_new(lines, xl);
    }
    json_object_set_new(x, "LineItems", lines);
    return x;
}

/* read_parts: the LineItemIDs of Xero's invoice, in its lines' order (null for a line
 * without one). */
static json_t *read_parts(const json_t *x)
{
    json_t *lines = json_object_get(x, "LineItems");
    if (!json_is_array(lines)) {
        return NULL;
    }
    json_t *ids = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l)
    {
        const char *id = xs_json_str_or(l, "LineItemID", NULL);
        json_array_append_new(ids, id != NULL && xs_uuid_valid(id) ? json_string(id) : json_null());
    }
    return ids;
}

/* A local delete: a DRAFT or SUBMITTED invoice is deleted in Xero, an AUTHORISED one without
 * payments voided; any other is left as Xero has it. */
static json_t *retire_item(const char *xero_id, const json_t *base, char *why)
{
    const char *st = xs_json_str_or(base, "status", "");
    const char *paid = xs_json_str_or(base, "amount_paid", NULL);
    bool unpaid = paid == NULL || strspn(paid, "0.") == strlen(paid);
    const char *to = strcmp(st, "DRAFT") == 0 || strcmp(st, "SUBMITTED") == 0 ? "DELETED"
                     : strcmp(st, "AUTHORISED") == 0 && unpaid                ? "VOIDED"
                                                                              : NULL;
    if (to == NULL && strcmp(st, "VOIDED") != 0 && strcmp(st, "DELETED") != 0) {
        /* PAID, or AUTHORISED with payments: Xero keeps it; the local delete cannot reach it. */
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "the invoice was deleted here, but Xero can neither delete nor void a%s %s "
                 "invoice with payments: delete its payments in Xero first",
                 strcmp(st, "AUTHORISED") == 0 ? "n" : "", st[0] != '\0' ? st : "paid");
    }
    return to != NULL ? json_pack("{s:s, s:s}", "InvoiceID", xero_id, "Status", to) : NULL;
}

bool invoice_transition_ok(const char *from, const char *to, const char *amount_paid, char *why)
{
    bool paid = amount_paid != NULL && strspn(amount_paid, "0.") != strlen(amount_paid);
    if (from == NULL) {
        if (strcmp(to, "DRAFT") == 0 || strcmp(to, "SUBMITTED") == 0 ||
            strcmp(to, "AUTHORISED") == 0) {
            return true;
        }
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "a new invoice can only be created as DRAFT, SUBMITTED or AUTHORISED in Xero, "
                 "not %.20s",
                 to);
        return false;
    }
    if (strcmp(from, to) == 0) {
        if (strcmp(from, "VOIDED") == 0 || strcmp(from, "DELETED") == 0) {
            snprintf(why, XS_DOMAIN_WHY_MAX,
                     "the invoice is %s in Xero, which is final: it cannot be changed", from);
            return false;
        }
        return true;
    }
    if (strcmp(to, "PAID") == 0) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "status %s to PAID: Xero makes an invoice PAID when payments cover it; record a "
                 "payment instead",
                 from);
    } else if (strcmp(from, "VOIDED") == 0 || strcmp(from, "DELETED") == 0) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "status %s to %.20s: %s is final in Xero", from, to, from);
    } else if (strcmp(from, "PAID") == 0) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "status PAID to %.20s: Xero keeps a PAID invoice PAID while its payments stand; "
                 "delete the payments first",
                 to);
    } else if (strcmp(from, "AUTHORISED") == 0) {
        if (strcmp(to, "VOIDED") == 0 && !paid) {
            return true;
        }
        snprintf(why, XS_DOMAIN_WHY_MAX, "status AUTHORISED to %.20s: %s", to,
                 strcmp(to, "VOIDED") == 0    ? "it has payments; delete them before voiding"
                 : strcmp(to, "DELETED") == 0 ? "Xero deletes no AUTHORISED invoice; void it"
                                              : "Xero never takes an AUTHORISED invoice back");
    } else if (strcmp(to, "VOIDED") == 0) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "status %s to VOIDED: only an AUTHORISED invoice can be voided; delete "
                 "it instead",
                 from);
    } else {
        return true; /* DRAFT and SUBMITTED: to each other, AUTHORISED or DELETED */
    }
    return false;
}

/* check_push: Xero's transitions, and no edit of what Xero no longer lets change. */
static json_t *line_edits(const json_t *line);

/* changed_negative_line tells which line of rec (1 on) has an amount below zero and differs
 * from the base's line at its place (what a person edits of it), or 0: a line the host
 * application wrote into app.invoice_lines itself, where no REST check (line_refusal) saw
 * it. A negative line that came from Xero (a discount) is left as Xero has it. */
static size_t changed_negative_line(const json_t *base, const json_t *rec)
{
    json_t *theirs = base != NULL ? json_object_get(base, "lines") : NULL;
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(rec, "lines"), i, l)
    {
        if (negative_line(l) == NULL) {
            continue;
        }
        json_t *b = json_array_get(theirs, i);
        json_t *be = b != NULL ? line_edits(b) : NULL, *le = line_edits(l);
        bool same = be != NULL && xs_json_equal(be, le);
        json_decref(be);
        json_decref(le);
        if (!same) {
            return i + 1;
        }
    }
    return 0;
}

static bool check_push(const json_t *base, const json_t *rec, const xs_local_row *row, char *why)
{
    const char *unknown = xs_json_str_or(row->check, "unknown_codes", NULL);
    if (unknown != NULL && strcmp(xs_json_str_or(rec, "status", ""), "DELETED") != 0) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "no active account of the chart of accounts has the code %.120s", unknown);
        return false;
    }
    size_t neg = changed_negative_line(base, rec);
    if (neg > 0) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "line %zu: a line's amount (quantity x unit_amount) must not be below zero", neg);
        return false;
    }
    const char *from = base != NULL ? xs_json_str_or(base, "status", NULL) : NULL;
    const char *to = xs_json_str_or(rec, "status", "DRAFT");
    if (!invoice_transition_ok(
            from, to, base != NULL ? xs_json_str_or(base, "amount_paid", NULL) : NULL, why)) {
        return false;
    }
    if (base != NULL &&
        strcmp(xs_json_str_or(base, "type", ""), xs_json_str_or(rec, "type", "")) != 0) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "type %s to %s: Xero never changes an invoice's type",
                 xs_json_str_or(base, "type", ""), xs_json_str_or(rec, "type", ""));
        return false;
    }
    return true;
}

#define COLS                                                                                       \
    "i.id, i.organisation_id, i.type, i.invoice_number, i.reference, i.status, "                   \
    "i.currency_code, i.line_amount_types, i.currency_rate::text, i.sub_total::text, "             \
    "i.total_tax::text, i.total::text, i.amount_due::text, i.amount_paid::text, "                  \
    "i.amount_credited::text, to_char(i.date, 'YYYY-MM-DD'), to_char(i.due_date, 'YYYY-MM-DD'), "  \
    "i.contact_id::text, (SELECT coalesce(json_agg(json_build_object('description', "              \
    "l.description, 'quantity', l.quantity::text, 'unit_amount', l.unit_amount::text, "            \
    "'account_code', l.account_code, 'tax_type', l.tax_type, 'tax_amount', l.tax_amount::text, "   \
    "'line_amount', l.line_amount::text, 'item_code', l.item_code, 'discount_rate', "              \
    "l.discount_rate::text) ORDER BY l.position, l.id), '[]')::text FROM app.invoice_lines l "     \
    "WHERE l.invoice_id = i.id), " XS_DOMAIN_MS(                                                   \
        "coalesce(i.edited_at, i.updated_at)") " AS "                                              \
                                               "edited_ms, i.edited_fields::text AS "              \
                                               "edited_fields, " XS_DOMAIN_MS("i.updated_at")

/* row_rec reads a row of COLS as the canonical invoice. */
static json_t *row_rec(const xs_pg_res *r, int i)
{
    json_t *row = json_object();
    xs_domain_text_cols(row, r, i, 2, TEXT, NTEXT);
    int c = 2 + (int)NTEXT;
    for (size_t m = 0; m < NMONEY; m++, c++) {
        const char *v = xs_pg_res_get(r, i, c);
        json_object_set_new(row, MONEY[m].name, v != NULL ? json_string(v) : json_null());
    }
    for (size_t d = 0; d < 2; d++, c++) {
        const char *v = xs_pg_res_get(r, i, c);
        json_object_set_new(row, DATES[d][0], v != NULL ? json_string(v) : json_null());
    }
    json_object_set_new(row, "contact", json_string(xs_pg_res_get(r, i, c++)));
    const char *lt = xs_pg_res_get(r, i, c);
    json_object_set_new(row, "lines", lt != NULL ? xs_json_parse(lt, strlen(lt), NULL) : NULL);
    char why[XS_DOMAIN_WHY_MAX];
    json_t *rec = canonical(row, false, why);
    json_decref(row);
    return rec;
}

/* unknown_codes: what a push checks an invoice's lines against, the account codes no active
 * account of the mirrored chart has (none are unknown while no chart is mirrored). */
static json_t *unknown_codes(const xs_pg_res *r, int i)
{
    return json_pack("{s:s}", "unknown_codes", xs_pg_res_get(r, i, 1));
}

static xs_err load_local(xs_pg *pg, const char *org, const json_t *ids, xs_local_rows *out)
{
    return xs_domain_load_checked(
        pg,
        "SELECT " COLS " FROM app.invoices i WHERE i.id = ANY($2::uuid[]) AND ($1::uuid IS NULL "
        "OR i.organisation_id = $1::uuid)",
        org, ids, row_rec,
        "SELECT l.invoice_id, string_agg(DISTINCT l.account_code, ', ') FROM app.invoice_lines l "
        "WHERE l.invoice_id = ANY($1::uuid[]) AND l.account_code IS NOT NULL AND EXISTS (SELECT 1 "
        "FROM app.accounts a WHERE a.organisation_id = l.organisation_id) AND NOT EXISTS (SELECT "
        "1 FROM app.accounts a WHERE a.organisation_id = l.organisation_id AND a.code = "
        "l.account_code AND a.status = 'ACTIVE') GROUP BY l.invoice_id",
        unknown_codes, out);
}

static xs_err list_ids(xs_pg *pg, const char *org, const char *conn, const char *after, int limit,
                       json_t **out, char *last)
{
    return xs_domain_list_ids(pg, "app.invoices", "invoice", org, conn, after, limit, out, last);
}

/* Sales invoices are matched on first link by number (Xero keeps ACCREC numbers unique);
 * bills never are, since Xero keeps no bill number unique. */
static xs_err match(xs_pg *pg, const char *org, const char *conn, const xs_match_item *items,
                    size_t nitems, const json_t *keys, xs_match_pairs *out)
{
    bool by_number = false;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *key = xs_json_string_value(k, NULL);
        by_number = by_number || (key != NULL && strcmp(key, "invoice_number") == 0);
    }
    json_t *flat = json_array();
    for (i = 0; i < nitems; i++) {
        const json_t *rec = items[i].rec;
        const char *num = xs_json_str_or(rec, "invoice_number", NULL);
        if (num != NULL && strcmp(xs_json_str_or(rec, "type", ""), "ACCREC") == 0) {
            json_array_append_new(
                flat, json_pack("{s:s, s:s}", "xero_id", items[i].xero_id, "number", num));
        }
    }
    if (!by_number || json_array_size(flat) == 0) {
        json_decref(flat);
        return XS_OK;
    }
    char *text = xs_json_dump(flat, 0);
    json_decref(flat);
    xs_pg_res *r = NULL;
    xs_err e = text != NULL
                   ? xs_pg_q(pg, &r,
                             "SELECT x.xero_id, i.id FROM jsonb_to_recordset($3::jsonb) AS "
                             "x(xero_id text, number text) JOIN app.invoices i ON "
                             "i.organisation_id = $1 AND i.type = 'ACCREC' AND i.invoice_number = "
                             "x.number WHERE NOT EXISTS (SELECT 1 FROM sync.mappings s WHERE "
                             "s.connection_id = $2 AND s.entity = 'invoice' AND s.local_id = i.id)",
                             org, conn, text)
                   : XS_ENOMEM;
    free(text);
    if (e != XS_OK) {
        return e;
    }
    for (int row = 0; e == XS_OK && row < xs_pg_res_nrows(r); row++) {
        if (!xs_match_pairs_add(out, xs_pg_res_get(r, row, 0), xs_pg_res_get(r, row, 1),
                                "invoice_number")) {
            e = XS_ENOMEM;
        }
    }
    xs_pg_res_free(r);
    return e;
}

/* The columns of app.invoices the sync writes, each from its canonical field (the totals
 * zero when Xero has not computed them yet), and the lines the record set carries for
 * app.invoice_lines. */
static const xs_domain_col COLUMNS[] = {
    {"contact_id", "contact", "uuid", NULL},
    {"type", "type", "text", NULL},
    {"invoice_number", "invoice_number", "text", NULL},
    {"reference", "reference", "text", NULL},
    {"status", "status", "text", NULL},
    {"date", "date", "date", NULL},
    {"due_date", "due_date", "date", NULL},
    {"currency_code", "currency_code", "text", NULL},
    {"currency_rate", "currency_rate", "numeric", NULL},
    {"line_amount_types", "line_amount_types", "text", NULL},
    {"sub_total", "sub_total", "numeric", "coalesce(r.sub_total, 0)"},
    {"total_tax", "total_tax", "numeric", "coalesce(r.total_tax, 0)"},
    {"total", "total", "numeric", "coalesce(r.total, 0)"},
    {"amount_due", "amount_due", "numeric", "coalesce(r.amount_due, 0)"},
    {"amount_paid", "amount_paid", "numeric", "coalesce(r.amount_paid, 0)"},
    {"amount_credited", "amount_credited", "numeric", "coalesce(r.amount_credited, 0)"},
    {NULL, "lines", "jsonb", NULL},
};
static const xs_domain_table TABLE = {"app.invoices", "i", COLUMNS,
                                      sizeof(COLUMNS) / sizeof(COLUMNS[0])};

/* lines_sql writes the statement replacing the lines of the record set's invoices (new,
 * free()); NULL when out of memory. */
static char *lines_sql(void)
{
    static const char tail[] =
        "), gone AS (DELETE FROM app.invoice_lines l USING "
        "r WHERE l.invoice_id = r.id AND l.organisation_id = $1) INSERT INTO app.invoice_lines "
        "(organisation_id, invoice_id, position, description, quantity, unit_amount, "
        "account_code, tax_type, tax_amount, line_amount, item_code, discount_rate) SELECT $1, "
        "r.id, (l.ord - 1)::int, l.v->>'description', (l.v->>'quantity')::numeric, "
        "(l.v->>'unit_amount')::numeric, l.v->>'account_code', l.v->>'tax_type', "
        "(l.v->>'tax_amount')::numeric, (l.v->>'line_amount')::numeric, l.v->>'item_code', "
        "(l.v->>'discount_rate')::numeric FROM r CROSS JOIN LATERAL "
        "jsonb_array_elements(r.lines) WITH ORDINALITY AS l(v, ord)";
    char *rs = xs_domain_sql(&TABLE, XS_DOMAIN_SQL_RECORDSET);
    size_t cap = rs != NULL ? strlen(rs) + sizeof(tail) + 32 : 0;
    char *sql = rs != NULL ? malloc(cap) : NULL;
    if (sql != NULL) {
        snprintf(sql, cap, "WITH r AS (SELECT * FROM %s%s", rs, tail);
    }
    free(rs);
    return sql;
}

/* write_lines replaces the lines of the invoices written, in the same transaction
 * (xs_entity_ops.write_more). */
static xs_err write_lines(xs_pg *pg, const char *org, const xs_rows *creates,
                          const xs_rows *updates)
{
    xs_err e = XS_OK;
    const xs_rows *sets[] = {creates, updates};
    for (int s = 0; e == XS_OK && s < 2; s++) {
        if (sets[s]->n == 0) {
            continue;
        }
        char *text = xs_domain_rows_text(sets[s]), *sql = lines_sql();
        e = text != NULL && sql != NULL ? xs_pg_q(pg, NULL, sql, org, text) : XS_ENOMEM;
        free(text);
        free(sql);
    }
    return e;
}

/* line_refusal tells which amount of a line (canonical names) the host application may not
 * give, with why (XS_DOMAIN_WHY_MAX bytes), or NULL: each amount must be a number of its places (""
 * is none), the discount rate from 0 to 100, and the line's amount, quantity x unit_amount, not
 * below zero (Xero would take a negative line on an invoice whose total stays positive; we
 * refuse one here rather than have the invoice fail in a run when the total does not). */
static const char *line_refusal(const json_t *line, char *why)
{
    if (!json_is_object(line)) {
        return NULL; /* canonical() says so */
    }
    for (size_t f = 0; f < NLINE; f++) {
        if (LINE[f].places > 0 && !xs_domain_one_of(LINE[f].name, LINE_COMPUTED) &&
            xs_domain_check_amount(line, LINE[f].name, LINE[f].places,
                                   strcmp(LINE[f].name, "discount_rate") == 0
                                       ? XS_DOMAIN_NOT_NEGATIVE
                                       : XS_DOMAIN_ANY_SIGN,
                                   why) != XS_OK) {
            return LINE[f].name;
        }
    }
    xs_money d;
    json_t *dr = json_object_get(line, "discount_rate");
    if (dr != NULL && xs_json_to_money(dr, &d) == XS_OK && xs_money_cmp(d, MONEY_100) > 0) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "discount_rate is a percentage: at most 100");
        return "discount_rate";
    }
    const char *neg = negative_line(line);
    if (neg != NULL) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "a line's amount (quantity x unit_amount) must not be below zero");
    }
    return neg;
}

static xs_err validate(const json_t *in, const json_t *current, bool partial, json_t **rec,
                       char *field, char *why)
{
    if (!json_is_object(in)) {
        snprintf(field, XS_DOMAIN_WHY_MAX, "record");
        snprintf(why, XS_DOMAIN_WHY_MAX, "the record must be a JSON object");
        return XS_EINVAL;
    }
    static const char *const known[] = {
        "type",     "contact",       "invoice_number", "reference",         "status", "date",
        "due_date", "currency_code", "currency_rate",  "line_amount_types", "lines",  NULL};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        if (!xs_domain_one_of(k, known)) {
            snprintf(field, XS_DOMAIN_WHY_MAX, "%.200s", k);
            snprintf(why, XS_DOMAIN_WHY_MAX,
                     xs_domain_one_of(k, (const char *const[]){"sub_total", "total_tax", "total",
                                                               "amount_due", "amount_paid",
                                                               "amount_credited", NULL})
                         ? "%.200s is computed by Xero from the lines"
                         : "unknown field %.200s",
                     k);
            return XS_EINVAL;
        }
        bool list = strcmp(k, "lines") == 0, number = strcmp(k, "currency_rate") == 0;
        if (list     ? !(json_is_array(v) || json_is_null(v))
            : number ? !(json_is_null(v) || xs_json_is_decimal(v) || json_is_integer(v) ||
                         json_is_string(v))
                     : !(json_is_null(v) || xs_json_string_value(v, NULL) != NULL)) {
            snprintf(field, XS_DOMAIN_WHY_MAX, "%.200s", k);
            snprintf(why, XS_DOMAIN_WHY_MAX, "%.200s must be %s", k,
                     list     ? "an array of lines"
                     : number ? "a number"
                              : "a string or null");
            return XS_EINVAL;
        }
        size_t len = 0;
        if (xs_json_string_value(v, &len) != NULL && len > 255) {
            snprintf(field, XS_DOMAIN_WHY_MAX, "%.200s", k);
            snprintf(why, XS_DOMAIN_WHY_MAX, "%.200s is too long", k);
            return XS_EINVAL;
        }
    }
    if (xs_domain_check_amount(in, "currency_rate", 6, XS_DOMAIN_POSITIVE, why) != XS_OK) {
        snprintf(field, XS_DOMAIN_WHY_MAX, "currency_rate");
        return XS_EINVAL;
    }
    size_t i;
    json_array_foreach(json_object_get(in, "lines"), i, v)
    {
        const char *lk;
        json_t *lv;
        json_object_foreach(json_is_object(v) ? v : NULL, lk, lv)
        {
            bool ok = false;
            for (size_t f = 0; f < NLINE; f++) {
                ok = ok || strcmp(LINE[f].name, lk) == 0;
            }
            if (!ok || xs_domain_one_of(lk, LINE_COMPUTED)) {
                snprintf(field, XS_DOMAIN_WHY_MAX, "lines[%zu].%.100s", i, lk);
                snprintf(why, XS_DOMAIN_WHY_MAX,
                         ok ? "%.100s is computed by Xero" : "unknown line field %.100s", lk);
                return XS_EINVAL;
            }
        }
        const char *bad = line_refusal(v, why);
        if (bad != NULL) {
            snprintf(field, XS_DOMAIN_WHY_MAX, "lines[%zu].%s", i, bad);
            return XS_EINVAL;
        }
    }
    static const char *const fields[][2] = {{"line", "lines"},
                                            {"currency_rate", "currency_rate"},
                                            {"contact", "contact"},
                                            {"status", "status"},
                                            {"currency_code", "currency_code"},
                                            {"type", "type"},
                                            {"line_amount_types", "line_amount_types"},
                                            {"date", "date"},
                                            {NULL, NULL}};
    return xs_domain_merged(in, current, partial, canonical, fields, rec, field, why);
}

static const xs_entity_ref REFS[] = {{"contact", "contact"}, {NULL, NULL}};

/* The totals Xero computes from the lines: kept from its reply to a push (xs_entity_ops). */
static const char *const COMPUTED[] = {"sub_total",   "total_tax",       "total", "amount_due",
                                       "amount_paid", "amount_credited", NULL};

/* line_edits is a line without what Xero computes (new). */
static json_t *line_edits(const json_t *line)
{
    json_t *e = json_copy((json_t *)line);
    for (size_t k = 0; LINE_COMPUTED[k] != NULL; k++) {
        json_object_del(e, LINE_COMPUTED[k]);
    }
    return e;
}

/* edits: what a person edits of an invoice. Xero computes the totals and the lines' amounts,
 * and turns an AUTHORISED invoice PAID when payments cover it (and back when one is
 * deleted): PAID reads as AUTHORISED here, so a payment is no edit. */
static json_t *edits(const json_t *rec)
{
    json_t *e = json_copy((json_t *)rec);
    for (size_t k = 0; COMPUTED[k] != NULL; k++) {
        json_object_del(e, COMPUTED[k]);
    }
    if (strcmp(xs_json_str_or(rec, "status", ""), "PAID") == 0) {
        json_object_set_new(e, "status", json_string("AUTHORISED"));
    }
    json_t *lines = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(rec, "lines"), i, l)
    {
        json_array_append_new(lines, line_edits(l));
    }
    json_object_set_new(e, "lines", lines);
    return e;
}

/* with_computed: Xero's totals over a decided edits view, its status PAID where the view
 * says AUTHORISED and Xero PAID, and each line's amounts from Xero's line at its position
 * when that line is the same (else null, until Xero computes them). */
static json_t *with_computed(const json_t *ed, const json_t *xero)
{
    json_t *r = json_copy((json_t *)ed);
    for (size_t k = 0; COMPUTED[k] != NULL; k++) {
        json_t *v = json_object_get(xero, COMPUTED[k]);
        json_object_set(r, COMPUTED[k], v != NULL ? v : json_null());
    }
    if (strcmp(xs_json_str_or(ed, "status", ""), "AUTHORISED") == 0 &&
        strcmp(xs_json_str_or(xero, "status", ""), "PAID") == 0) {
        json_object_set_new(r, "status", json_string("PAID"));
    }
    json_t *xl = json_object_get(xero, "lines"), *lines = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(ed, "lines"), i, l)
    {
        json_t *line = json_copy(l);
        json_t *theirs = json_array_get(xl, i);
        json_t *te = theirs != NULL ? line_edits(theirs) : NULL;
        bool same = te != NULL && json_equal(te, l);
        json_decref(te);
        for (size_t k = 0; LINE_COMPUTED[k] != NULL; k++) {
            json_t *v = same ? json_object_get(theirs, LINE_COMPUTED[k]) : NULL;
            json_object_set(line, LINE_COMPUTED[k], v != NULL ? v : json_null());
        }
        json_array_append_new(lines, line);
    }
    json_object_set_new(r, "lines", lines);
    return r;
}

/* final: Xero never changes a VOIDED or DELETED invoice again. */
static bool final(const json_t *rec)
{
    const char *st = xs_json_str_or(rec, "status", "");
    return strcmp(st, "VOIDED") == 0 || strcmp(st, "DELETED") == 0;
}

/* write_computed: one statement for a push step's invoices (xs_entity_ops). */
static xs_err write_computed(xs_pg *pg, const xs_rows *rows)
{
    char *text = xs_domain_rows_text(rows);
    if (text == NULL) {
        return XS_ENOMEM;
    }
    xs_err e = xs_pg_q(
        pg, NULL,
        "UPDATE app.invoices i SET sub_total = coalesce(r.sub_total, i.sub_total), total_tax = "
        "coalesce(r.total_tax, i.total_tax), total = coalesce(r.total, i.total), amount_due = "
        "coalesce(r.amount_due, i.amount_due), amount_paid = coalesce(r.amount_paid, "
        "i.amount_paid), amount_credited = coalesce(r.amount_credited, i.amount_credited) FROM "
        "jsonb_to_recordset($1::jsonb) AS r(id uuid, sub_total numeric, total_tax "
        "numeric, total numeric, amount_due numeric, amount_paid numeric, amount_credited "
        "numeric) WHERE i.id = r.id",
        text);
    free(text);
    return e;
}

const xs_entity_ops invoice_ops = {
    .info = &xs_entity_table[XS_ENTITY_INVOICE],
    .xero_path = "/api.xro/2.0/Invoices",
    .id_field = "InvoiceID",
    .ids_param = true,
    .xero_list = "Invoices",
    .analyze = "app.invoices (id, organisation_id, invoice_number, updated_at)",
    .pull_query = "unitdp=4",
    .push_query = "unitdp=4",
    .type_field = "Type",
    .refs = REFS,
    .computed = COMPUTED,
    .write_computed = write_computed,
    .edits = edits,
    .with_computed = with_computed,
    .final = final,
    .read_parts = read_parts,
    .table = "app.invoices",
    .read_xero = read_xero,
    .to_xero = to_xero,
    .retire_item = retire_item,
    .load_local = load_local,
    .list_ids = list_ids,
    .match = match,
    .columns = &TABLE,
    .write_more = write_lines,
    .check_push = check_push,
    .validate = validate,
};
