/*
 * sim_int.h: what the simulator's modules share. Not a public header: only the simulator's .c files
 * include it. Names are sim_ for types and sim__ for functions shared across files; everything else
 * in a .c file is static.
 *
 * Concurrency: the HTTP server runs one thread per connection. Locks, always taken in this
 * order when more than one is held:
 *   sim.world_lock (rwlock: the tenant list; write only to add tenants or reset; writers are
 *                   preferred, so it is never taken recursively)
 *   sim_tenant.lock (rwlock: the tenant's records and indexes)
 *   sim.id_mu (identity: codes, grants, tokens, connections)
 *   sim.set_mu, sim.lim_mu, sim.fault_mu, sim.stats_mu, sim.idem_mu, webhook mutex (leaves)
 */
#ifndef XS_SIM_INT_H
#define XS_SIM_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"
#include "xs/clock.h"
#include "xs/config.h"
#include "xs/err.h"
#include "xs/http.h"
#include "xs/json.h"
#include "xs/log.h"
#include "xs/money.h"
#include "xs/uuid.h"

#define SIM_API_PREFIX    "/api.xro/2.0"
#define SIM_PAGE_DEFAULT  100
#define SIM_PAGE_MAX      1000
#define SIM_PAGE_LAST     INT32_MAX /* Xero's page parameter is a 32-bit integer */
#define SIM_IDEM_KEY_MAX  128
#define SIM_MAX_CLASSES   32
#define SIM_URL_MAX       1024
#define SIM_KEY_MAX       256
#define SIM_DAY_MS        INT64_C(86400000)
#define SIM_HARD_BODY_MAX (64u * 1024u * 1024u) /* the HTTP layer's own ceiling */

/* ------------------------------------------------------------------ util.c */

/* A small deterministic generator (splitmix64): the simulator's randomness is reproducible
 * under XS_SIM_SEED. Not for secrets (tokens use xs_crypto_random). */
typedef struct sim_rng {
    uint64_t s;
} sim_rng;

/* sim__rng_next returns the next 64 random bits. */
uint64_t sim__rng_next(sim_rng *r);
/* sim__rng_below returns a value in [0, n); n must be > 0. */
uint64_t sim__rng_below(sim_rng *r, uint64_t n);
/* sim__rng_uuid makes a version-4 id from the generator (xs_uuid_from_bytes). */
void sim__rng_uuid(sim_rng *r, xs_uuid *out);
/* sim__hash64 hashes n bytes with a seed (FNV-1a then a 64-bit finaliser). */
uint64_t sim__hash64(const void *data, size_t n, uint64_t seed);
/* sim__mix64 is the splitmix64 finaliser. */
uint64_t sim__mix64(uint64_t x);

/*
 * Packed strings: every text field of a record lives in one allocation, as entries
 * [field u8][length u16 LE][bytes][NUL], ending with 0xFF. Unset and empty are the same.
 * A record of 40 mostly empty fields costs one malloc of a few hundred bytes.
 */
typedef struct sim_strs {
    unsigned char *p; /* owned; NULL: every field empty */
} sim_strs;

#define SIM_STR_MAX 65535

/* sim__strs_get returns field f (borrowed, "" when unset). */
const char *sim__strs_get(const sim_strs *s, unsigned f);
/* sim__strs_build replaces *s with vals[0..n) (NULL or "" = unset; the pointers may point
 * into the old *s). XS_ETOOBIG when one value exceeds SIM_STR_MAX, XS_ENOMEM. */
xs_err sim__strs_build(sim_strs *s, const char *const *vals, unsigned n);
/* sim__strs_load fills vals[0..n) with borrowed pointers to every field ("" when unset). */
void sim__strs_load(const sim_strs *s, const char **vals, unsigned n);
/* sim__strs_free frees s's storage. */
void sim__strs_free(sim_strs *s);

/* A multimap from a 64-bit key hash to record indexes; callers verify candidates. */
typedef struct sim_imap_node {
    uint64_t h;
    uint32_t idx;
    struct sim_imap_node *next;
} sim_imap_node;

typedef struct sim_imap {
    sim_imap_node **b;
    uint32_t nb; /* power of two, or 0 before the first insert */
    uint32_t n;
} sim_imap;

