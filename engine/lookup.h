/*
 * engine/lookup.h: records Xero says exist already. When Xero refuses a create because
 * another record holds its key (a contact's name), the existing record is looked up by that
 * key and linked rather than duplicated. One GET; mappings written; nothing sent.
 */
#ifndef XS_ENGINE_LOOKUP_H
#define XS_ENGINE_LOOKUP_H

#include "engine/domain.h"
#include "engine/push_ask.h"
#include "engine/step.h"

/* lookup_item_message joins the ValidationErrors of a refused item. */
void lookup_item_message(const json_t *r, char *buf, size_t cap);

/* push_lookup finds, by name (ask->lookup_names), the Xero records that refused a push as
 * duplicates, and links each to its local record when it is free; a name that another local
 * record holds fails. */
xs_err push_lookup(xs_svc_ctx *ctx, const xs_entity_ops *ops, const push_ask *ask, json_t **reply);

#endif
