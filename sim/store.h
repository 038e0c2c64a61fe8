/*
 * store.h: the records of an organisation and their indexes: one table per kind in creation
 * order, the id hash, the update log, the per-class Fenwick trees, the name/number/code maps;
 * the tenant that owns them (with its lock) and the tax rates. Owns every record and index of
 * a tenant. Must not render, validate or answer calls (kinds.h does), nor take locks: callers
 * hold the tenant's lock as each function states.
 */
#ifndef XS_SIM_STORE_H
#define XS_SIM_STORE_H

#include <pthread.h>

#include "util.h"

typedef enum sim_kind {
    SIM_CONTACT = 0,
    SIM_INVOICE,
    SIM_PAYMENT,
    SIM_ACCOUNT,
    SIM_BANKTX,
    SIM_NKINDS
} sim_kind;

/* The part every record starts with. */
typedef struct sim_rec {
    xs_uuid id;
    uint32_t idx;  /* position in its table, in creation order */
    uint32_t upos; /* its live entry in the table's update log */
    uint8_t cls;   /* class (status, type) for filtered paging; < SIM_MAX_CLASSES */
    xs_time created;
    xs_time updated; /* UpdatedDateUTC */
} sim_rec;

/* A Fenwick tree per class over a position space (counts records of that class). */
typedef struct sim_fw {
    int32_t *t[SIM_MAX_CLASSES]; /* 1-based trees of cap + 1 entries; NULL: class empty */
    uint32_t cap;                /* power of two */
} sim_fw;

typedef struct sim_logent {
    xs_time t;
    uint32_t idx;
} sim_logent;

typedef struct sim_table {
    sim_kind kind;
    sim_rec **recs;
    uint32_t n, cap;
    uint32_t *idh; /* id hash: open addressing, idx + 1; 0 empty */
    uint32_t idh_cap;
    sim_logent *log; /* update log: ascending (t, order of change) */
    uint32_t nlog, caplog;
    sim_fw fc; /* classes over creation order */
    sim_fw fu; /* classes over the update log (live entries only) */
    xs_time last_t;
    uint32_t cls_count[SIM_MAX_CLASSES];
} sim_table;

/* A contact's text fields, by index into its packed strings. Addresses and phones are
 * fixed slots, as Xero always returns both address types and all four phone types. */
enum {
    C_NUMBER,
    C_ACCOUNTNUMBER,
    C_NAME,
    C_FIRST,
    C_LAST,
    C_COMPANYNUMBER,
    C_EMAIL,
    C_BANKDETAILS,
    C_TAXNUMBER,
    C_CURRENCY,
    C_WEBSITE,
    C_SALESACCT,
    C_PURCHACCT,
    C_ADDR0, /* POBOX: AddressLine1..4, City, Region, PostalCode, Country, AttentionTo */
    C_ADDR1 = C_ADDR0 + 9,  /* STREET */
    C_PHONE0 = C_ADDR1 + 9, /* DEFAULT, DDI, MOBILE, FAX: Number, AreaCode, CountryCode */
    C_NSTR = C_PHONE0 + 12
};
#define SIM_ADDR_FIELDS  9
#define SIM_PHONE_FIELDS 3

typedef struct sim_person {
    char *first, *last, *email;
    bool include;
} sim_person;

typedef enum { SIM_CS_ACTIVE = 0, SIM_CS_ARCHIVED, SIM_CS_GDPR } sim_contact_status;
typedef enum { SIM_LAT_EXCLUSIVE = 0, SIM_LAT_INCLUSIVE, SIM_LAT_NOTAX } sim_lat;

typedef struct sim_contact {
    sim_rec h;
    sim_strs s;
    uint8_t status;
    int8_t tax_number_type;      /* -1 none */
    int8_t sales_lat, purch_lat; /* -1 none, else SIM_LAT_* */
    sim_person *persons;
    uint8_t npersons;
    sim_idxlist invoices; /* invoice indexes of this contact */
    sim_idxlist banktx;
    uint32_t n_accrec, n_accpay; /* invoices not DELETED/VOIDED, for IsCustomer/IsSupplier */
} sim_contact;