/* sim__imap_add adds (h, idx); XS_ENOMEM. */
xs_err sim__imap_add(sim_imap *m, uint64_t h, uint32_t idx);
/* sim__imap_del removes (h, idx) when present. */
void sim__imap_del(sim_imap *m, uint64_t h, uint32_t idx);
/* sim__imap_first returns the first node with hash h (borrowed), or NULL; continue with
 * sim__imap_next. */
sim_imap_node *sim__imap_first(const sim_imap *m, uint64_t h);
/* sim__imap_next returns the next node after n with hash h (borrowed), or NULL. */
sim_imap_node *sim__imap_next(sim_imap_node *n, uint64_t h);
/* sim__imap_free frees every node and empties m. */
void sim__imap_free(sim_imap *m);

/* A map from owned strings to borrowed values. */
typedef struct sim_smap_node {
    char *key;
    void *val;
    struct sim_smap_node *next;
} sim_smap_node;

typedef struct sim_smap {
    sim_smap_node **b;
    uint32_t nb;
    uint32_t n;
} sim_smap;

/* sim__smap_put sets key (copied) to val, replacing an existing value (returned through
 * *old when not NULL). */
xs_err sim__smap_put(sim_smap *m, const char *key, void *val, void **old);
/* sim__smap_get returns key's value (borrowed), or NULL. */
void *sim__smap_get(const sim_smap *m, const char *key);
/* sim__smap_del removes key and returns its value (or NULL). */
void *sim__smap_del(sim_smap *m, const char *key);
/* sim__smap_each calls fn for every entry; fn returning true removes the entry. */
void sim__smap_each(sim_smap *m, bool (*fn)(const char *key, void *val, void *arg), void *arg);
/* sim__smap_free frees the map, calling free_val (may be NULL) on each value. */
void sim__smap_free(sim_smap *m, void (*free_val)(void *));

/* sim__norm_key writes a comparison key for names and numbers into out (cap bytes): trimmed,
 * inner runs of white space collapsed to one space, ASCII letters lowered. Returns its
 * length. */
size_t sim__norm_key(const char *s, char *out, size_t cap);
/* sim__norm_hash is sim__hash64 of sim__norm_key(s). */
uint64_t sim__norm_hash(const char *s);
/* sim__norm_eq compares two strings by sim__norm_key. */
bool sim__norm_eq(const char *a, const char *b);
/* sim__utf8_len counts the characters (code points) of valid UTF-8 text: Xero's length
 * limits are in characters. */
size_t sim__utf8_len(const char *s);
/* sim__ci_contains tells whether hay contains needle, ASCII case-insensitively. */
bool sim__ci_contains(const char *hay, const char *needle);

/* sim__form_get finds name in an application/x-www-form-urlencoded body and writes its
 * decoded value into *out (new). XS_ENOTFOUND when absent, XS_EPARSE on bad escapes. */
xs_err sim__form_get(const char *body, size_t len, const char *name, char **out);
/* A growable text buffer (for URLs built from request input, which have no fixed bound). */
typedef struct sim_buf {
    char *p; /* owned, NUL-terminated; NULL before the first append */
    size_t n, cap;
    bool failed; /* an append ran out of memory: the text is incomplete */
} sim_buf;

/* sim__url_append appends s to b, percent-encoded for a query string when encode is true.
 * False, with b->failed set, when out of memory (b keeps what it had). */
bool sim__url_append(sim_buf *b, const char *s, bool encode);
/* sim__buf_free frees b's text and empties it. */
void sim__buf_free(sim_buf *b);

/*
 * Counts per 64-bit key that forget the least recently seen keys: two generations of at
 * most cap keys each. A key seen in the older generation moves to the newer one with its
 * count; when the newer one is full, the older one is dropped. So a key keeps its count
 * while fewer than cap other keys have been seen since its last use, and the whole holds at
 * most 2 * cap keys.
 */
typedef struct sim_counts {
    sim_smap cur, old; /* hex key -> count + 1 (as a pointer-sized integer) */
    uint32_t cap;      /* 0: SIM_COUNTS_CAP */
} sim_counts;

#define SIM_COUNTS_CAP 65536u

/* sim__counts_bump returns how often key was seen before and counts this sighting. When the
 * sighting cannot be stored (out of memory) it is not counted. */
uint64_t sim__counts_bump(sim_counts *m, uint64_t key);
/* sim__counts_size returns how many keys are held (both generations). */
size_t sim__counts_size(const sim_counts *m);
/* sim__counts_free forgets every key. */
void sim__counts_free(sim_counts *m);

