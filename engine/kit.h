/*
 * engine/kit.h: what an entity's ops are built from. The xs_domain_* helpers declared in
 * engine/domain.h that read Xero's fields and the host application's JSON into canonical
 * values (text, amounts, dates, lists), and load and write an entity's local rows in the shapes
 * the engine asks for (the SQL of the writes built from the entity's one column table,
 * xs_domain_sql), the check of a service's entity ops against the one table of entities
 * (xs_domain_entities_check), plus the id and array checks the engine's rooms share. It owns
 * no state and talks to no peer but PostgreSQL through the caller's connection; it never
 * decides anything about sync.
 */
#ifndef XS_ENGINE_KIT_H
#define XS_ENGINE_KIT_H

#include "engine/domain.h"

/* kit_is_nil_id tells whether s is the nil UUID: the id Xero gives an item it did not save
 * (summarizeErrors=false), never a record's id. */
bool kit_is_nil_id(const char *s);

/* kit_xero_id_ok tells whether s names a record in Xero: a UUID, and not the nil one. */
bool kit_xero_id_ok(const char *s);

/* kit_is_hex_sum tells whether s is a SHA-256 in lower-case hex (a checksum or raw sum). */
bool kit_is_hex_sum(const char *s);

/* kit_fixed_array writes items, strings of `width` characters that valid accepts (so safe in an
 * array literal), as a PostgreSQL array literal (new, free()); NULL when one is not valid or
 * out of memory. */
char *kit_fixed_array(const json_t *items, size_t width, bool (*valid)(const char *));

#endif