enum { L_DESCRIPTION, L_ITEMCODE, L_ACCOUNTCODE, L_TAXTYPE, L_NSTR };

typedef struct sim_line {
    xs_uuid id;
    sim_strs s;
    xs_money quantity, unit, tax, amount, discount_rate, discount_amount;
    bool has_discount_rate, has_discount_amount;
    bool tax_given; /* TaxAmount set by the client rather than computed */
} sim_line;

typedef enum { SIM_ACCREC = 0, SIM_ACCPAY = 1 } sim_inv_type;
typedef enum {
    SIM_IS_DRAFT = 0,
    SIM_IS_SUBMITTED,
    SIM_IS_AUTHORISED,
    SIM_IS_PAID,
    SIM_IS_VOIDED,
    SIM_IS_DELETED
} sim_inv_status;

enum { I_NUMBER, I_REFERENCE, I_URL, I_CURRENCY, I_BRANDING, I_NSTR };

typedef struct sim_invoice {
    sim_rec h;
    sim_strs s;
    uint8_t type, status, lat;
    bool sent_to_contact;
    uint32_t contact;                                 /* contact index */
    xs_time date, due, expected, planned, fully_paid; /* INT64_MIN: none */
    xs_money rate;
    sim_line *lines;
    uint32_t nlines;
    xs_money subtotal, total_tax, total, total_discount, amount_paid, amount_due;
    sim_idxlist payments; /* every payment, deleted ones too */
} sim_invoice;

#define SIM_NO_TIME INT64_MIN

typedef enum { SIM_PS_AUTHORISED = 0, SIM_PS_DELETED = 1 } sim_pay_status;

enum { P_REFERENCE, P_NSTR };

typedef struct sim_payment {
    sim_rec h;
    sim_strs s;
    uint32_t invoice, account;
    xs_time date;
    xs_money amount, rate, bank_amount;
    uint8_t status;
    uint8_t ptype; /* 0 ACCRECPAYMENT, 1 ACCPAYPAYMENT */
    bool reconciled;
} sim_payment;

enum {
    A_CODE,
    A_NAME,
    A_TYPE,
    A_DESCRIPTION,
    A_BANKNUMBER,
    A_BANKTYPE,
    A_CURRENCY,
    A_TAXTYPE,
    A_SYSTEM,
    A_REPORTING,
    A_REPORTINGNAME,
    A_NSTR
};

typedef enum { SIM_AS_ACTIVE = 0, SIM_AS_ARCHIVED, SIM_AS_DELETED } sim_acct_status;

typedef struct sim_account {
    sim_rec h;
    sim_strs s;
    uint8_t status;
    bool enable_payments, expense_claims, watchlist;
    uint32_t uses; /* lines and payments that reference it */
} sim_account;

enum { B_REFERENCE, B_URL, B_CURRENCY, B_NSTR };

typedef enum { SIM_BS_AUTHORISED = 0, SIM_BS_DELETED, SIM_BS_VOIDED } sim_bt_status;

typedef struct sim_banktx {
    sim_rec h;
    sim_strs s;
    uint8_t type; /* index into sim__bt_types */
    uint8_t status, lat;
    bool reconciled;
    uint32_t contact; /* UINT32_MAX: none */
    uint32_t bank;    /* account index */
    xs_time date;
    xs_money rate;
    sim_line *lines;
    uint32_t nlines;
    xs_money subtotal, total_tax, total;
} sim_banktx;

#define SIM_NONE UINT32_MAX

extern const char *const sim__bt_types[8];

