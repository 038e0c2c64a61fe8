/*
 * engine/domain.h: the contract between the sync engine and an entity. A domain service
 * describes each of its entities with an xs_entity_ops: its entry in the one registry
 * (engine/sync.h), its column table, how a Xero record and a local row become canonical
 * records, and how local rows are read and matched; between the two sides travel typed
 * records (xs_local_rows, xs_rows, xs_match_item, xs_match_pairs). The engine's rooms serve
 * the bus requests the orchestrator sends over those entities (engine/runtime.h):
 *
 *   sync.pull     GETs of up to max_pages pages (or one of up to 50 ids), every record decided
 *                 against its base (engine/sync.h), each page applied locally in one
 *                 transaction
 *   sync.push     one POST of up to 50 records with summarizeErrors=false and an
 *                 Idempotency-Key; the exact request is stored in its step before it is sent,
 *                 so a retried step sends the same key and the same body
 *   sync.resolve  a conflict held for a person, settled
 *   local.upsert  the host application's write of one record through the REST API
 *
 * Each request makes one call to Xero at a time, with a permit the orchestrator granted for
 * each: one call, but for a sync.pull of several pages (max_pages), which fetches each next
 * page on a helper thread while the one before is written. The reply reports what the last
 * call saw (status, rate-limit headers) and how many calls were made; transient failures
 * (429, 5xx, time-outs, transport) of the first call come back as outcome "retry" rather than
 * as errors, with nothing written.
 *
 * This header also holds the helpers entities are built from (engine/kit.c). It owns no
 * state; an entity must not reach past it into the engine's rooms.
 */
#ifndef XS_ENGINE_DOMAIN_H
#define XS_ENGINE_DOMAIN_H

#include <jansson.h>
#include <stdbool.h>

#include "xs/pg.h"
#include "xs/xero.h"
#include "engine/svc.h"
#include "engine/sync.h"

#define XS_ID_MAX 40

/* The size of every reason ("why") and field name the engine and the entities' ops write for
 * each other: each such buffer holds XS_DOMAIN_WHY_MAX bytes, and writers cut to it. */
#define XS_DOMAIN_WHY_MAX 256

/* A finished pull resumes next time from when its last page was asked for, less this margin
 * (ms) for Xero's clock and for changes that become visible late: what changed in Xero in
 * the margin before a pull's last page is read once more by the next one (and found
 * unchanged), so a burst of more than a page of changes just before a run costs the next
 * incremental run an extra call. */
#define XS_DOMAIN_RESUME_MARGIN_MS 5000

/* Local times travel as milliseconds since the epoch: XS_DOMAIN_MS(col) is the SQL that reads
 * a timestamptz column so (rounded to the millisecond), and XS_DOMAIN_AT_MS(col) that value
 * as a timestamptz again, which is what sync.mappings.local_updated_at holds. A row is
 * unchanged since its mapping when XS_DOMAIN_AT_MS(updated_at) equals local_updated_at; the
 * column itself has microseconds, so comparing it directly would find every row changed. */
#define XS_DOMAIN_MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"
#define XS_DOMAIN_AT_MS(col)                                                                       \
    "('epoch'::timestamptz + " XS_DOMAIN_MS(col) " * interval '1 millisecond')"

/* A reference from one entity's canonical record to another's: the field holds the local id
 * of a record of entity (an invoice's "contact"). Xero's records name it by Xero id in
 * xero_field's object (Contact.ContactID); the domain layer translates through the
 * connection's mappings both ways, so read_xero writes the Xero id into field and to_xero
 * finds the Xero id there. A record whose reference has no mapping yet is "blocked on" it. */
typedef struct xs_entity_ref {
    const char *field;  /* "contact" */
    const char *entity; /* "contact" */
} xs_entity_ref;

/* An entity's ops: what its domain service knows of it beyond its entry in the one table
 * of entities (info), which says its name, whether it is pushed (push), typed and immutable;
 * xs_domain_entities_check checks the two agree. */
/* One column of an entity's local table as the engine writes it (xs_domain_write_local, and a
 * pull's creates with their mappings): col, the table's column ("contact_id"; NULL for a field the
 * record set carries for another table, an invoice's lines); field, the canonical field it is read
 * from, which names it in the rows' record set r; type, that field's SQL type there ("uuid");
 * value, the SQL of the column's value over r when it is not r.<field> ("coalesce(r.total, 0)"),
 * else NULL. */
