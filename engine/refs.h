/*
 * engine/refs.h: references between entities (an invoice's contact). Translating a
 * record's references between local ids and Xero ids through the connection's mappings, and
 * the records "blocked on" a reference with no mapping yet, with the message that names it.
 * It reads mappings and writes nothing.
 */
#ifndef XS_ENGINE_REFS_H
#define XS_ENGINE_REFS_H

#include "engine/domain.h"

/* refs_translate rewrites the references (ops->refs) of recs (n canonical records, changed in
 * place) from one side's ids to the other's through connection conn's mappings: Xero ids to
 * local ids (to_local) or back. A record one of whose references has no mapping is left as
 * it is with blocked[i] set, and the id it waits for is added to on[entity] (on: an object
 * of arrays). A null reference stays null. */
xs_err refs_translate(xs_pg *pg, const char *conn, const xs_entity_ops *ops, json_t **recs,
                      size_t n, bool to_local, bool *blocked, json_t *on);

/* refs_blocked_message says why a record waits: the first of its references that has no mapping
 * (translated or not, the record's field still holds the id it could not translate). */
void refs_blocked_message(const xs_entity_ops *ops, const json_t *rec, const json_t *on,
                          bool pulling, char *buf, size_t cap);

/* The records of a pull step that wait for others, and those others by entity: kept outside
 * the JSON arena, since each page's values are given back when it is done. */
#define BLOCKED_REFS 4

typedef struct idlist {
    char (*v)[XS_ID_MAX];
    size_t n, cap;
} idlist;

typedef struct blocked_ids {
    idlist self;
    const char *entity[BLOCKED_REFS]; /* static, from the entity's refs */
    idlist on[BLOCKED_REFS];
} blocked_ids;

bool idlist_add(idlist *l, const char *id);

/* blocked_take adds what refs_translate found a page's records waiting for (on). */
bool blocked_take(blocked_ids *b, const xs_entity_ops *ops, const json_t *on);

/* blocked_json is {"ids": [...], "on": {entity: [...]}}, or NULL when nothing waits. */
json_t *blocked_json(const blocked_ids *b);

void blocked_fini(blocked_ids *b);

#endif