typedef struct sim_tenant {
    xs_uuid id;
    char ids[XS_UUID_STR];
    char *name;
    char currency[4];
    char short_code[8];
    xs_time created;
    pthread_rwlock_t lock;
    sim_table t[SIM_NKINDS];
    sim_imap contact_names;   /* every contact by normalised name */
    sim_imap contact_numbers; /* by normalised ContactNumber */
    sim_imap inv_numbers;     /* ACCREC invoices by normalised InvoiceNumber */
    sim_imap acct_codes, acct_names;
    sim_rng rng;
    uint32_t next_inv_number;
    /* duplicate detection: fingerprint of created item -> first creation (see api.c) */
    sim_smap fingerprints;
    /* rate-limit state (limits.c) and counters (stats.c), under their own mutexes */
    int64_t in_flight, max_in_flight;
    int64_t min_window, min_count, day_window, day_count;
    int64_t phase_min, phase_day;
    /* idempotency cache (api.c), under sim.idem_mu: key -> entry, and the finished entries
     * in the order they were finished (oldest first), for expiry without a scan */
    sim_smap idem;
    struct sim_idem *idem_first, *idem_last;
    /* frees one entry of idem: set by the cache's owner (api.c) with its first entry */
    void (*idem_free)(void *entry);
    /* the Files API's folders, files and associations (files.c), under lock; freed with
     * files_free, set by their owner when it makes them */
    struct sim_files *files;
    void (*files_free)(struct sim_files *files);
    /* Xero Practice Manager data (xpm.c), under lock; freed by xpm_free, set with it */
    struct sim_xpm *xpm;
    void (*xpm_free)(struct sim_xpm *x);
} sim_tenant;

/* sim__table_add appends r (taken over on success) to t in creation order, with r->cls and
 * r->updated set by the caller. A record is added once and never removed (Xero keeps deleted
 * invoices and archived contacts); changes go through sim__table_touch. XS_ENOMEM leaves t
 * unchanged. */
xs_err sim__table_add(sim_table *t, sim_rec *r);
/* sim__table_find returns the record with id (borrowed), or NULL. */
sim_rec *sim__table_find(const sim_table *t, const xs_uuid *id);
/* sim__table_touch records that r changed at time `at` (clamped so the log stays
 * ordered) with new class cls; it moves r to the end of the update log. */
xs_err sim__table_touch(sim_table *t, sim_rec *r, xs_time at, uint8_t cls);
/* sim__table_reclass changes r's class without touching UpdatedDateUTC. */
void sim__table_reclass(sim_table *t, sim_rec *r, uint8_t cls);
/* sim__table_resort rebuilds the update log in (UpdatedDateUTC, creation) order, after a bulk
 * load with past timestamps. */
xs_err sim__table_resort(sim_table *t);
/* sim__table_count returns how many records of the classes in mask exist. */
uint32_t sim__table_count(const sim_table *t, uint32_t mask);
/* sim__fw_select returns the position of the k-th (0-based) member of the classes in mask
 * in fw; the caller ensures k < their total. */
uint32_t sim__fw_select(const sim_fw *fw, uint32_t mask, uint32_t k);
/* sim__fw_prefix returns how many members of the classes in mask lie before position pos. */
uint32_t sim__fw_prefix(const sim_fw *fw, uint32_t mask, uint32_t pos);
/* sim__log_lower returns the first update-log position whose time is >= t. */
uint32_t sim__log_lower(const sim_table *t, xs_time at);

/* sim__tenant_create makes an empty tenant (new) with its seeded generator. */
xs_err sim__tenant_create(sim_tenant **out, const xs_uuid *id, const char *name,
                          const char *currency, uint64_t seed);
/* sim__tenant_destroy frees a tenant and every record (NULL accepted). */
void sim__tenant_destroy(sim_tenant *t);

/* sim__contact_cls returns a contact's class: its ContactStatus. */
uint8_t sim__contact_cls(const sim_contact *c);
/* sim__invoice_cls returns an invoice's class: Type x 6 + Status. */
uint8_t sim__invoice_cls(const sim_invoice *i);
/* sim__payment_cls returns a payment's class: PaymentType x 2 + Status. */
uint8_t sim__payment_cls(const sim_payment *p);
/* sim__banktx_cls returns a bank transaction's class: Type x 3 + Status. */
uint8_t sim__banktx_cls(const sim_banktx *b);