typedef struct xs_domain_col {
    const char *col, *field, *type, *value;
} xs_domain_col;

/* An entity's local table (a constant, e.g. "app.contacts"), the alias its UPDATE gives it
 * ("c"), and its columns but id and organisation_id, which every table has: the one list
 * the SQL of its writes is built from (xs_domain_sql). */
typedef struct xs_domain_table {
    const char *name, *alias;
    const xs_domain_col *cols;
    size_t n;
} xs_domain_table;

/* A local row to write: its id and canonical record (owned). */
typedef struct xs_row {
    char id[XS_ID_MAX];
    json_t *rec;
} xs_row;

/* Rows to write. Start from {0}; free with xs_rows_fini. */
typedef struct xs_rows {
    xs_row *v;
    size_t n, cap;
} xs_rows;

/* xs_rows_add appends a row (taking rec); false when out of memory (rec freed). */
bool xs_rows_add(xs_rows *s, const char *id, json_t *rec);

/* xs_rows_fini frees the rows and clears s. */
void xs_rows_fini(xs_rows *s);

/* A local row as an entity's load_local reads it. */
typedef struct xs_local_row {
    char id[XS_ID_MAX];
    char org[XS_ID_MAX]; /* its organisation */
    json_t *rec;         /* its canonical record (owned) */
    int64_t at;          /* updated_at, ms since the epoch */
    int64_t edited;      /* when the host application last changed it (ms); at when unknown */
    json_t *touched;     /* {field: ms} of the host application's last write of each field
                            (edited_fields, migration 0012), or NULL (owned) */
    json_t *check;       /* what the entity's check_push needs beyond the record (owned), or NULL */
} xs_local_row;

/* The rows a load_local read, found by id. Start from {0}; free with xs_local_rows_fini. */
typedef struct xs_local_rows {
    xs_local_row *rows;
    size_t n, cap;
    json_t *index; /* id -> position in rows */
} xs_local_rows;

/* xs_local_rows_add appends a row (taking rec), NULL when out of memory (rec freed). The rows
 * found before may move. */
xs_local_row *xs_local_rows_add(xs_local_rows *s, const char *id, const char *org, json_t *rec,
                                int64_t at, int64_t edited);

/* xs_local_rows_find returns the row of id, or NULL. */
xs_local_row *xs_local_rows_find(const xs_local_rows *s, const char *id);

/* xs_local_rows_fini frees the rows and clears s. */
void xs_local_rows_fini(xs_local_rows *s);

/* A Xero record a first link may match to a local row (xs_entity_ops.match). */
typedef struct xs_match_item {
    const char *xero_id;
    const json_t *rec; /* its canonical record */
} xs_match_item;

/* A candidate pair: local row local_id could be Xero's record xero_id, by match key key. */
typedef struct xs_match_pair {
    char xero_id[XS_ID_MAX];
    char local_id[XS_ID_MAX];
    char key[32];
} xs_match_pair;

/* The candidate pairs a match found. Start from {0}; free with xs_match_pairs_fini. */
typedef struct xs_match_pairs {
    xs_match_pair *v;
    size_t n, cap;
} xs_match_pairs;

/* xs_match_pairs_add appends a pair; false when out of memory. */
bool xs_match_pairs_add(xs_match_pairs *s, const char *xero_id, const char *local_id,
                        const char *key);

/* xs_match_pairs_fini frees the pairs and clears s. */
void xs_match_pairs_fini(xs_match_pairs *s);

