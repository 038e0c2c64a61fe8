/*
 * json.h: JSON through jansson, with exact numbers.
 *
 * jansson turns a number with a fraction or exponent into a C double, which would lose money.
 * xs_json_parse therefore keeps every such number as a *decimal*: a jansson string value
 * holding a private tag (a NUL byte and a marker, which parsed input can never produce
 * because xs_json_parse refuses "\u0000" in strings) followed by the number's literal
 * text. xs_json_dump writes decimals back as bare JSON numbers, byte for byte. Integers
 * that fit int64 stay jansson integers; larger integer literals become decimals, so
 * nothing is lost ("-0" is an integer and reads back as 0). A decimal is a number, not a
 * string: the string accessors refuse it. Use the accessors below to read values; never
 * json_real().
 *
 * Ownership follows jansson: "new" references must be json_decref'ed by the caller,
 * "borrowed" ones must not.
 */
#ifndef XS_JSON_H
#define XS_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs/clock.h"
#include "xs/err.h"
#include "xs/money.h"

/* Room for a parse error message, for callers' buffers. */
#define XS_JSON_ERR_MAX 160

/* Flags for xs_json_dump. */
#define XS_JSON_COMPACT   0x1 /* no whitespace (default is also compact; kept for clarity) */
#define XS_JSON_SORT_KEYS 0x2 /* keys in byte order: the canonical form for checksums */
#define XS_JSON_PRETTY    0x4 /* two-space indent, for people */

/* xs_json_parse parses len bytes of JSON text (any top-level value) into a new reference,
 * keeping fractional numbers exact (see above). Duplicate object keys, "\u0000" in strings,
 * NUL bytes, nesting deeper than 64 (a top-level array is depth 1), numbers outside the
 * JSON grammar ("01", "1.", ".5", "+1") and trailing garbage are refused. On failure it
 * returns NULL and, when err is not NULL, writes one line into err (XS_JSON_ERR_MAX bytes):
 * "byte N: reason", where N is a 0-based offset into text: the start of a bad number or
 * the offending byte for the checks above, or for errors found by jansson (whose reason
 * text is kept, e.g. "duplicate object key near '"a"'") the offset just past the bytes
 * read when it stopped. */
json_t *xs_json_parse(const char *text, size_t len, char *err);

/* xs_json_parse_full is xs_json_parse without its fast path (json_parse.c, fast_parse), which
 * gives exactly its results: for json_test, which compares the two. */
json_t *xs_json_parse_full(const char *text, size_t len, char *err);

/* xs_json_dump serialises v (any value, also a scalar; borrowed) into a new NUL-terminated
 * string (free with free()), writing decimals as JSON numbers, byte for byte. Compact unless
 * XS_JSON_PRETTY is given (then ": " and a two-space indent; PRETTY wins over COMPACT).
 * Object keys are always written as strings, even one that holds a tag. For a tree without
 * decimals the text is exactly what jansson's json_dumps writes with the same flags
 * (JSON_COMPACT, or JSON_INDENT(2); JSON_SORT_KEYS; JSON_ENCODE_ANY). Returns NULL only
 * when out of memory, v is NULL, or v cannot be written, as jansson refuses it too: a cycle,
 * or a string or key that is not valid UTF-8 (possible only through jansson's _nocheck
 * functions). */
char *xs_json_dump(const json_t *v, int flags);

/* xs_json_item_fn makes item i (0-based) of an array being written by xs_json_dump_items:
 * a new reference (released once written), or NULL to fail the dump. */
typedef json_t *(*xs_json_item_fn)(size_t i, void *arg);

/* xs_json_dump_items is xs_json_dump of v (borrowed) in which the array slot (borrowed; it
 * must occur exactly once in v and be empty) is written as if it held the n values
 * item(0, arg) .. item(n - 1, arg), made, written and released one at a time. The text is
 * exactly what xs_json_dump writes once those values are appended to slot, but only one of
 * them exists at a time: a reply of a thousand records never holds a thousand trees, and the
 * allocator reuses one record's memory for the next. NULL as xs_json_dump, and when slot is
 * not an array, is not empty or not in v, or an item is NULL. */
