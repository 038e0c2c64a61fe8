/*
 * fields.h: reading a request item's fields with Xero's type rules (text, boolean, decimal,
 * date, GUID; a wrong JSON type fails the whole request as PostDataInvalidException), and
 * the item validation errors. Owns nothing; returns borrowed values.
 */
#ifndef XS_SIM_FIELDS_H
#define XS_SIM_FIELDS_H

#include "util.h"

/* sim__err appends a validation error {"Message": <formatted>} to the errors array. */
void sim__err(json_t *errors, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* sim__get_str reads obj[key] as text (borrowed). Like the other sim__get_* below it returns
 * XS_OK with the value in *out and *present true, or XS_OK with *present false (and *out as
 * it was) when the key is absent or null, or XS_EPARSE with a message naming path.key in why (256
 * bytes) when the JSON type is wrong (the request then fails as PostDataInvalidException). */
xs_err sim__get_str(const json_t *o, const char *key, const char *path, const char **out,
                    bool *present, char *why);
/* sim__get_bool reads a boolean (also "true"/"false" text). */
xs_err sim__get_bool(const json_t *o, const char *key, const char *path, bool *out, bool *present,
                     char *why);
/* sim__get_money reads an exact decimal (a JSON number or numeric text). */
xs_err sim__get_money(const json_t *o, const char *key, const char *path, xs_money *out,
                      bool *present, char *why);
/* sim__get_date reads a date in Xero's /Date(...)/ form or ISO 8601. */
xs_err sim__get_date(const json_t *o, const char *key, const char *path, xs_time *out,
                     bool *present, char *why);
/* sim__get_uuid reads a GUID; "" and the nil GUID count as absent. */
xs_err sim__get_uuid(const json_t *o, const char *key, const char *path, xs_uuid *out,
                     bool *present, char *why);

#endif