typedef struct xs_entity_ops {
    /* info: its entry in the one table, &xs_entity_table[XS_ENTITY_...] (engine/sync.h); its
     * name ("contact") is sync.mappings.entity and sync.changes.entity */
    const xs_entity_info *info;
    const char *xero_path; /* "/api.xro/2.0/Contacts" */
    const char *xero_list; /* "Contacts": the array of replies and write bodies */
    /* analyze: the local table with the columns its lookups filter on, re-analysed after
     * big writes ("app.contacts (organisation_id, email_key)"; a constant), or NULL */
    const char *analyze;
    const char *pull_query; /* extra list parameters ("includeArchived=true"), or NULL */
    const char *push_query; /* extra write parameters ("unitdp=4"), or NULL */
    bool unpaged;           /* Xero lists it whole in one reply (Accounts): no page parameters */
    /* id_field: the Xero id's field ("ContactID"); ids_param: the list takes IDs=a,b (Contacts,
     * Invoices); otherwise records are fetched by id with where=<id_field>==Guid("a") OR ... */
    const char *id_field;
    bool ids_param;
    /* type_field: the Xero field a connection's "types" setting limits the pull to ("Type"),
     * or NULL when the entity has none: exactly when info->typed is false */
    const char *type_field;

    /* refs: the references to other entities' records, ended by {NULL}; NULL for none */
    const xs_entity_ref *refs;

    /* read_xero turns Xero's record into a canonical record (new); NULL with a reason in why
     * (XS_DOMAIN_WHY_MAX bytes) for a record it cannot read: that record fails, the others go on.
     * Its id and UpdatedDateUTC are xs_domain_from_xero's. */
    json_t *(*read_xero)(const json_t *x, char *why);
    /* to_xero builds the write item for rec (new); xero_id NULL creates. parts (may be NULL)
     * are Xero's ids of the base's parts (read_parts), in order: an update names each part
     * it keeps by its id, so Xero keeps it as it is rather than replacing it. */
    json_t *(*to_xero)(const json_t *rec, const char *xero_id, const json_t *parts);
    /* read_parts reads the Xero ids of a record's parts, in order (an invoice's LineItemIDs:
     * a new array of strings), or NULL when the entity has none. May be NULL. */
    json_t *(*read_parts)(const json_t *x);
    /* retire_item builds the item that retires in Xero a record deleted locally (new; e.g.
     * ContactStatus ARCHIVED) from its base; NULL when there is nothing to do (it is retired
     * in Xero already), or, with why (XS_DOMAIN_WHY_MAX bytes) said, when Xero cannot retire it
     * (that record fails with why). */
    json_t *(*retire_item)(const char *xero_id, const json_t *base, char *why);
    /* load_local reads local rows by id (ids: array of strings) of organisation org (NULL:
     * any) into *out (empty when called; the caller frees it, whatever the outcome); ids with
     * no row are absent. */
    xs_err (*load_local)(xs_pg *pg, const char *org, const json_t *ids, xs_local_rows *out);
    /* list_ids lists, in id order after `after` ("" for the start), up to limit ids of the
     * local rows of org that may differ from what connection conn last agreed with Xero: no
     * mapping, or an updated_at other than the mapping's local_updated_at (compared to the
     * millisecond, as XS_DOMAIN_AT_MS records it). *out (new array);
     * *scanned (may be NULL) how many rows were looked at, and *last the id of the last one
     * (XS_ID_MAX bytes, "" when the rows ended), so a scan goes on after it. */
    xs_err (*list_ids)(xs_pg *pg, const char *org, const char *conn, const char *after, int limit,
                       json_t **out, char *last);
    /* match finds the local rows not yet linked on connection conn that the n Xero records
     * items, never seen before, could be, by any of the match keys (keys: array of names):
     * every candidate pair into out (empty when called; the caller frees it, whatever the
     * outcome). The engine chooses among them (engine/match.h). NULL when the entity never
     * matches. */
    xs_err (*match)(xs_pg *pg, const char *org, const char *conn, const xs_match_item *items,
                    size_t n, const json_t *keys, xs_match_pairs *out);
    /* columns: the entity's local table and the columns the sync writes, the one list the SQL
     * of its writes is built from (xs_domain_sql); the engine writes its rows with
     * xs_domain_write_local. */
    const xs_domain_table *columns;
    /* write_more writes what rows written hold beyond the table's columns (an invoice's lines,
     * replaced with it), after them, inside the caller's transaction. May be NULL. */
    xs_err (*write_more)(xs_pg *pg, const char *org, const xs_rows *creates,
                         const xs_rows *updates);
    /* create_linked: a pull creates local rows with their mappings in one statement over one
     * document, each row's columns read from its record (map_write_created; so no column may
     * have a value of its own). Otherwise xs_domain_write_local creates them and the mappings
     * follow. */
    bool create_linked;
    /* retire_missing, after a full pull of an unpaged entity (so the whole list), marks as
     * gone in Xero (Status DELETED) the local rows of org linked on connection conn whose
     * Xero id is not in seen (array of ids), of one of types (array of Type values; NULL:
     * any), inside the caller's transaction; *n how many changed. Xero lists no deleted
     * accounts, so this is how a deletion arrives. NULL when the entity has none. */
    xs_err (*retire_missing)(xs_pg *pg, const char *org, const char *conn, const json_t *seen,
                             const json_t *types, int *n);
    /* lookup_key tells, for an item Xero refused with message, the value to look the
     * existing Xero record up by (a contact's name taken by another contact), written into
     * key (XS_DOMAIN_WHY_MAX bytes); false when the refusal is not such a collision. May be NULL.
     */
    bool (*lookup_key)(const json_t *rec, const char *message, char *key);
    /* lookup_query writes the `where` filter finding records by those keys (new string). */
    char *(*lookup_query)(const json_t *keys);
    /* check_push tells whether Xero would take rec in place of base (NULL for a record new
     * to Xero), false with a reason in why (XS_DOMAIN_WHY_MAX bytes) for a change Xero forbids (a
     * status transition, a payment above the amount due): that item fails clearly, nothing is sent
     * for it. row is the record's local row (an entity's load_local may add what the check
     * needs as its check). May be NULL. */
    bool (*check_push)(const json_t *base, const json_t *rec, const xs_local_row *row, char *why);
    /* retired_status ("DELETED"), for an entity info->immutable says Xero never edits once
     * made (payments), and only for one: a local record whose status becomes retired_status
     * is deleted in Xero with retire_item; any other local edit of a record in Xero is refused
     * with a clear error, or, when the connection's "edits" setting for the entity is
     * "recreate", deleted in Xero and created again. */
    const char *retired_status;
    /* computed: the canonical fields Xero computes (an invoice's totals; NULL-terminated), or
     * NULL. After a push Xero took, its values of them go into the base and, through
     * write_computed (in the push's transaction, as the engine's write), into the local rows,
     * so what is checked against them (a payment's amount due) is Xero's at once rather than
     * after the next pull. rows: each record's local id and the computed fields Xero sent. */
    const char *const *computed;
    xs_err (*write_computed)(xs_pg *pg, const xs_rows *rows);
    /* edits is the part of a canonical record a person edits (new): what conflict decisions
     * compare, so that what Xero computes (totals, an invoice turned PAID by a payment)
     * follows Xero without counting as a change of either side. NULL: the record without
     * its computed fields. with_computed lays Xero's computed values (from xero, its whole
     * record) over a decided edits view (new record). NULL: its computed fields. Only for
     * entities with computed fields. */
    json_t *(*edits)(const json_t *rec);
    json_t *(*with_computed)(const json_t *edits, const json_t *xero);
    /* final tells whether Xero holds rec, its record, in a state it never changes again (an
     * invoice VOIDED or DELETED): a local change of it can never reach Xero, so Xero's
     * version is kept on both sides, and a local change is a conflict recorded as undone.
     * May be NULL. */
    bool (*final)(const json_t *rec);
    /* table: the local table of the entity's rows ("app.contacts"; a constant), whose rows
     * a pull locks before it writes them, so a write of the host application made after the
     * rows were read is decided, never overwritten. NULL for read-only mirrors. */
    const char *table;
    /* delete_one: Xero deletes one record a request, POST <xero_path>/<id> with the
     * retire item less its id field (payments, as Xero documents); otherwise retires go in
     * batches like other writes. */
    bool delete_one;
    /* validate turns the host application's JSON (a REST body) into a canonical record
     * (*rec, new), merged over current (the stored record, or NULL for a new one) when
     * partial. XS_EINVAL with the field at fault and a reason (each XS_DOMAIN_WHY_MAX bytes). */
    xs_err (*validate)(const json_t *in, const json_t *current, bool partial, json_t **rec,
                       char *field, char *why);
} xs_entity_ops;

