/*
 * proto.h: the messages xero-sync's processes exchange over the bus, and their one codec.
 *
 * Every message is a JSON envelope (see proto/README.md, the specification):
 *   {"v":1, "type":"sys.ping", "id":"r-1f3a", "conn":null, "body":{...}}
 * A message type is declared once, in the table in proto.c, with the fields of its body;
 * xs_proto_encode refuses to send a body that does not match its declaration, and
 * xs_proto_decode refuses to accept one. A malformed or unknown message is an error the
 * receiver answers with an "error" reply; it never crashes anything.
 */
#ifndef XS_PROTO_H
#define XS_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs/err.h"
#include "xs/uuid.h"

#define XS_PROTO_VERSION  1
#define XS_PROTO_TYPE_MAX 48  /* longest type name + NUL */
#define XS_PROTO_ID_MAX   65  /* request ids: 1-64 characters of [A-Za-z0-9_.:-] */
#define XS_PROTO_ERR_MAX  256 /* room for a decode error message */

/* What a message is for. */
typedef enum xs_proto_kind {
    XS_PROTO_REQUEST = 0, /* hub -> domain service, answered by its reply type */
    XS_PROTO_REPLY = 1,   /* domain service -> hub */
    XS_PROTO_EVENT = 2,   /* domain service -> hub over pub/sub; never answered */
} xs_proto_kind;

/* The kinds of value a body field may hold. */
typedef enum xs_proto_ftype {
    XS_PF_STRING,  /* JSON string; min/max bound its length in bytes (max 0: no bound) */
    XS_PF_INT,     /* JSON integer within [min, max] */
    XS_PF_BOOL,    /* JSON true/false */
    XS_PF_UUID,    /* string in canonical UUID form */
    XS_PF_TIME,    /* string, ISO 8601 UTC */
    XS_PF_DECIMAL, /* exact decimal (a JSON number kept exact, or a decimal string) */
    XS_PF_OBJECT,  /* JSON object, checked by the handler */
    XS_PF_ARRAY,   /* JSON array; min/max bound its length (max 0: no bound) */
    XS_PF_ANY,     /* any JSON value */
} xs_proto_ftype;

typedef struct xs_proto_field {
    const char *name;
    xs_proto_ftype type;
    bool required;
    int64_t min, max;
} xs_proto_field;

typedef struct xs_proto_spec {
    const char *type; /* "sys.ping" */
    xs_proto_kind kind;
    const char *reply; /* requests: the type of a successful reply; else NULL */
    bool needs_conn;   /* the envelope's "conn" must name a connection */
    const xs_proto_field *fields;
    size_t nfields;
} xs_proto_spec;

/* xs_proto_find returns the declaration of type, or NULL when there is none. */
const xs_proto_spec *xs_proto_find(const char *type);

/* xs_proto_specs returns the whole table (static) and its length through *n. */
const xs_proto_spec *xs_proto_specs(size_t *n);

/* A decoded message. */
typedef struct xs_msg {
    int v;
    const xs_proto_spec *spec; /* borrowed, static */
    char type[XS_PROTO_TYPE_MAX];
    char id[XS_PROTO_ID_MAX];
    char conn[XS_UUID_STR]; /* "" when the envelope had none */
    json_t *body;           /* owned by the message; an object, never NULL */
} xs_msg;

/* xs_proto_decode parses and validates len bytes into *out (new; free with xs_msg_free).
 * On failure it returns XS_EPROTO (malformed envelope or body), XS_EUNSUPPORTED (unknown
 * type or version), writes a reason naming the offending field into err
 * (XS_PROTO_ERR_MAX bytes; may be NULL), and, whenever the envelope's id could be read,
 * copies it into id_out (XS_PROTO_ID_MAX bytes; may be NULL; "" otherwise) so that the
 * error reply can still be matched to its request. An "error" reply decodes successfully:
 * check xs_msg_is_error. */
xs_err xs_proto_decode(const void *buf, size_t len, xs_msg **out, char *id_out, char *err);

/* xs_msg_free frees m; NULL accepted. */
void xs_msg_free(xs_msg *m);

/* xs_proto_encode builds the envelope for a message of `type` with request id `id` and
 * connection `conn` (NULL or "" for none) around body (taken over, even on failure; NULL
 * means {}), validates it against the declaration, and writes the bytes into *buf (new,
 * free with free()) and *len. XS_EINVAL (with a line on stderr naming the field) when the
 * body does not match, XS_EUNSUPPORTED for an undeclared type. */
xs_err xs_proto_encode(const char *type, const char *id, const char *conn, json_t *body, char **buf,
                       size_t *len);

/* xs_proto_encode_error builds an "error" reply for request id (may be "" when the request
 * could not be read) carrying code (its xs_err name goes on the wire), a human-readable
 * message, and whether retrying the same request later may succeed. */
xs_err xs_proto_encode_error(const char *id, xs_err code, const char *message, bool retryable,
                             char **buf, size_t *len);

/* xs_proto_encode_error_at is xs_proto_encode_error naming the request field at fault
 * (field may be NULL: none), so the orchestrator can answer "400, field X", and, for a step
 * (sync.pull, sync.push), the calls to Xero it made before it failed (calls; -1: not said),
 * so the budget charges only those. */
xs_err xs_proto_encode_error_at(const char *id, xs_err code, const char *field, const char *message,
                                bool retryable, int64_t calls, char **buf, size_t *len);

/* xs_msg_is_error tells whether m is an "error" reply. */
bool xs_msg_is_error(const xs_msg *m);

/* xs_msg_error reads an error reply: its code (XS_EUNKNOWN names map to XS_EPROTO), message
 * (borrowed) and retryable flag. Any out-pointer may be NULL. */
void xs_msg_error(const xs_msg *m, xs_err *code, const char **message, bool *retryable);

/* xs_msg_error_field returns the field an error reply names (borrowed), or NULL. */
const char *xs_msg_error_field(const xs_msg *m);

/* xs_msg_error_calls returns the calls to Xero an error reply says its step made, or -1 when
 * it does not say. */
int64_t xs_msg_error_calls(const xs_msg *m);

/* xs_proto_new_id writes a fresh random request id into id (XS_PROTO_ID_MAX bytes). */
xs_err xs_proto_new_id(char *id);

#endif