/* sim__time_parse_http reads an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT"). */
xs_err sim__time_parse_http(const char *text, xs_time *out);
/* sim__time_format_plain writes "YYYY-MM-DDTHH:MM:SS" (Xero's ...String twins). */
void sim__time_format_plain(xs_time t, char *buf);
/* sim__time_format_ms writes "YYYY-MM-DDTHH:MM:SS.mmm" without a zone (webhooks). */
void sim__time_format_ms(xs_time t, char *buf);
/* sim__time_format_7 writes "YYYY-MM-DDTHH:MM:SS.fffffff" (Xero identity dates). */
void sim__time_format_7(xs_time t, char *buf);
/* sim__day_start returns midnight UTC of t's day. */
xs_time sim__day_start(xs_time t);

/* sim__json_xero_date makes a new "/Date(ms+0000)/" string. */
json_t *sim__json_xero_date(xs_time t);
/* sim__json_money makes a new decimal with `places` fractional digits, rounding half up
 * first when m has more. */
json_t *sim__json_money(xs_money m, int places);
/* sim__json_money_min makes a new decimal with at least min places and no trailing zeros
 * beyond them (at most 6). */
json_t *sim__json_money_min(xs_money m, int min);
/* sim__json_uuid makes a new string from an id. */
json_t *sim__json_uuid(const xs_uuid *u);

/* The leaves one record's rendering shares: every empty string field and every empty array
 * of the record is one value (another reference to it), not two allocations and two frees
 * each, which is most of what a large reply costs. Reply trees are only read, never changed
 * below their top level, so the sharing cannot be seen. Start zeroed; end with
 * sim__shared_fini. */
typedef struct sim_shared {
    json_t *str; /* "", made on first use */
    json_t *arr; /* [], made on first use */
} sim_shared;

/* sim__shared_str makes a new string from v (valid UTF-8): another reference to sh's empty
 * string when v is "". */
json_t *sim__shared_str(sim_shared *sh, const char *v);
/* sim__shared_array returns another reference to sh's empty array (new reference). */
json_t *sim__shared_array(sim_shared *sh);
/* sim__shared_fini drops sh's own references; the trees keep theirs. */
void sim__shared_fini(sim_shared *sh);

/* sim__money_line computes round2(q * u * (100 - rate) / 100) exactly (one rounding, half
 * away from zero). XS_ERANGE when the result does not fit. */
xs_err sim__money_line(xs_money q, xs_money u, xs_money rate, xs_money *out);

/* ------------------------------------------------------------------ settings */

typedef enum sim_fault_kind {
    SIM_FAULT_NONE = 0,
    SIM_FAULT_500,         /* 500 before the request is applied */
    SIM_FAULT_503,         /* 503 before the request is applied */
    SIM_FAULT_HANG,        /* no reply for hang_ms, then the connection is closed */
    SIM_FAULT_RESET,       /* TCP reset before the request is applied */
    SIM_FAULT_TRUNCATED,   /* applied; the body is cut short and the connection closed */
    SIM_FAULT_GARBLED,     /* applied; the body bytes are corrupted */
    SIM_FAULT_LOST,        /* applied; the reply is lost (TCP reset) */
    SIM_FAULT_REVOKED,     /* the caller's grant is revoked; 401 (invalid_grant on /token) */
    SIM_FAULT_SLOW,        /* applied, but only after hang_ms (a write's key is held meanwhile) */
    SIM_FAULT_APPLIED_5XX, /* applied (its Idempotency-Key recorded), then a 504 from the gateway */
    SIM_FAULT_NIL_ID,      /* a write is not applied: 200, its items as sent with the nil id */
    SIM_FAULT_429,         /* a 429 as the rate limiter gives one, counting against nothing */
    SIM_FAULT_NKINDS
} sim_fault_kind;

/* The kinds' names, for messages that list them. */
#define SIM_FAULT_KIND_LIST                                                                        \
    "500, 503, hang, reset, truncated, garbled, lost, revoked, slow, applied_5xx, nil_id, 429"

/* sim__fault_name returns "500", "503", "hang", "reset", "truncated", "garbled", "lost",
 * "revoked", "slow", "applied_5xx", "nil_id", "429" (or "none"). */
const char *sim__fault_name(sim_fault_kind k);
/* sim__fault_parse reads a kind name; SIM_FAULT_NONE when unknown. */
sim_fault_kind sim__fault_parse(const char *name);

