/*
 * sync.h: the sync core, shared by every domain. Pure logic over canonical records; the
 * domain services turn their rows and Xero's records into canonical form and act on the
 * decisions made here.
 *
 * A canonical record is a JSON object with the domain's own field names (not Xero's), each
 * value normalised: empty text is null, money is an exact decimal string with the entity's
 * places ("12.50"), times are ISO 8601 UTC, lists are in a fixed order. Two records hold the
 * same data exactly when their canonical texts (keys sorted, compact) are equal, so the
 * SHA-256 of that text is the record's checksum: an equal checksum means nothing to do.
 *
 * The mapping row of a record keeps the *base*: the canonical form both sides last agreed
 * on. Against it, a pull or push sees which side changed:
 *   neither            nothing to do (no write, no API call)
 *   only Xero          apply Xero's version locally
 *   only local         send the local version to Xero
 *   both, same data    nothing to do but move the base
 *   both, different    a conflict, settled by the connection's policy for the entity
 */
#ifndef XS_SYNC_H
#define XS_SYNC_H

#include <jansson.h>
#include <stdbool.h>

#include "xs/clock.h"
#include "xs/crypto.h"
#include "xs/err.h"

/* Conflict policies. */
typedef enum xs_policy {
    XS_POLICY_LAST_WRITE_WINS = 0, /* field by field: a field one side changed keeps that
                                      change; one both changed, the later of Xero's
                                      UpdatedDateUTC and local updated_at */
    XS_POLICY_LOCAL_WINS = 1,      /* the host application's data always wins ("CRM priority") */
    XS_POLICY_XERO_WINS = 2,       /* Xero always wins */
    XS_POLICY_MANUAL = 3,          /* held in sync.conflicts for a person; nothing is written */
    XS_POLICY_MERGE = 4,           /* three-way per field; fields changed on both sides fall
                                      back to another policy */
} xs_policy;

/* xs_policy_name returns "last_write_wins", "local_wins", "xero_wins", "manual", "merge". */
const char *xs_policy_name(xs_policy p);

/* xs_policy_parse reads a policy name. XS_EINVAL for anything else. */
xs_err xs_policy_parse(const char *name, xs_policy *out);

/* xs_sync_checksum writes the hex SHA-256 of rec's canonical text into out. */
void xs_sync_checksum(const json_t *rec, char out[2 * XS_SHA256_LEN + 1]);

/* The version of the canonical forms (every entity's read_xero and the checksum above).
 * A change to any of them that alters a record's canonical text must bump it: it is part of
 * every raw sum, so the memos taken by the code before (sync.mappings.xero_raw_sum) no
 * longer match and every record is read again. */
#define XS_SYNC_CANON_VERSION "1"

/* xs_sync_raw_sum writes into out the hex HMAC-SHA256, keyed by the canonical form's version
 * and the entity, of a record's raw text as Xero sent it (n bytes). sync.mappings keeps it
 * with the checksum that text read as: a record sent again byte for byte is known unchanged
 * without being parsed. false (out "") when OpenSSL fails, out of memory. */
bool xs_sync_raw_sum(const char *entity, const char *raw, size_t n,
                     char out[2 * XS_SHA256_LEN + 1]);

/* xs_sync_canonical_text returns rec's canonical text (new, free()): keys sorted, compact,
 * decimals exact. NULL when out of memory. */
char *xs_sync_canonical_text(const json_t *rec);

/* What a decision asks for. */
typedef enum xs_sync_action {
    XS_SYNC_NONE = 0,     /* both sides agree: at most move the base */
    XS_SYNC_TO_LOCAL = 1, /* write result locally */
    XS_SYNC_TO_XERO = 2,  /* send result to Xero */
    XS_SYNC_BOTH = 3,     /* write result locally and send it to Xero (a merge) */
    XS_SYNC_HOLD = 4,     /* a conflict held for a person (manual); write nothing */
} xs_sync_action;

/* xs_sync_action_name returns "none", "to_local", "to_xero", "both", "hold". */
const char *xs_sync_action_name(xs_sync_action a);

typedef struct xs_sync_decision {
    xs_sync_action action;
    bool conflict;    /* both sides changed since the base, differently */
    xs_policy policy; /* the policy that settled it (for a conflict) */
    json_t *result;   /* new: the record both sides hold afterwards (NULL for HOLD) */
    json_t *fields;   /* new, for a merge: {field: "local"|"xero"|"both"} chosen per field
                         that differed; NULL otherwise */
    char reason[160]; /* for people and the conflict log */
} xs_sync_decision;