char *xs_json_dump_items(const json_t *v, int flags, const json_t *slot, size_t n,
                         xs_json_item_fn item, void *arg);

/* xs_json_decimal makes a new decimal from JSON number text ("12.50", "-1e3", "7"); NULL
 * when text is not a valid JSON number. */
json_t *xs_json_decimal(const char *text);

/* xs_json_money makes a new decimal holding m written with exactly `places` fractional
 * digits (m must not need more; see xs_money_format). NULL on error. */
json_t *xs_json_money(xs_money m, int places);

/* xs_json_is_decimal tells whether v is a decimal made by the functions above. */
bool xs_json_is_decimal(const json_t *v);

/* xs_json_decimal_text returns the number text of a decimal (borrowed), or NULL. */
const char *xs_json_decimal_text(const json_t *v);

/* xs_json_string_value is json_string_value for every module outside json: the characters
 * of the string v (borrowed from v, NUL-terminated) and, when len is not NULL, their count
 * in *len. NULL (len untouched) when v is NULL, not a string, or a decimal: a decimal is a
 * jansson string inside, and its tag must never be read as text. Read strings with this, or
 * with xs_json_get_str, never with jansson's json_string_value. */
const char *xs_json_string_value(const json_t *v, size_t *len);

/* xs_json_to_money reads v as money: a decimal, an integer, or a string holding a decimal
 * ("12.50"). A decimal with an exponent ("1.5e2") is converted exactly first. XS_EINVAL for
 * other types (v NULL too), XS_EPARSE/XS_ERANGE from xs_money_parse (XS_ERANGE also for
 * a non-zero digit beyond 6 places or an out-of-range exponent). *out is written only on
 * success. */
xs_err xs_json_to_money(const json_t *v, xs_money *out);

/* xs_json_number_places returns the decimal places v needs, trailing zeros aside, read as
 * xs_json_to_money reads it (a decimal, an integer: 0, or a string holding a plain decimal);
 * INT_MAX for an exponent too negative to count; -1 when v is none of those. It tells, when
 * xs_json_to_money refuses a number as XS_ERANGE, whether it has too many places or is too
 * large. */
int xs_json_number_places(const json_t *v);

/*
 * Field accessors on an object. Each returns XS_ENOTFOUND when the key is absent or null,
 * XS_EINVAL when the value has the wrong type (or obj is not an object, or key is NULL),
 * and writes *out only on success. Strings are borrowed from obj. A decimal is neither a
 * string nor an integer (even "7" made by xs_json_decimal). xs_json_get_money and
 * xs_json_get_time return the parser's XS_EPARSE / XS_ERANGE for a value of the right type
 * that does not parse.
 */
xs_err xs_json_get_str(const json_t *obj, const char *key, const char **out);
xs_err xs_json_get_int(const json_t *obj, const char *key, int64_t *out);
xs_err xs_json_get_bool(const json_t *obj, const char *key, bool *out);
xs_err xs_json_get_money(const json_t *obj, const char *key, xs_money *out);
/* xs_json_get_time reads a string in Xero's "/Date(...)/" form or ISO 8601. */
xs_err xs_json_get_time(const json_t *obj, const char *key, xs_time *out);
/* xs_json_get_object and xs_json_get_array return borrowed references. */
xs_err xs_json_get_object(const json_t *obj, const char *key, json_t **out);
xs_err xs_json_get_array(const json_t *obj, const char *key, json_t **out);

/* xs_json_str_or returns the string at key, or dflt when absent, null or not a string. */
const char *xs_json_str_or(const json_t *obj, const char *key, const char *dflt);

