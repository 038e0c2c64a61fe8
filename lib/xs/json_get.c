/*
 * json_get.c: the typed field accessors of json.h (xs_json_get_*, xs_json_str_or).
 *
 * Each looks one key up in an object and reads its value as one type, writing the result
 * only on success. It owns nothing: strings and containers are borrowed from the object. It
 * must not read a decimal as a string (is_text asks xs_json_string_value) nor as an
 * integer.
 */
#include "json_int.h"

/* field looks up key in obj: XS_EINVAL when obj is not an object or key is NULL,
 * XS_ENOTFOUND when absent or null, XS_EINVAL when want is not NULL and says no to the value;
 * otherwise *out is the (borrowed) value. */
static xs_err field(const json_t *obj, const char *key, bool (*want)(const json_t *), json_t **out)
{
    if (!json_is_object(obj) || key == NULL) {
        return XS_EINVAL;
    }
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        return XS_ENOTFOUND;
    }
    if (want != NULL && !want(v)) {
        return XS_EINVAL;
    }
    *out = v;
    return XS_OK;
}

/* The tests field takes: jansson's are macros. */
static bool is_integer(const json_t *v)
{
    return json_is_integer(v);
}

static bool is_boolean(const json_t *v)
{
    return json_is_boolean(v);
}

static bool is_object(const json_t *v)
{
    return json_is_object(v);
}

static bool is_array(const json_t *v)
{
    return json_is_array(v);
}

static bool is_text(const json_t *v)
{
    return xs_json_string_value(v, NULL) != NULL;
}

xs_err xs_json_get_str(const json_t *obj, const char *key, const char **out)
{
    json_t *v;
    xs_err e = field(obj, key, is_text, &v);
    if (e == XS_OK) {
        *out = json_string_value(v);
    }
    return e;
}

xs_err xs_json_get_int(const json_t *obj, const char *key, int64_t *out)
{
    json_t *v;
    xs_err e = field(obj, key, is_integer, &v);
    if (e == XS_OK) {
        *out = (int64_t)json_integer_value(v);
    }
    return e;
}

xs_err xs_json_get_bool(const json_t *obj, const char *key, bool *out)
{
    json_t *v;
    xs_err e = field(obj, key, is_boolean, &v);
    if (e == XS_OK) {
        *out = json_is_true(v);
    }
    return e;
}

xs_err xs_json_get_money(const json_t *obj, const char *key, xs_money *out)
{
    json_t *v;
    xs_money m;
    xs_err e = field(obj, key, NULL, &v);
    if (e == XS_OK && (e = xs_json_to_money(v, &m)) == XS_OK) {
        *out = m;
    }
    return e;
}

xs_err xs_json_get_time(const json_t *obj, const char *key, xs_time *out)
{
    json_t *v;
    xs_time t;
    xs_err e = field(obj, key, is_text, &v);
    if (e == XS_OK && (e = xs_time_parse_any(json_string_value(v), &t)) == XS_OK) {
        *out = t;
    }
    return e;
}

xs_err xs_json_get_object(const json_t *obj, const char *key, json_t **out)
{
    return field(obj, key, is_object, out);
}

xs_err xs_json_get_array(const json_t *obj, const char *key, json_t **out)
{
    return field(obj, key, is_array, out);
}

const char *xs_json_str_or(const json_t *obj, const char *key, const char *dflt)
{
    const char *s;
    return xs_json_get_str(obj, key, &s) == XS_OK ? s : dflt;
}
