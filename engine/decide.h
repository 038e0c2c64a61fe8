/*
 * engine/decide.h: the decision on one record. The part of a record a person edits (so
 * what Xero computes never counts as a change), the decision of lib's xs_sync_decide over it
 * under the connection's settings (policy, fill-empty-only, final records), and whether what
 * a push of ours sent is what Xero now holds (an echo). Pure over canonical records: no
 * database, no Xero.
 */
#ifndef XS_ENGINE_DECIDE_H
#define XS_ENGINE_DECIDE_H

#include "engine/domain.h"
#include "engine/step.h"

/* decide_record is xs_sync_decide over what a person edits: fields Xero computes follow Xero
 * without counting as a change of either side (a payment made in Xero is no edit of its invoice),
 * so d->result is the decided edits with Xero's computed values; edits (or NULL): the local side's
 * writes field by field (xs_sync_decide_edits). *fix (new, or NULL) is the local
 * record with Xero's computed values when the decision keeps its edits (none, or to Xero) but those
 * values differ from the local row's. */
xs_err decide_record(const xs_entity_ops *ops, const json_t *base, const json_t *local,
                     const json_t *xero, int64_t local_at, xs_time xero_at,
                     const xs_sync_edits *edits, const settings *set, xs_sync_decision *d,
                     json_t **fix);

/* decide_sent_matches tells whether Xero's record rec can be the one Xero made from sent, the
 * canonical record of one of our creates: every field a person edits that sent sets, rec
 * holds the same (Xero fills in what was left empty, and computes the rest). */
bool decide_sent_matches(const xs_entity_ops *ops, const json_t *sent, const json_t *rec);

/* decide_holds_sent tells whether Xero's record rec holds exactly what we sent of it (sent, an
 * update), in everything a person edits. */
bool decide_holds_sent(const xs_entity_ops *ops, const json_t *sent, const json_t *rec);

#endif
