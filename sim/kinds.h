/*
 * kinds.h: the five kinds of record (contacts.c, invoices.c, payments.c, accounts.c,
 * banktx.c): how each renders, validates (plan) and applies an item, behind one table of
 * operations per kind; the pieces they share (lines, nested references, an item's
 * CurrencyRate and LineAmountTypes, recording a change).
 * Owns the records it creates once they are added to a table. Called with the tenant lock
 * held; must not parse the HTTP request or reply (api.c does).
 */
#ifndef XS_SIM_KINDS_H
#define XS_SIM_KINDS_H

#include "reply.h"
#include "store.h"

/* How a record is rendered. */
typedef enum sim_view {
    SIM_VIEW_FULL = 0, /* GET by id and paged lists */
    SIM_VIEW_SUMMARY,  /* summaryOnly=true */
    SIM_VIEW_UNPAGED,  /* unpaged lists (invoices without line items) */
    SIM_VIEW_NESTED,   /* inside another record (an invoice's contact, a payment's invoice) */
} sim_view;

typedef struct sim_render_opts {
    sim_view view;
    bool unitdp4;
    xs_time now;
} sim_render_opts;

/* A batch being applied: what earlier items of the same request already claimed. */
typedef struct sim_batch {
    sim_call *c;
    sim_tenant *t;
    bool unitdp4;
    bool user; /* a change made "as a Xero user" through /_sim: no fingerprints */
    xs_time now;
    json_t *names;   /* normalised contact names claimed: object name -> true */
    json_t *numbers; /* normalised ACCREC numbers claimed */
    json_t *paid;    /* invoice id -> decimal text of amounts claimed */
    json_t *codes;   /* account codes and names claimed */
    char path[96];   /* the item being planned, "Contacts[3]", for messages */
} sim_batch;

typedef struct sim_kind_ops {
    sim_kind kind;
    const char *plural;          /* "Contacts" */
    const char *id_field;        /* "ContactID" */
    const char *singular;        /* "contact", for messages */
    const char *const *fields;   /* known top-level fields, for where/order checks */
    const char *class_fields[3]; /* fields whose equality maps onto classes */
    bool paged;
    bool has_archive; /* includeArchived applies */
    /* what Xero's schema gives this kind to mark a failed item: the boolean's name
     * ("HasValidationErrors", "HasErrors" or NULL) and whether StatusAttributeString exists */
    const char *error_flag;
    bool status_attr;
    /* when not NULL, records of this kind change only one at a time through POST
     * /{plural}/{id}: an item of a batch (PUT or POST /{plural}) naming an existing record
     * is an item validation error with this message */
    const char *batch_refusal;
    /* render r (new). The tree's leaves may be shared (sim_shared): callers may add or
     * replace members at its top level but must not change anything below it. */
    json_t *(*render)(sim_tenant *t, const sim_rec *r, const sim_render_opts *o);
    /* plan validates item (create when existing is NULL) against the tenant and the batch;
     * it appends {"Message":..} objects to errors, and on success returns a plan. XS_EPARSE
     * with why when a value has the wrong JSON type (the whole request then fails as
     * PostDataInvalidException). */
    xs_err (*plan)(sim_batch *b, const json_t *item, sim_rec *existing, void **out, json_t *errors,
                   char *why);
    /* apply commits a plan (entity specific, made by plan), returning the record. */
    xs_err (*apply)(sim_batch *b, void *plan, sim_rec **out);
    void (*plan_free)(void *plan);
    /* class of a field value ("ACTIVE" for ContactStatus); -1 when not a class value. The
     * mask of every class matching field == value. */
    uint32_t (*class_mask)(const char *field, const char *value);
    uint32_t all_mask;     /* every class in use */
    uint32_t default_mask; /* classes listed without filters (contacts: not archived) */
} sim_kind_ops;

extern const sim_kind_ops sim__contact_ops, sim__invoice_ops, sim__payment_ops, sim__account_ops,
    sim__banktx_ops;
/* sim__ops returns the operations of a kind (static). */
const sim_kind_ops *sim__ops(sim_kind k);