/* What can change at run time through /_sim/config. Copied whole under set_mu. */
typedef struct sim_settings {
    int64_t limit_concurrent, limit_minute, limit_day, limit_app_minute;
    int64_t minute_window_ms, day_window_ms;
    int64_t latency_ms, jitter_ms;
    uint32_t fault_ppm[SIM_FAULT_NKINDS]; /* probability per kind, in millionths */
    int64_t hang_ms;
    int64_t access_ttl_ms, refresh_grace_ms, refresh_ttl_ms, code_ttl_ms;
    int64_t idem_ttl_ms;
    int64_t max_body;
    int64_t high_volume;
    bool serve_at_root;
    bool require_pkce;
    char webhook_url[SIM_URL_MAX];
    char webhook_key[SIM_KEY_MAX];
    bool webhook_require_itr;
    int64_t webhook_delay_ms, webhook_timeout_ms, webhook_retry_base_ms, webhook_retry_for_ms;
    int64_t webhook_batch_max;
    uint64_t seed;
} sim_settings;

/* sim__fault_rates_parse reads "500=0.01,hang=0.001" into ppm (kinds not named stay as
 * they are). XS_EINVAL with a reason in why (160 bytes) when malformed. */
xs_err sim__fault_rates_parse(const char *text, uint32_t ppm[SIM_FAULT_NKINDS], char *why);

/* ------------------------------------------------------------------ store.c */

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

typedef struct sim_idxlist {
    uint32_t *v;
    uint32_t n, cap;
} sim_idxlist;

/* sim__idxlist_add appends v; XS_ENOMEM. */
xs_err sim__idxlist_add(sim_idxlist *l, uint32_t v);
/* sim__idxlist_del removes the first v, keeping the order of the rest. */
void sim__idxlist_del(sim_idxlist *l, uint32_t v);

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

/* ------------------------------------------------------------------ the context */

typedef struct sim_user {
    xs_uuid id;
    char ids[XS_UUID_STR];
    char email[256];
    char first[64], last[64];
} sim_user;

typedef struct sim_conn {
    xs_uuid id;
    xs_uuid tenant;
    xs_uuid auth_event;
    xs_time created, updated;
    struct sim_conn *next;
} sim_conn;

typedef struct sim_grant {
    uint64_t id;
    xs_uuid auth_event;
    char *scope;
    bool revoked;
    char *refresh_cur;  /* the current refresh token, or NULL (no offline_access) */
    char *refresh_prev; /* the token it replaced, usable inside the grace period */
    xs_time prev_rotated;
    xs_time cur_issued;
    xs_time cur_last_use; /* for the 60-day expiry of unused tokens */
    struct sim_grant *next;
} sim_grant;

typedef struct sim_access {
    sim_grant *grant;
    xs_time expires;
    xs_time issued;
} sim_access;

typedef struct sim_code {
    char *redirect_uri;
    char *scope;
    char *challenge;
    char *nonce;
    xs_uuid auth_event;
    xs_time expires;
    bool used;
} sim_code;

typedef struct sim_script {
    char method[12];
    char path[256]; /* prefix matched against the path ("*" any) */
    sim_fault_kind kind;
    int64_t times; /* remaining */
    int64_t skip;  /* matching requests to let through first */
    struct sim_script *next;
} sim_script;

/* One counter of calls by endpoint and status (stats.c). */
typedef struct sim_stat_ep {
    char key[80];
    int status;
    uint64_t n;
} sim_stat_ep;

/* Distinct (endpoint, status) counters kept; past this, new ones count under "other". */
#define SIM_STATS_EPS_MAX 512

typedef struct sim_logline {
    uint64_t seq;
    xs_time at;
    char method[8];
    char endpoint[64];
    char path[200];
    char tenant[XS_UUID_STR];
    char idem[48];
    int status;
    int32_t ms;
    int32_t latency_ms; /* injected latency drawn for the call */
    uint8_t fault;
    char problem[12];
} sim_logline;

typedef struct sim_dup {
    char tenant[XS_UUID_STR];
    sim_kind kind;
    char first[XS_UUID_STR], dup[XS_UUID_STR];
    uint64_t first_req, dup_req;
    xs_time at;
} sim_dup;

typedef struct sim_webhooks sim_webhooks;

