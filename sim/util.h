/*
 * util.h: the simulator's base: deterministic randomness (and ids made from it with
 * xs_uuid), packed strings, index lists, hash maps, forgetful counters, text, URL and form
 * helpers, the time forms Xero writes that xs_clock does not, JSON leaf values and the exact
 * line arithmetic. Owns only what each value it hands out owns; no locks, no simulator state.
 * Must not know about tenants, calls or HTTP (everything else in sim/ builds on it).
 */
#ifndef XS_SIM_UTIL_H
#define XS_SIM_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs/buf.h"
#include "xs/clock.h"
#include "xs/err.h"
#include "xs/json.h"
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

/* A list of record indexes. */
typedef struct sim_idxlist {
    uint32_t *v;
    uint32_t n, cap;
} sim_idxlist;

/* sim__idxlist_add appends v; XS_ENOMEM. */
xs_err sim__idxlist_add(sim_idxlist *l, uint32_t v);
/* sim__idxlist_del removes the first v, keeping the order of the rest. */
void sim__idxlist_del(sim_idxlist *l, uint32_t v);

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
/* sim__form_next is sim__form_get from byte *pos of body on, for a name a form repeats (its
 * checkboxes): on XS_OK *pos is moved past the value found, so the next call finds the next
 * one. Start with *pos = 0. */
xs_err sim__form_next(const char *body, size_t len, const char *name, size_t *pos, char **out);
/* sim__url_append appends s to b (an xs_buf: URLs built from request input have no fixed
 * bound), percent-encoded for a query string when encode is true. False, with b->failed set,
 * when out of memory (b keeps what it had). */
bool sim__url_append(xs_buf *b, const char *s, bool encode);
/* sim__html_append appends s to b escaped for HTML text and attribute values (& < > " ').
 * False when b has failed (out of memory). */
bool sim__html_append(xs_buf *b, const char *s);

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

#endif
