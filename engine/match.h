/*
 * engine/match.h: first-link matching. Given every candidate pair (Xero record, local row,
 * match key) an entity's ops->match found, choose at most one local row per Xero record and
 * one Xero record per local row, preferring the connection's earlier keys, so that no local
 * row is linked twice. Pure: no database, no Xero, no allocation it does not return.
 */
#ifndef XS_ENGINE_MATCH_H
#define XS_ENGINE_MATCH_H

#include "engine/domain.h"

/* match_assign chooses, among candidate pairs (cands, an entity's match; keys:
 * the connection's match keys, strongest first), a one-to-one linking: as many pairs as
 * possible, each Xero record trying its candidates best key first (Kuhn's augmenting paths). A
 * greedy choice could give a Xero record the local row another record can have by no other key,
 * leaving that one to be created twice; this never does within a page. Returns {xero_id:
 * {"local_id", "key"}} (new), or NULL when out of memory. */
json_t *match_assign(const xs_match_pairs *cands, const json_t *keys);

#endif