struct sim {
    xs_log *log;
    xs_http_server *http;
    const xs_config *cfg;
    /* immutable after start */
    char addr[64];
    char public_url[SIM_URL_MAX];
    char client_id[256];
    char client_secret[256];
    char redirect_uris[4096]; /* comma separated */
    char scopes[2048];        /* allowed scopes, space separated */
    char app_name[128];
    int64_t call_log_cap;
    int64_t init_tenants, init_records;
    uint8_t jwt_key[32];
    sim_user user;

    pthread_mutex_t set_mu;
    sim_settings set;
    int64_t clock_offset; /* under set_mu */

    pthread_rwlock_t world_lock;
    sim_tenant **tenants;
    size_t ntenants, captenants;
    xs_uuid consent[64]; /* tenants the next authorisation connects; none: all */
    size_t nconsent;

    pthread_mutex_t id_mu;
    sim_smap codes;   /* code -> sim_code */
    sim_smap access;  /* access token -> sim_access */
    sim_smap refresh; /* refresh token -> sim_grant (current or previous) */
    sim_grant *grants;
    uint64_t next_grant;
    sim_conn *conns;

    pthread_mutex_t lim_mu;
    int64_t app_window, app_count, app_in_flight, app_max_in_flight;

    pthread_mutex_t fault_mu;
    sim_script *script;
    sim_counts occurrences; /* request fingerprint -> how often seen (faults, jitter) */

    pthread_mutex_t stats_mu;
    sim_smap eps; /* "<status> <endpoint>" -> sim_stat_ep */
    uint64_t calls_total, limited[4], faults[SIM_FAULT_NKINDS];
    uint64_t idem_replays, idem_conflicts, ims_ignored, ims_used;
    uint64_t dup_count[SIM_NKINDS];
    sim_dup *dups;
    size_t ndups, capdups;
    sim_logline *calls;
    uint64_t call_seq;

    pthread_mutex_t idem_mu;

    pthread_mutex_t hang_mu;
    pthread_cond_t hang_cv;
    uint64_t hang_gen;
    int resets; /* resets in progress: hangs starting meanwhile do not wait */
    bool stopping;

    sim_webhooks *wh;
    uint64_t req_seq; /* under stats_mu */
};

/* sim__now returns the simulator's clock: wall time plus the offset set through /_sim/clock. */
xs_time sim__now(sim *s);
/* sim__settings copies the current settings. */
void sim__settings(sim *s, sim_settings *out);
/* sim__tenant_find returns the tenant with id (borrowed; the caller holds world_lock). */
sim_tenant *sim__tenant_find(sim *s, const xs_uuid *id);
/* sim__tenant_add creates a tenant (world_lock held for writing by the caller). */
xs_err sim__tenant_add(sim *s, const xs_uuid *id, const char *name, const char *currency,
                       sim_tenant **out);
/* sim__reset returns the simulator to its state at start (configuration, tenants, seeding).
 * It wakes injected hangs and latency sleeps first, and hangs that start while it runs do
 * not wait, so none can hold the world lock it needs. */
xs_err sim__reset(sim *s);
/* sim__hang waits up to ms or until the simulator stops or resets (at once while a reset is
 * in progress). */
void sim__hang(sim *s, int64_t ms);

/* ------------------------------------------------------------------ one HTTP call */

#define SIM_MAX_HEADERS 12

typedef struct sim_call {
    sim *s;
    xs_http_req *req;
    sim_settings set;
    uint64_t id;
    char cid[XS_UUID_STR]; /* Xero-Correlation-Id */
    const char *method;
    char endpoint[80]; /* "GET /Contacts/{id}" for counters */
    char path[512];
    int64_t t0;
    sim_tenant *tenant; /* accounting calls, once authorised */
    sim_grant *grant;   /* the caller's grant (borrowed under id_mu rules: stable pointer) */
    char scope[1024];
    /* rate limits */
    bool limited_tenant, counted;
    int64_t win_min, win_day, win_app; /* the windows a counted call was counted in */
    int64_t rem_min, rem_day, rem_app;
    char problem[12];
    sim_fault_kind fault;
    int64_t latency_ms; /* injected latency drawn */
    /* the reply */
    int status;
    json_t *json;
    char *text;
    const char *ctype;
    char *hname[SIM_MAX_HEADERS]; /* owned */
    char *hval[SIM_MAX_HEADERS];  /* owned, any length */
    int nh;
    bool header_lost; /* a header could not be stored: the reply becomes a 500 */
    char idem[SIM_IDEM_KEY_MAX + 1];
} sim_call;