/* xs_domain_entities_check checks the ops of the entities (NULL-terminated) that the domain
 * service of bus domain `domain` ("contacts") syncs against the one table of entities: each
 * names one of the table's entries, the entries of the domain are exactly theirs, and each
 * agrees with its entry (type_field exactly when typed, retired_status exactly when
 * immutable, match exactly when it has match keys, to_xero and table exactly when it is
 * pushed). XS_EINVAL with the first disagreement in why (XS_DOMAIN_WHY_MAX bytes). */
xs_err xs_domain_entities_check(const char *domain, const xs_entity_ops *const *entities,
                                char *why);

/* Helpers for entities. */

/* xs_domain_text reads a text field of a Xero record as a canonical value: a new string, or
 * null for absent, null or empty (after trimming white space at both ends). */
json_t *xs_domain_text(const json_t *x, const char *key);

/* xs_domain_text_or_empty returns the string of a canonical text value, or "" for null. */
const char *xs_domain_text_or_empty(const json_t *rec, const char *key);

/* A field of a list's entries (an invoice's lines): canonical name, Xero's name, and the
 * decimal places of an amount (0: text). */
typedef struct xs_domain_field {
    const char *name, *xero;
    int places;
} xs_domain_field;

/* xs_domain_amount reads in[key] (a JSON number or decimal text) as an exact amount written
 * with `places` places (a new string), null when absent or empty; NULL with a reason in why
 * (XS_DOMAIN_WHY_MAX bytes), naming key, when it is not a number, needs more places, or is out of
 * range. */
