/*
 * engine/mappings.h: the engine's own tables, sync.mappings and sync.conflicts, and the
 * outbox entries a decision queues. Reading the mappings (with their raw-sum memos) and the
 * conflicts held for a person; writing mappings, memos and conflicts inside the caller's
 * transaction. It owns the SQL of those tables and nothing of an entity's own rows.
 */
#ifndef XS_ENGINE_MAPPINGS_H
#define XS_ENGINE_MAPPINGS_H

#include "engine/domain.h"
#include "engine/step.h"

/* map_load reads the mappings of ids (Xero's ids when by_xero, else local ids) into *out
 * (new): {id: {xero_id, local_id, base, checksum, parts?, since}}, since being when the base
 * was agreed with the local row (ms; see SINCE in mappings.c). */
xs_err map_load(xs_svc_ctx *ctx, const char *conn, const char *entity, const json_t *ids,
                bool by_xero, json_t **out);

/* map_load_sums is map_load given, for Xero ids, the checksums of the records just
 * read (sums, aligned with ids): a base is then sent only where its checksum differs — an
 * unchanged record, the common case, needs none. */
xs_err map_load_sums(xs_svc_ctx *ctx, const char *conn, const char *entity, const json_t *ids,
                     const json_t *sums, bool by_xero, json_t **out);

/* map_pending_conflicts reads which of local ids have a conflict waiting for a person into
 * *out (new: {local id: conflict id}) and, when ignored is not NULL, those whose latest
 * conflict a person ignored into *ignored (new: {local id: {"local", "xero"}}, the versions
 * it was ignored at). */
xs_err map_pending_conflicts(xs_svc_ctx *ctx, const char *conn, const char *entity,
                             const json_t *local_ids, json_t **out, json_t **ignored);

/* map_ignored_holds tells whether the divergence a person ignored on local_id (ignored: as
 * map_pending_conflicts gives it) still holds: the local record is still the version it was
 * ignored at, and so is Xero's (xero NULL: not known here, only the local side is asked). Such
 * a record is neither sent nor written, and raises no conflict again. */
bool map_ignored_holds(const json_t *ignored, const char *local_id, const json_t *local,
                       const json_t *xero);

/* A mapping to write: {"local_id", "xero_id", "base", "checksum", "xero_at", "local_at"};
 * sum is the base's checksum. */
void map_add_sum(json_t *list, const char *local_id, const char *xero_id, const json_t *base,
                 const char *sum, xs_time xero_at, xs_time local_at);

void map_add(json_t *list, const char *local_id, const char *xero_id, const json_t *base,
             xs_time xero_at, xs_time local_at);

/* map_write upserts mappings in the open transaction, stamped with txid; a contact
 * linked now leaves the connection's unlinked set (migration 0008). */
xs_err map_write(xs_svc_ctx *ctx, const char *conn, const char *entity, const char *txid,
                 const json_t *list);

/* map_write_memos keeps, in the open transaction, the raw sums of records found unchanged
 * ([{"xero_id", "raw", "checksum"}]), whose mappings are not otherwise written. */
xs_err map_write_memos(xs_svc_ctx *ctx, const char *conn, const char *entity, const json_t *list);

/* A conflict to record: {"local_id", "xero_id", "base", "local", "xero", "policy", "status",
 * "resolution", "merged"}. */
void map_conflict_add(json_t *list, const char *local_id, const char *xero_id, const json_t *base,
                      const json_t *local, const json_t *xero, const xs_sync_decision *d);

xs_err map_write_conflicts(xs_svc_ctx *ctx, const step_req *req, const char *entity,
                           const json_t *list);

/* map_queue_push puts local ids in the outbox, so the next push sends them to Xero. */
xs_err map_queue_push(xs_svc_ctx *ctx, const char *org, const char *entity, const json_t *ids);

/* map_write_created creates, inside the open transaction, the local rows a pull imports with
 * their mappings on connection conn, in one statement over one document, creates: [{"id",
 * "xero_id", "rec", "checksum", "xero_at", "raw", "parts"}] (raw: the raw sum of the text the
 * record was read from, which reads as checksum). Each row's columns are read from its record
 * (ops->columns, XS_DOMAIN_SQL_INSERT_REC); its mapping's base is the record, its
 * local_updated_at the row's updated_at as this transaction writes it (now()), stamped with
 * txid. For entities with ops->create_linked. */
xs_err map_write_created(xs_pg *pg, const xs_entity_ops *ops, const char *org, const char *conn,
                         const char *txid, const json_t *creates);

#endif
