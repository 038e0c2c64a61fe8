/* fields.c: reading request fields with Xero's type rules, and item validation errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fields.h"

static void type_error(char *why, const char *path, const char *key, const json_t *v,
                       const char *type)
{
    char *txt = v != NULL ? xs_json_dump(v, XS_JSON_COMPACT) : NULL;
    snprintf(why, 256, "Error converting value %.60s to type '%s'. Path '%s.%s'.",
             txt != NULL ? txt : "?", type, path, key);
    free(txt);
}

/* given returns o[key] (borrowed), or NULL when it is absent or null; *present becomes false
 * either way, for the reader to set once it has the value. */
static json_t *given(const json_t *o, const char *key, bool *present)
{
    json_t *v = json_object_get(o, key);
    *present = false;
    return v != NULL && !json_is_null(v) ? v : NULL;
}

xs_err sim__get_str(const json_t *o, const char *key, const char *path, const char **out,
                    bool *present, char *why)
{
    json_t *v = given(o, key, present);
    if (v == NULL) {
        return XS_OK;
    }
    const char *s = xs_json_string_value(v, NULL);
    if (s == NULL) {
        type_error(why, path, key, v, "System.String");
        return XS_EPARSE;
    }
    *out = s;
    *present = true;
    return XS_OK;
}

xs_err sim__get_bool(const json_t *o, const char *key, const char *path, bool *out, bool *present,
                     char *why)
{
    json_t *v = given(o, key, present);
    if (v == NULL) {
        return XS_OK;
    }
    const char *s = xs_json_string_value(v, NULL);
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
    } else if (s != NULL && strcasecmp(s, "true") == 0) {
        *out = true;
    } else if (s != NULL && strcasecmp(s, "false") == 0) {
        *out = false;
    } else {
        type_error(why, path, key, v, "System.Boolean");
        return XS_EPARSE;
    }
    *present = true;
    return XS_OK;
}

xs_err sim__get_money(const json_t *o, const char *key, const char *path, xs_money *out,
                      bool *present, char *why)
{
    json_t *v = given(o, key, present);
    if (v == NULL) {
        return XS_OK;
    }
    xs_money m;
    if (xs_json_to_money(v, &m) != XS_OK) {
        type_error(why, path, key, v, "System.Decimal");
        return XS_EPARSE;
    }
    *out = m;
    *present = true;
    return XS_OK;
}

xs_err sim__get_date(const json_t *o, const char *key, const char *path, xs_time *out,
                     bool *present, char *why)
{
    json_t *v = given(o, key, present);
    if (v == NULL) {
        return XS_OK;
    }
    xs_time t;
    const char *s = xs_json_string_value(v, NULL);
    if (s == NULL || xs_time_parse_any(s, &t) != XS_OK) {
        type_error(why, path, key, v, "System.DateTime");
        return XS_EPARSE;
    }
    *out = t;
    *present = true;
    return XS_OK;
}

xs_err sim__get_uuid(const json_t *o, const char *key, const char *path, xs_uuid *out,
                     bool *present, char *why)
{
    json_t *v = given(o, key, present);
    const char *s = xs_json_string_value(v, NULL);
    if (v == NULL || (s != NULL && s[0] == '\0')) {
        return XS_OK;
    }
    xs_uuid u;
    if (s == NULL || !xs_uuid_parse(s, &u)) {
        type_error(why, path, key, v, "System.Guid");
        return XS_EPARSE;
    }
    if (xs_uuid_is_nil(&u)) {
        return XS_OK;
    }
    *out = u;
    *present = true;
    return XS_OK;
}

void sim__err(json_t *errors, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(errors, json_pack("{s:s}", "Message", buf));
}