json_t *xs_domain_amount(const json_t *in, const char *key, int places, char *why);

/* Which amounts xs_domain_check_amount takes. */
typedef enum xs_domain_sign {
    XS_DOMAIN_ANY_SIGN,     /* any */
    XS_DOMAIN_NOT_NEGATIVE, /* zero or more */
    XS_DOMAIN_POSITIVE,     /* above zero */
} xs_domain_sign;

/* xs_domain_check_amount checks in[key], an amount the host application gives (a REST
 * body): absent or null passes; anything else must be a JSON number or decimal text, not
 * "", with at most `places` places, within range, and of the sign asked. XS_EINVAL with what
 * is wrong, naming key, in why (XS_DOMAIN_WHY_MAX bytes). */
xs_err xs_domain_check_amount(const json_t *in, const char *key, int places, xs_domain_sign sign,
                              char *why);

/* xs_domain_lines reads a list of entries (keyed by Xero's names when xero, else the
 * canonical ones) into canonical entries of fields, in the list's order; NULL with a reason
 * in why when an entry is not an object or an amount cannot be read. A missing list is []. */
json_t *xs_domain_lines(const json_t *in, const xs_domain_field *fields, size_t n, bool xero,
                        char *why);

/* xs_domain_date reads in[key], any date Xero writes ("/Date(ms)/", ISO 8601), as the
 * canonical "YYYY-MM-DD" (new), or null. */
json_t *xs_domain_date(const json_t *in, const char *key);

/* xs_domain_uuid_array writes ids (an array of UUID strings) as a PostgreSQL array literal
 * "{...}" for a `= ANY($n::uuid[])` parameter (new, free()); NULL when one is not a UUID
 * (so no text but UUIDs ever reaches the literal) or when out of memory. */
char *xs_domain_uuid_array(const json_t *ids);

/* xs_domain_from_xero reads a Xero record of entity ops: its id (ops->id_field) into id, its
 * UpdatedDateUTC into *updated and its canonical form (ops->read_xero) into *rec (new).
 * XS_EPARSE with a reason in why (XS_DOMAIN_WHY_MAX bytes) for a record that cannot be read. */
xs_err xs_domain_from_xero(const xs_entity_ops *ops, const json_t *x, json_t **rec,
                           char id[XS_ID_MAX], xs_time *updated, char *why);

/* xs_domain_load_rows is the body of a load_local: sql selects (id, organisation_id, ...,
 * XS_DOMAIN_MS(updated_at) last) the rows with id = ANY($2::uuid[]) of organisation $1 (NULL:
 * any), and row_rec turns row i of r into its canonical record (new; NULL skips the row).
 * A column named edited_ms (XS_DOMAIN_MS of the edited_at migration 0009 keeps) becomes the
 * row's edited: when the host application last changed the row, the local time
 * last_write_wins compares; without it, at. */
xs_err xs_domain_load_rows(xs_pg *pg, const char *sql, const char *org, const json_t *ids,
                           json_t *(*row_rec)(const xs_pg_res *r, int i), xs_local_rows *out);