/* Shared by invoices and bank transactions (invoices.c). */
typedef struct sim_lines_in {
    sim_line *lines; /* in the order sent */
    uint32_t n;
    uint32_t kept;  /* lines that named an old line by its LineItemID */
    uint32_t added; /* lines without a LineItemID: new lines */
    bool changed;   /* a kept line's editable values differ from the old line's */
} sim_lines_in;

/* sim__lines_parse reads LineItems into lines (new), as Xero updates a document's lines: a
 * line naming an old line (may be NULL) by LineItemID updates it in place (the values it
 * does not send stay) and keeps the id; a line without one is new and gets a new id; an old
 * line not named is gone. A LineItemID that is not one of the old lines, or that appears
 * twice, is a validation error. errors gets messages; XS_EPARSE with why on type errors. */
xs_err sim__lines_parse(sim_batch *b, const json_t *arr, const sim_line *old, uint32_t nold,
                        bool sales, bool allow_discount, sim_lines_in *out, json_t *errors,
                        char *why);
/* sim__lines_total computes each line's tax (unless given) and the document totals. */
xs_err sim__lines_total(sim_line *lines, uint32_t n, int lat, xs_money *subtotal, xs_money *tax,
                        xs_money *total, xs_money *discount);
/* sim__lat_parse reads "Exclusive", "Inclusive" or "NoTax" (any case); -1 otherwise. */
int sim__lat_parse(const char *s);
extern const char *const sim__lat_names[3];
/* sim__get_lat reads an item's LineAmountTypes as sim__get_str reads text (fields.h): *out is
 * its index in sim__lat_names, or -1 when it names none (the validation error then in errors). */
xs_err sim__get_lat(const json_t *item, const char *path, int *out, bool *present, json_t *errors,
                    char *why);
/* sim__get_rate reads an item's CurrencyRate as sim__get_money does (fields.h): *out is the
 * rate, or zero when it is not greater than zero (the validation error then in errors). */
xs_err sim__get_rate(const json_t *item, const char *path, xs_money *out, bool *present,
                     json_t *errors, char *why);
/* sim__currency_ok tells whether a currency code is enabled for the organisations. */
bool sim__currency_ok(const char *code);
/* sim__contact_count moves a contact's IsCustomer/IsSupplier counters. */
void sim__contact_count(sim_tenant *t, uint32_t contact, int type, int delta);
/* sim__contact_auto finds the active contact named name, or creates it (as Xero does for an
 * invoice naming an unknown contact). */
xs_err sim__contact_auto(sim_batch *b, const char *name, uint32_t *out);
/* sim__lines_render renders LineItems (new); unit amounts with 4 places when unitdp4. */
json_t *sim__lines_render(const sim_line *lines, uint32_t n, bool unitdp4);
/* sim__lines_copy deep-copies lines (new). */
xs_err sim__lines_copy(const sim_line *in, uint32_t n, sim_line **out);
/* sim__lines_uses adjusts account use counts for lines (+1 or -1). */
void sim__lines_uses(sim_tenant *t, const sim_line *lines, uint32_t n, int delta);

/* Invoices and payments cooperate (payments.c calls these). */
/* sim__invoice_recalc recomputes AmountPaid/AmountDue/Status from the live payments. */
void sim__invoice_recalc(sim_tenant *t, sim_invoice *inv);
/* sim__contact_ref renders {ContactID, Name} for nesting (new). */
json_t *sim__contact_ref(sim_tenant *t, uint32_t idx);
/* sim__account_ref renders {AccountID, Code, Name} (new). */
json_t *sim__account_ref(sim_tenant *t, uint32_t idx);
/* sim__invoice_nested renders an invoice inside a payment (new). */
json_t *sim__invoice_nested(sim_tenant *t, const sim_invoice *inv, const sim_render_opts *o);
/* sim__payment_brief renders a payment inside an invoice (new). */
json_t *sim__payment_brief(sim_tenant *t, const sim_payment *p);

/* sim__touch records a change made now to a record: UpdatedDateUTC moves, the class is
 * updated, and CONTACT/INVOICE changes fire webhooks. */
xs_err sim__touch(sim_batch *b, sim_kind k, sim_rec *r, bool create);

/* sim__seed_accounts creates a tenant's chart of accounts. */
xs_err sim__seed_accounts(sim_tenant *t, xs_time now);

#endif