/* xs_sync_decide compares local and Xero's version of one record against base (NULL on
 * first link, when both sides exist but were never agreed) and fills *out. local_at and
 * xero_at are when each side last changed (local updated_at, Xero UpdatedDateUTC), used by
 * last_write_wins; on a tie Xero wins. fallback settles fields changed on both sides under
 * merge (itself not merge). Records are objects of the same entity; a key missing on one
 * side reads as null. Free *out with xs_sync_decision_fini. */
xs_err xs_sync_decide(const json_t *base, const json_t *local, const json_t *xero, xs_time local_at,
                      xs_time xero_at, xs_policy policy, xs_policy fallback, xs_sync_decision *out);

/* What the local side's row tells of its writes field by field (edited_fields, migration
 * 0012): fields is {field: ms of the host application's last write that changed it} (NULL:
 * none known); a field written after since (when the base was agreed) changed locally even
 * when it holds the base's value again. */
typedef struct xs_sync_edits {
    const json_t *fields;
    xs_time since;
} xs_sync_edits;

/* xs_sync_decide_edits is xs_sync_decide knowing the local side's writes field by field
 * (edits, or NULL): a field the local side wrote since the base changed there whatever its
 * value, and where both sides changed a field, last_write_wins compares that field's local
 * time (else local_at) with xero_at. */
xs_err xs_sync_decide_edits(const json_t *base, const json_t *local, const json_t *xero,
                            xs_time local_at, xs_time xero_at, const xs_sync_edits *edits,
                            xs_policy policy, xs_policy fallback, xs_sync_decision *out);

/* xs_sync_decision_fini frees what d holds and clears it. */
void xs_sync_decision_fini(xs_sync_decision *d);

/* xs_sync_is_empty tells whether a canonical value is empty: null, "", [] or {}. */
bool xs_sync_is_empty(const json_t *v);

/* xs_sync_fill_empty returns local (new) with every empty field taken from xero: the
 * "fill empty fields only" rule of a first link, which keeps local manual edits. */
json_t *xs_sync_fill_empty(const json_t *local, const json_t *xero);

/* What the engine knows of each entity it syncs, in dependency order (a contact before an
 * invoice before a payment; accounts before invoices). */
typedef struct xs_entity_info {
    const char *name;              /* "contact" */
    const char *domain;            /* the bus domain serving it: "contacts" */
    bool pull;                     /* read from Xero */
    bool push;                     /* local changes written to Xero */
    const char *const *match_keys; /* the match keys it accepts, default order; NULL: none */
    bool typed;                    /* its pull can be limited to some Xero Types (settings) */
    bool immutable; /* Xero never edits its records: the "edits" setting says what a local edit
                       does (refuse, recreate) */
    bool two_phase; /* a full pull may be limited (the "import" setting) to the last N months
                       plus every AUTHORISED record */
} xs_entity_info;

/* The entities' places in the one table of them, in dependency order. */
typedef enum xs_entity_id {
    XS_ENTITY_CONTACT,
    XS_ENTITY_ACCOUNT,
    XS_ENTITY_INVOICE,
    XS_ENTITY_PAYMENT,
    XS_ENTITY_BANK_TRANSACTION,
    XS_ENTITY_JOB,      /* XPM jobs, mirrored by xs-jobs (its own sync.pull, no entity ops) */
    XS_ENTITY_DOCUMENT, /* documents put into Xero Files by xs-files (its own sync.push) */
    XS_ENTITY_COUNT,
} xs_entity_id;

/* xs_entity_table is the one table of the entities: what the orchestrator knows of each, and
 * what each entity's xs_entity_ops (engine/domain.h) points at for its name, whether it is
 * pushed, typed and immutable, as &xs_entity_table[XS_ENTITY_...]. */
extern const xs_entity_info xs_entity_table[XS_ENTITY_COUNT];

/* xs_entities returns the table (static) and its length; xs_entity_find one by name. */
const xs_entity_info *xs_entities(size_t *n);
const xs_entity_info *xs_entity_find(const char *name);

/* xs_entity_types_check checks a typed entity's "types" setting: 0 when it is an array of 1 to
 * 16 Xero Type names, each 1 to 32 of A-Z and '-' (so safe in a filter unquoted); 1 when it
 * is not such an array; 2 when one of its names is not such a name. */
int xs_entity_types_check(const json_t *types);

/* xs_entity_match_key_valid tells whether key is one of the entity's match keys. */
bool xs_entity_match_key_valid(const xs_entity_info *e, const char *key);

#endif