/* xs_domain_load_checked is xs_domain_load_rows followed by what a push checks the records
 * against: check_sql ($1: the ids as a uuid[]; its first column a record's id) runs when
 * any record was loaded, and each of its rows becomes that record's check, as check makes it
 * of row i (new). */
xs_err xs_domain_load_checked(xs_pg *pg, const char *sql, const char *org, const json_t *ids,
                              json_t *(*row_rec)(const xs_pg_res *r, int i), const char *check_sql,
                              json_t *(*check)(const xs_pg_res *r, int i), xs_local_rows *out);

/* xs_domain_text_cols sets row[names[f][0]] from column first + f of row i of r (text, or
 * null), for f < n: the text fields of a load_local row. */
void xs_domain_text_cols(json_t *row, const xs_pg_res *r, int i, int first,
                         const char *const (*names)[2], size_t n);

/* xs_domain_list_ids is the body of a list_ids over table (a constant, e.g. "app.contacts")
 * whose rows are entity's. */
xs_err xs_domain_list_ids(xs_pg *pg, const char *table, const char *entity, const char *org,
                          const char *conn, const char *after, int limit, json_t **out, char *last);

/* xs_domain_scan_position tells where a scan of organisation org's rows of table (a constant)
 * stands when it goes on after `after` ("": it is over): *done the rows up to after, *left
 * those after it. Written only on success. */
xs_err xs_domain_scan_position(xs_pg *pg, const char *table, const char *org, const char *after,
                               int64_t *done, int64_t *left);

/* The statements xs_domain_sql builds over a table's rows. */
typedef enum xs_domain_sql_kind {
    /* "jsonb_to_recordset($2::jsonb) AS r(id uuid, <field> <type>, ...)": the rows' JSON
     * (xs_domain_rows_text) as the record set r */
    XS_DOMAIN_SQL_RECORDSET,
    /* INSERT of the record set's rows of organisation $1, RETURNING (id, updated_at in ms) */
    XS_DOMAIN_SQL_INSERT,
    /* UPDATE of the rows of organisation $1 by the record set's, RETURNING the same */
    XS_DOMAIN_SQL_UPDATE,
    /* INSERT of organisation $1's rows from the canonical records r.rec of a document's rows
     * r (a pull's creates with their mappings): a jsonb field as r.rec->'<field>', a text one as
     * r.rec->>'<field>', any other cast from that text; no column may have a value */
    XS_DOMAIN_SQL_INSERT_REC,
} xs_domain_sql_kind;

/* xs_domain_sql builds the statement of kind over table t (new string, free()); NULL when
 * out of memory, or for XS_DOMAIN_SQL_INSERT_REC when a column has a value. */
char *xs_domain_sql(const xs_domain_table *t, xs_domain_sql_kind kind);

/* xs_domain_write_local creates and updates local rows of ops's entity of organisation org
 * inside the caller's transaction: inserted and updated over its columns (xs_domain_sql) from
 * the rows' JSON (xs_domain_rows_text), then its write_more; the new updated_at of each into
 * *at (new): {id: ms}. */
xs_err xs_domain_write_local(xs_pg *pg, const xs_entity_ops *ops, const char *org,
                             const xs_rows *creates, const xs_rows *updates, json_t **at);

/* xs_domain_rows_text writes rows as the JSON text of rows for jsonb_to_recordset, each
 * record with its "id" (new string, free()); NULL when out of memory. */
char *xs_domain_rows_text(const xs_rows *rows);

/* xs_domain_merged is the end of a validate: the canonical record (canonical, with xero
 * false) of in laid over current when partial (current may be NULL), into *rec (new). When
 * canonical refuses it, XS_EINVAL with its reason in why and, in field, the field of the
 * first of fields ({word in the reason, field}, ended by {NULL}) the reason names, else
 * "record" (each XS_DOMAIN_WHY_MAX bytes). */
xs_err xs_domain_merged(const json_t *in, const json_t *current, bool partial,
                        json_t *(*canonical)(const json_t *in, bool xero, char *why),
                        const char *const (*fields)[2], json_t **rec, char *field, char *why);

/* xs_domain_one_of tells whether s is one of set (NULL-terminated); false for NULL. */
bool xs_domain_one_of(const char *s, const char *const *set);

#endif