/* sim__reply_json sets the reply (body taken over). */
void sim__reply_json(sim_call *c, int status, json_t *body);
/* sim__reply_json_text sets a JSON reply already written (text taken over; made with
 * xs_json_dump or xs_json_dump_items). NULL, their out of memory, sets a 500. */
void sim__reply_json_text(sim_call *c, int status, char *text);
/* sim__reply_text sets a text/plain reply (copied). */
void sim__reply_text(sim_call *c, int status, const char *text);
/* sim__reply_header adds a reply header (name and value copied, any length). A header that
 * cannot be stored (out of memory, more than SIM_MAX_HEADERS) is never dropped silently:
 * the call's reply becomes a 500 instead. */
void sim__reply_header(sim_call *c, const char *name, const char *value);
/* sim__reply_problem sets Xero's gateway error form {"Type":null,"Title":..,"Status":..,
 * "Detail":..,"Instance":..,"Extensions":{}}. */
void sim__reply_problem(sim_call *c, int status, const char *title, const char *detail);
/* sim__reply_gateway_timeout replaces whatever reply was made (headers included) with the
 * gateway's 504 in the problem form: the backend's answer did not reach the client. */
void sim__reply_gateway_timeout(sim_call *c);
/* sim__reply_too_large sets the 413 for a request body over the limit (plain text). */
void sim__reply_too_large(sim_call *c);
/* sim__reply_xero_error sets {"ErrorNumber":n,"Type":type,"Message":msg} (400 family). */
void sim__reply_xero_error(sim_call *c, int status, int number, const char *type, const char *msg);
/* sim__reply_oauth_error sets {"error":code} (+ error_description when not NULL). */
void sim__reply_oauth_error(sim_call *c, int status, const char *code, const char *desc);
/* sim__envelope makes the accounting reply envelope {Id, Status, ProviderName, DateTimeUTC}
 * (new). */
json_t *sim__envelope(sim_call *c);

/* ------------------------------------------------------------------ identity.c */

void sim__h_authorize(sim_call *c);
/* sim__h_token serves POST /connect/token. */
void sim__h_token(sim_call *c);
/* sim__h_revoke serves POST /connect/revocation. */
void sim__h_revoke(sim_call *c);
/* sim__h_connections serves GET /connections. */
void sim__h_connections(sim_call *c);
/* sim__h_connection_delete serves DELETE /connections/{id}. */
void sim__h_connection_delete(sim_call *c, const char *id);
/* sim__auth_bearer checks the Authorization header; on success it fills c->grant and
 * c->scope and returns true, otherwise it has replied 401. */
bool sim__auth_bearer(sim_call *c);
/* sim__auth_tenant checks xero-tenant-id against the caller's connections and sets
 * c->tenant (world_lock held for reading); otherwise it replies 403 and returns false. */
bool sim__auth_tenant(sim_call *c);
/* sim__scope_has tells whether the space-separated scope list holds any of the names in
 * the NULL-terminated list. */
bool sim__scope_has(const char *scope, const char *const *any);
/* sim__revoke_all revokes every grant of the test user and removes its connections
 * (id_mu taken inside). */
void sim__revoke_all(sim *s);
/* sim__identity_json describes grants and connections for /_sim (new). */
json_t *sim__identity_json(sim *s);
/* sim__identity_reset drops every code, token, grant and connection (id_mu taken inside). */
void sim__identity_reset(sim *s);
/* sim__expire_access makes every access token expired now (id_mu inside). */
void sim__expire_access(sim *s);

/* ------------------------------------------------------------------ limits.c */

/* sim__limits_acquire counts c against its tenant's and the app's limits. On a limit it
 * replies 429 with Retry-After and X-Rate-Limit-Problem and returns false. */
bool sim__limits_acquire(sim_call *c);
/* sim__limits_fault_429 replies 429 as the minute limit does (Retry-After to the end of the
 * tenant's minute window, or the app's for a call without a tenant; X-Rate-Limit-Problem
 * minute) for an injected 429, and takes back what acquiring the call counted: a refused call
 * counts against nothing. */
void sim__limits_fault_429(sim_call *c);
/* sim__limits_release ends an acquired call (in-flight count). */
void sim__limits_release(sim_call *c);
/* sim__limits_headers adds the three X-*-Remaining headers to the reply. */
void sim__limits_headers(sim_call *c);
/* sim__limits_reset clears every window and in-flight counter's maximum. */
void sim__limits_reset(sim *s);
/* sim__limits_json describes a tenant's windows: counts and the time left in each (new). */
json_t *sim__limits_json(sim *s, sim_tenant *t);
/* sim__tenant_phase sets a tenant's window phases from the seed. */
void sim__tenant_phase(sim *s, sim_tenant *t);