/* sim__contact_at and the four below return the record at index i of a kind (borrowed). */
static inline sim_contact *sim__contact_at(sim_tenant *t, uint32_t i)
{
    return (sim_contact *)t->t[SIM_CONTACT].recs[i];
}
static inline sim_invoice *sim__invoice_at(sim_tenant *t, uint32_t i)
{
    return (sim_invoice *)t->t[SIM_INVOICE].recs[i];
}
static inline sim_payment *sim__payment_at(sim_tenant *t, uint32_t i)
{
    return (sim_payment *)t->t[SIM_PAYMENT].recs[i];
}
static inline sim_account *sim__account_at(sim_tenant *t, uint32_t i)
{
    return (sim_account *)t->t[SIM_ACCOUNT].recs[i];
}
static inline sim_banktx *sim__banktx_at(sim_tenant *t, uint32_t i)
{
    return (sim_banktx *)t->t[SIM_BANKTX].recs[i];
}

/* sim__contact_by_name returns the index of the contact named name (compared by
 * sim__norm_key): the active one, else (unless active_only) the oldest other; SIM_NONE. */
uint32_t sim__contact_by_name(sim_tenant *t, const char *name, bool active_only);
/* sim__contact_by_number returns the oldest contact with that ContactNumber, or SIM_NONE. */
uint32_t sim__contact_by_number(sim_tenant *t, const char *number);
/* sim__invoice_by_number returns the ACCREC invoice (not DELETED) with that number, or
 * SIM_NONE. */
uint32_t sim__invoice_by_number(sim_tenant *t, const char *number);
/* sim__account_by_code returns the account (not DELETED) with that Code, or SIM_NONE. */
uint32_t sim__account_by_code(sim_tenant *t, const char *code);
/* sim__account_by_name returns the account (not DELETED) with that Name, or SIM_NONE. */
uint32_t sim__account_by_name(sim_tenant *t, const char *name);

/* sim__contact_free frees a contact and what it owns (NULL accepted); the same for the
 * other kinds below. The caller has taken the record out of every index, or is destroying
 * the whole tenant. */
void sim__contact_free(sim_contact *c);
/* sim__invoice_free frees an invoice, its lines and its payment list (NULL accepted). */
void sim__invoice_free(sim_invoice *i);
/* sim__payment_free frees a payment (NULL accepted). */
void sim__payment_free(sim_payment *p);
/* sim__account_free frees an account (NULL accepted). */
void sim__account_free(sim_account *a);
/* sim__banktx_free frees a bank transaction and its lines (NULL accepted). */
void sim__banktx_free(sim_banktx *b);
/* sim__lines_free frees n lines and the array (NULL accepted). */
void sim__lines_free(sim_line *lines, uint32_t n);
/* sim__contact_index / _unindex add or remove a contact's name and number keys. */
xs_err sim__contact_index(sim_tenant *t, sim_contact *c);
/* sim__contact_unindex removes a contact's name and number keys (before they change). */
void sim__contact_unindex(sim_tenant *t, sim_contact *c);
/* sim__invoice_index adds an ACCREC invoice's number key. */
xs_err sim__invoice_index(sim_tenant *t, sim_invoice *i);
/* sim__invoice_unindex removes an invoice's number key. */
void sim__invoice_unindex(sim_tenant *t, sim_invoice *i);
/* sim__account_index adds an account's code and name keys. */
xs_err sim__account_index(sim_tenant *t, sim_account *a);
/* sim__account_unindex removes an account's code and name keys. */
void sim__account_unindex(sim_tenant *t, sim_account *a);

/* Tax rates: the simulator's organisation uses New Zealand's GST set. */
typedef struct sim_taxrate {
    const char *type;
    const char *name;
    xs_money rate; /* percent */
} sim_taxrate;
/* sim__taxrate returns the tax rate with that TaxType code (static), or NULL. */
const sim_taxrate *sim__taxrate(const char *type);

#endif