/* xs_json_equal compares two values deeply, treating a decimal and an integer or another
 * decimal as equal when their numeric values are equal ("1.50" == "1.5"). Numbers are
 * compared exactly, at any size, by normalising their text: sign (dropped for zero),
 * significant digits without leading or trailing zeros, and a power-of-ten exponent
 * ("12.50" and "1.25e1" are 125 x 10^-1). Only when a non-zero number's exponent exceeds
 * 10^17 in magnitude is the literal text compared byte for byte instead. Objects compare
 * regardless of key order; a decimal never equals a string. Two NULLs are equal. */
bool xs_json_equal(const json_t *a, const json_t *b);

/* The JSON arena of a request. Between xs_json_arena_begin() and xs_json_arena_end(), every
 * jansson value the calling thread makes is carved from a per-thread arena, freeing one is
 * free of cost, and the end releases them all at once (keeping the arena's memory for the
 * next request, up to XS_JSON_ARENA_KEEP bytes). A domain service wraps each request in it:
 * a page of a thousand records is some hundred thousand values, and freeing them one by one
 * (with glibc coalescing the chunks) cost a quarter of a pull step.
 *
 * The rule: every value made inside must be dead by the end, none kept in state that
 * outlives the request. Values made before are freed as usual, inside or out. Under
 * AddressSanitizer each value is poisoned when freed and the whole arena at the end, so a
 * value that escapes its request is reported where it is next touched. Not nestable.
 * xs_json_arena_install must run once, before the process starts threads. */
#define XS_JSON_ARENA_KEEP ((size_t)64 << 20)
void xs_json_arena_install(void);
void xs_json_arena_begin(void);
void xs_json_arena_end(void);

/* A point in the thread's arena: xs_json_arena_release gives back every value made since
 * xs_json_arena_mark (all must be dead by then: none kept in a value made before the mark,
 * nor in state). Marks go back in the order they were taken. Outside an arena a mark is
 * empty and releasing it does nothing. */
typedef struct xs_json_arena_pos {
    void *chunk;
    size_t used;
    bool set;
} xs_json_arena_pos;
xs_json_arena_pos xs_json_arena_mark(void);
void xs_json_arena_release(xs_json_arena_pos pos);

/* xs_json_arena_used is how many bytes the thread's arena holds for live values now. */
size_t xs_json_arena_used(void);

/*
 * Walking a JSON text without building it. A page of Xero records is a megabyte of JSON;
 * a caller that needs only some of its records whole finds the others' bytes with these.
 */

/* A byte range of a JSON text: text[off, off + len). */
typedef struct xs_json_span {
    size_t off, len;
} xs_json_span;

/* xs_json_list_spans finds, in the JSON object text[0..len), the array that is the value of
 * its top-level member key (matched byte for byte: a key written with escapes is not
 * found), and the spans of that array's elements, building no value: *list the array's span
 * ('[' to ']'), *items (new, free(); NULL when the array is empty) and *n its elements'.
 * It checks the structure it walks (strings end and hold no control characters, brackets
 * pair up, commas and colons sit where they must, no nesting deeper than 64), not the
 * scalars nor what follows the array: the caller parses what it uses with xs_json_parse.
 * XS_ENOTFOUND when the text is not an object or has no such member holding an array,
 * XS_EPARSE when what it walked is malformed, XS_ENOMEM. */
xs_err xs_json_list_spans(const char *text, size_t len, const char *key, xs_json_span *list,
                          xs_json_span **items, size_t *n);

/* xs_json_member_string finds the top-level member key of the JSON object text[0..len) (a
 * span xs_json_list_spans returned, say) and, when its value is a string without escapes,
 * points *v at its characters (inside the quotes, not NUL-terminated) and *vlen at their
 * count. false when the member is absent, is not such a string, or the text is not a
 * well-formed object as far as walked. */
bool xs_json_member_string(const char *text, size_t len, const char *key, const char **v,
                           size_t *vlen);

#endif