/* ------------------------------------------------------------------ faults.c */

/* sim__fault_pick decides the fault for this call (scripted first, then by rate,
 * deterministic under the seed) and counts it in the statistics, except nil_id, which the
 * caller counts (sim__stats_fault) only when the call is a write it can act on. */
sim_fault_kind sim__fault_pick(sim_call *c, const char *body, size_t len, bool accounting);
/* sim__latency sleeps the configured latency plus deterministic jitter for this call. */
void sim__latency(sim_call *c, const char *body, size_t len);
/* sim__faults_script_add appends script entries from JSON; XS_EINVAL with why (256 bytes). */
xs_err sim__faults_script_add(sim *s, const json_t *script, char *why);
/* sim__faults_json lists the scripted faults still to come (new). */
json_t *sim__faults_json(sim *s);
/* sim__faults_reset drops the script and the request occurrence counts. */
void sim__faults_reset(sim *s);

/* ------------------------------------------------------------------ stats.c */

/* sim__stats_begin numbers a call. */
uint64_t sim__stats_begin(sim *s);
/* sim__stats_end records a finished call in the counters and the call log. */
void sim__stats_end(sim_call *c);
/* sim__stats_limited counts a 429 by its X-Rate-Limit-Problem. */
void sim__stats_limited(sim *s, const char *problem);
/* sim__stats_fault counts an injected fault. */
void sim__stats_fault(sim *s, sim_fault_kind k);
/* sim__stats_count counts one of "idem_replay", "idem_conflict", "ims_used", "ims_ignored". */
void sim__stats_count(sim *s, const char *what);
void sim__stats_dup(sim *s, const sim_dup *d);
/* sim__stats_json reports every counter, the duplicates of one tenant when only is not
 * NULL (new; world_lock held by the caller). */
json_t *sim__stats_json(sim *s, const sim_tenant *only);
/* sim__calls_json lists up to limit logged calls after sequence number since, of one tenant
 * when tenant is not NULL (new). */
json_t *sim__calls_json(sim *s, uint64_t since, size_t limit, const char *tenant);
/* sim__stats_reset zeroes the counters and empties the call log. */
void sim__stats_reset(sim *s);
/* sim__stats_init allocates the call log. */
xs_err sim__stats_init(sim *s);
/* sim__stats_fini frees what the statistics hold. */
void sim__stats_fini(sim *s);

/* ------------------------------------------------------------------ webhooks.c */

xs_err sim__webhooks_create(sim *s, sim_webhooks **out);
/* sim__webhooks_destroy stops the delivery thread and frees w (NULL accepted). */
void sim__webhooks_destroy(sim_webhooks *w);
/* sim__webhook_event queues a CONTACT or INVOICE event (kind SIM_CONTACT or SIM_INVOICE). */
void sim__webhook_event(sim *s, const sim_tenant *t, sim_kind kind, const xs_uuid *id, bool create,
                        xs_time at);
/* sim__webhooks_itr runs the intent-to-receive sequence and returns its report (new). */
json_t *sim__webhooks_itr(sim *s, int count);
/* sim__webhooks_flush delivers every queued event now, waiting up to timeout_ms. */
json_t *sim__webhooks_flush(sim *s, int64_t timeout_ms);
/* sim__webhooks_json reports status, counters and the delivery log (new). */
json_t *sim__webhooks_json(sim *s);
/* sim__webhooks_reset drops queued events, counters and intent to receive. */
void sim__webhooks_reset(sim *s);
/* sim__webhooks_enable re-enables a disabled webhook (it needs intent to receive again when
 * that is required). */
void sim__webhooks_enable(sim *s);

/* ------------------------------------------------------------------ entities */

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

