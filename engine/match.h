/*
 * engine/match.h: first-link matching. Given every candidate pair (Xero record, local row,
 * match key) an entity's ops->match found, choose at most one local row per Xero record and
 * one Xero record per local row, preferring the connection's earlier keys, so that no local
 * row is linked twice. Pure: no database, no Xero, no allocation it does not return.
 */
#ifndef XS_ENGINE_MATCH_H
#define XS_ENGINE_MATCH_H

#include "engine/domain.h"

json_t *match_assign(const json_t *cands, const json_t *keys);

#endif
