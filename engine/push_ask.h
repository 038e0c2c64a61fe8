/*
 * engine/push_ask.h: a sync.push request, typed. xs_domain_push decodes the fields only a
 * push has once, where it starts, and every stage of the push (batch, push_store, lookup)
 * reads them here rather than from the message. It owns nothing: the strings and arrays are
 * borrowed from the message, which outlives the request; it checks nothing either (each
 * stage refuses what it cannot use, as before).
 */
#ifndef XS_ENGINE_PUSH_ASK_H
#define XS_ENGINE_PUSH_ASK_H

#include "engine/domain.h"
#include "engine/step.h"

/* What a sync.push request asks (proto/README.md), beside what every step has (req). */
typedef struct push_ask {
    const step_req *req;    /* the common part: connection, entity, step, final, ... */
    json_t *lookup_names;   /* [{name, local_id}]: names to look up in Xero instead, or NULL */
    json_t *local_ids;      /* the local records to push, or NULL (a scan) */
    const char *scan_after; /* without local_ids: a scan goes on after this id, or NULL */
    int64_t max_calls;      /* the calls the step may make (1 unless given) */
    bool reread;            /* updates are decided again on what Xero holds before they go */
    bool defer_partial;     /* records short of a whole request wait for the next step */
    bool recreate;          /* settings.edits is "recreate": an immutable record's edit is
                               sent as a delete and a create */
} push_ask;

#endif