/* sim__err appends a validation error {"Message": <formatted>} to the errors array. */
void sim__err(json_t *errors, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* sim__get_str reads obj[key] as text (borrowed). Like the other sim__get_* below it returns
 * XS_OK with the value in *out and *present true, or XS_OK with *present false when the key
 * is absent or null, or XS_EPARSE with a message naming path.key in why (256 bytes) when the
 * JSON type is wrong (the request then fails as PostDataInvalidException). */
xs_err sim__get_str(const json_t *o, const char *key, const char *path, const char **out,
                    bool *present, char *why);
/* sim__get_bool reads a boolean (also "true"/"false" text). */
xs_err sim__get_bool(const json_t *o, const char *key, const char *path, bool *out, bool *present,
                     char *why);
/* sim__get_money reads an exact decimal (a JSON number or numeric text). */
xs_err sim__get_money(const json_t *o, const char *key, const char *path, xs_money *out,
                      bool *present, char *why);
/* sim__get_date reads a date in Xero's /Date(...)/ form or ISO 8601. */
xs_err sim__get_date(const json_t *o, const char *key, const char *path, xs_time *out,
                     bool *present, char *why);
/* sim__get_uuid reads a GUID; "" and the nil GUID count as absent. */
xs_err sim__get_uuid(const json_t *o, const char *key, const char *path, xs_uuid *out,
                     bool *present, char *why);

/* ------------------------------------------------------------------ query.c */

typedef struct sim_where sim_where;

/* sim__where_parse parses a `where` expression for a kind; NULL with a message in why (200
 * bytes) on a syntax error or unknown field. */
sim_where *sim__where_parse(const sim_kind_ops *ops, const char *text, char *why);
/* sim__where_free frees a parsed where clause (NULL accepted). */
void sim__where_free(sim_where *w);
/* sim__where_class_constrained tells whether w tests a class field (Status, ContactStatus,
 * ...): then the kind's default class filter (e.g. no archived contacts) gives way. */
bool sim__where_class_constrained(const sim_where *w);

typedef struct sim_query {
    const sim_kind_ops *ops;
    sim_tenant *t;
    int64_t page; /* 0: unpaged */
    int64_t page_size;
    bool has_ims;
    xs_time ims;
    const char *order; /* raw, may be NULL */
    sim_where *where;
    uint32_t mask; /* classes allowed */
    xs_uuid *ids;  /* IDs filter */
    size_t nids;
    xs_uuid *contact_ids; /* invoices: ContactIDs */
    size_t ncontact_ids;
    char **numbers; /* InvoiceNumbers */
    size_t nnumbers;
    const char *search; /* searchTerm */
    xs_time now;
} sim_query;

typedef struct sim_result {
    uint32_t *idx; /* the page's records (new) */
    size_t n;
    uint32_t total; /* itemCount */
} sim_result;

/* sim__query_run executes q (tenant lock held for reading). XS_EINVAL with why for an order
 * the simulator cannot parse; XS_EUNSUPPORTED when the tenant is above the high-volume
 * threshold and the query is not an efficient one. */
xs_err sim__query_run(sim_query *q, sim_result *out, int64_t high_volume, char *why);

/* ------------------------------------------------------------------ api.c */

/* sim__h_accounting serves /api.xro/2.0/<rest> (rest starts after the prefix). */
void sim__h_accounting(sim_call *c, const char *rest);
/* sim__batch_init / fini prepare a batch context. */
xs_err sim__batch_init(sim_batch *b, sim_call *c, sim_tenant *t, bool user);
/* sim__batch_fini frees a batch context. */
void sim__batch_fini(sim_batch *b);
/* sim__write_items runs a PUT/POST body against a kind (tenant write lock held); it sets the
 * call's reply. existing_id: the {id} from the path, or NULL. */
void sim__write_items(sim_call *c, sim_batch *b, const sim_kind_ops *ops, json_t *body, bool is_put,
                      const char *existing_id, bool summarize);
/* sim__list serves a GET list or GET by id (tenant read lock held by the caller). */
void sim__list(sim_call *c, sim_tenant *t, const sim_kind_ops *ops, const char *id);
/* sim__idem_free frees one idempotency record (a tenant's idem map value). */
void sim__idem_free(void *p);

/* ------------------------------------------------------------------ control.c, seed.c */

void sim__h_control(sim_call *c, const char *rest);

typedef struct sim_seed_spec {
    uint64_t seed;
    uint32_t contacts, invoices, payments, banktx;
    xs_time now;
    int64_t span_days;
} sim_seed_spec;

/* sim__seed fills a tenant with realistic records (tenant write lock held). */
xs_err sim__seed(sim *s, sim_tenant *t, const sim_seed_spec *spec, json_t **report);
/* sim__seed_accounts creates a tenant's chart of accounts. */
xs_err sim__seed_accounts(sim_tenant *t, xs_time now);

#endif
