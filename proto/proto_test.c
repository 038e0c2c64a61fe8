/* proto_test.c: the codec round-trips, refuses malformed input, and matches README.md. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "xs/uuid.h"
#include "xs/json.h"

static const char *CONN = "0f8fad5b-d9cb-469f-a165-70867728950e";

static void test_round_trip_request(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    json_t *body = json_pack("{s:s, s:i}", "echo", "hello", "delay_ms", 5);
    assert_int_equal(xs_proto_encode("sys.ping", "r-1", CONN, body, &buf, &len), XS_OK);
    xs_msg *m = NULL;
    char id[XS_PROTO_ID_MAX], err[XS_PROTO_ERR_MAX];
    assert_int_equal(xs_proto_decode(buf, len, &m, id, err), XS_OK);
    assert_string_equal(m->type, "sys.ping");
    assert_string_equal(m->id, "r-1");
    assert_string_equal(id, "r-1");
    assert_string_equal(m->conn, CONN);
    assert_int_equal(m->v, XS_PROTO_VERSION);
    assert_ptr_equal(m->spec, xs_proto_find("sys.ping"));
    assert_string_equal(xs_json_str_or(m->body, "echo", ""), "hello");
    assert_false(xs_msg_is_error(m));
    xs_msg_free(m);
    free(buf);
}

static void test_round_trip_event(void **state)
{
    (void)state;
    json_t *body = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:i, s:i, s:i, s:b}", "service",
                             "contacts", "domain", "contacts", "replica", "h-1", "pid", 42,
                             "version", "0.1.0", "started_at", "2026-11-22T10:00:00.000Z",
                             "workers", 4, "busy", 1, "handled", 10, "failed", 0, "stopping", 0);
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(xs_proto_encode("event.heartbeat", "e-1", NULL, body, &buf, &len), XS_OK);
    xs_msg *m = NULL;
    assert_int_equal(xs_proto_decode(buf, len, &m, NULL, NULL), XS_OK);
    assert_string_equal(m->conn, "");
    assert_int_equal(m->spec->kind, XS_PROTO_EVENT);
    xs_msg_free(m);
    free(buf);
}

static void test_error_reply(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(xs_proto_encode_error("r-9", XS_EDB, "database went away", true, &buf, &len),
                     XS_OK);
    xs_msg *m = NULL;
    assert_int_equal(xs_proto_decode(buf, len, &m, NULL, NULL), XS_OK);
    assert_true(xs_msg_is_error(m));
    xs_err code;
    const char *msg;
    bool retry;
    xs_msg_error(m, &code, &msg, &retry);
    assert_int_equal(code, XS_EDB);
    assert_string_equal(msg, "database went away");
    assert_true(retry);
    assert_string_equal(m->id, "r-9");
    xs_msg_free(m);
    free(buf);

    /* An unreadable request id still gives a well-formed error reply. */
    assert_int_equal(xs_proto_encode_error("", XS_EPROTO, NULL, false, &buf, &len), XS_OK);
    assert_int_equal(xs_proto_decode(buf, len, &m, NULL, NULL), XS_OK);
    assert_string_equal(m->id, "unknown");
    assert_null(xs_msg_error_field(m));
    xs_msg_free(m);
    free(buf);

    /* An error may name the request field at fault. */
    assert_int_equal(xs_proto_encode_error_at("r-8", XS_EINVAL, "organisation_id",
                                              "no such organisation", false, -1, &buf, &len),
                     XS_OK);
    assert_int_equal(xs_proto_decode(buf, len, &m, NULL, NULL), XS_OK);
    assert_string_equal(xs_msg_error_field(m), "organisation_id");
    assert_int_equal(xs_msg_error_calls(m), -1);
    xs_msg_free(m);
    free(buf);

    /* A step's error says the calls to Xero it made before it failed (0: none). */
    for (int64_t calls = 0; calls <= 2; calls += 2) {
        assert_int_equal(xs_proto_encode_error_at("r-7", XS_EDB, NULL, "database went away", true,
                                                  calls, &buf, &len),
                         XS_OK);
        assert_int_equal(xs_proto_decode(buf, len, &m, NULL, NULL), XS_OK);
        assert_int_equal(xs_msg_error_calls(m), calls);
        xs_msg_free(m);
        free(buf);
    }
}

/* Requests about a connection need one in the envelope; their replies carry it back. */
static void test_connection_messages(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(xs_proto_encode("token.get", "r-1", NULL, json_object(), &buf, &len),
                     XS_EINVAL);
    assert_int_equal(xs_proto_encode("token.get", "r-1", CONN, json_object(), &buf, &len), XS_OK);
    xs_msg *m = NULL;
    assert_int_equal(xs_proto_decode(buf, len, &m, NULL, NULL), XS_OK);
    assert_string_equal(m->spec->reply, "token");
    xs_msg_free(m);
    free(buf);

    json_t *tok = json_pack("{s:s, s:s, s:s, s:b}", "access_token", "eyJ.x.y", "tenant_id", CONN,
                            "expires_at", "2026-12-01T10:30:00.000Z", "refreshed", 1);
    assert_int_equal(xs_proto_encode("token", "r-1", CONN, tok, &buf, &len), XS_OK);
    assert_int_equal(xs_proto_decode(buf, len, &m, NULL, NULL), XS_OK);
    assert_string_equal(xs_json_str_or(m->body, "access_token", ""), "eyJ.x.y");
    xs_msg_free(m);
    free(buf);

    /* A tenant id that is not a UUID is refused. */
    tok = json_pack("{s:s, s:s, s:s, s:b}", "access_token", "a", "tenant_id", "tenant-1",
                    "expires_at", "2026-12-01T10:30:00.000Z", "refreshed", 0);
    assert_int_equal(xs_proto_encode("token", "r-1", CONN, tok, &buf, &len), XS_EINVAL);

    /* The callback needs its state. */
    assert_int_equal(xs_proto_encode("auth.callback", "r-2", NULL,
                                     json_pack("{s:s}", "code", "abc"), &buf, &len),
                     XS_EINVAL);
}

static void test_encode_refuses_bad_bodies(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    /* Wrong type for a declared field. */
    assert_int_equal(
        xs_proto_encode("sys.ping", "r-1", NULL, json_pack("{s:s}", "delay_ms", "x"), &buf, &len),
        XS_EINVAL);
    /* Out of range. */
    assert_int_equal(
        xs_proto_encode("sys.ping", "r-1", NULL, json_pack("{s:i}", "delay_ms", 10001), &buf, &len),
        XS_EINVAL);
    /* Missing required field in a reply. */
    assert_int_equal(
        xs_proto_encode("sys.pong", "r-1", NULL, json_pack("{s:s}", "service", "x"), &buf, &len),
        XS_EINVAL);
    /* Undeclared type. */
    assert_int_equal(xs_proto_encode("no.such", "r-1", NULL, NULL, &buf, &len), XS_EUNSUPPORTED);
    /* Bad id and bad connection. */
    assert_int_equal(xs_proto_encode("sys.ping", "has space", NULL, NULL, &buf, &len), XS_EINVAL);
    assert_int_equal(xs_proto_encode("sys.ping", "r-1", "not-a-uuid", NULL, &buf, &len), XS_EINVAL);
}

/* decode_fails checks that text is refused with want, and the id recovered is want_id. */
static void decode_fails(const char *text, xs_err want, const char *want_id, const char *needle)
{
    xs_msg *m = NULL;
    char id[XS_PROTO_ID_MAX], err[XS_PROTO_ERR_MAX];
    xs_err e = xs_proto_decode(text, strlen(text), &m, id, err);
    if (e != want) {
        fail_msg("decoding %s: got %s (%s), want %s", text, xs_err_name(e), err, xs_err_name(want));
    }
    assert_null(m);
    assert_string_equal(id, want_id);
    if (needle != NULL && strstr(err, needle) == NULL) {
        fail_msg("decoding %s: error \"%s\" does not mention \"%s\"", text, err, needle);
    }
}

static void test_decode_refuses_malformed(void **state)
{
    (void)state;
    decode_fails("", XS_EPROTO, "", "not JSON");
    decode_fails("{", XS_EPROTO, "", "not JSON");
    decode_fails("[]", XS_EPROTO, "", "envelope");
    decode_fails("{\"v\":1}", XS_EPROTO, "", "id");
    decode_fails("{\"id\":\"r-1\"}", XS_EPROTO, "r-1", "v:");
    decode_fails("{\"id\":\"r-1\",\"v\":2,\"type\":\"sys.ping\",\"body\":{}}", XS_EUNSUPPORTED,
                 "r-1", "version");
    decode_fails("{\"id\":\"r-1\",\"v\":1.0,\"type\":\"sys.ping\",\"body\":{}}", XS_EPROTO, "r-1",
                 "v:");
    decode_fails("{\"id\":\"r-1\",\"v\":1,\"type\":\"nope\",\"body\":{}}", XS_EUNSUPPORTED, "r-1",
                 "unknown message type");
    decode_fails("{\"id\":\"r-1\",\"v\":1,\"type\":7,\"body\":{}}", XS_EPROTO, "r-1", "type");
    decode_fails("{\"id\":\"r-1\",\"v\":1,\"type\":\"sys.ping\"}", XS_EPROTO, "r-1", "body");
    decode_fails("{\"id\":\"r-1\",\"v\":1,\"type\":\"sys.ping\",\"body\":[]}", XS_EPROTO, "r-1",
                 "body");
    decode_fails("{\"id\":\"r-1\",\"v\":1,\"type\":\"sys.ping\",\"body\":{\"delay_ms\":1.5}}",
                 XS_EPROTO, "r-1", "delay_ms");
    decode_fails("{\"id\":\"r-1\",\"v\":1,\"type\":\"sys.ping\",\"body\":{\"echo\":3}}", XS_EPROTO,
                 "r-1", "echo");
    decode_fails("{\"id\":\"r-1\",\"v\":1,\"type\":\"sys.ping\",\"conn\":\"x\",\"body\":{}}",
                 XS_EPROTO, "r-1", "conn");
    decode_fails("{\"id\":\"bad id\",\"v\":1,\"type\":\"sys.ping\",\"body\":{}}", XS_EPROTO, "",
                 "id");
    decode_fails("{\"id\":12,\"v\":1,\"type\":\"sys.ping\",\"body\":{}}", XS_EPROTO, "", "id");
    decode_fails("{\"id\":\"r-1\",\"v\":1,\"type\":\"sys.pong\",\"body\":{\"service\":\"a\"}}",
                 XS_EPROTO, "r-1", "replica");
    decode_fails("{\"id\":\"r-1\",\"id\":\"r-2\",\"v\":1,\"type\":\"sys.ping\",\"body\":{}}",
                 XS_EPROTO, "", "not JSON");
}

static void test_decode_ignores_unknown_fields(void **state)
{
    (void)state;
    const char *text = "{\"id\":\"r-1\",\"v\":1,\"type\":\"sys.ping\",\"extra\":1,"
                       "\"body\":{\"new_field\":[1,2]}}";
    xs_msg *m = NULL;
    assert_int_equal(xs_proto_decode(text, strlen(text), &m, NULL, NULL), XS_OK);
    xs_msg_free(m);
}

/* Random bytes and mutated messages never crash the decoder. */
static void test_decode_garbage(void **state)
{
    (void)state;
    const char *good = "{\"v\":1,\"type\":\"sys.ping\",\"id\":\"r-1\",\"conn\":null,"
                       "\"body\":{\"echo\":\"x\",\"delay_ms\":3}}";
    size_t n = strlen(good);
    char buf[256];
    unsigned seed = 12345;
    int ok = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(buf, good, n);
        int flips = 1 + (int)(rand_r(&seed) % 4);
        for (int f = 0; f < flips; f++) {
            buf[rand_r(&seed) % n] = (char)(rand_r(&seed) % 256);
        }
        size_t len = (size_t)(rand_r(&seed) % (n + 1));
        xs_msg *m = NULL;
        char id[XS_PROTO_ID_MAX], err[XS_PROTO_ERR_MAX];
        if (xs_proto_decode(buf, len, &m, id, err) == XS_OK) {
            ok++;
            assert_non_null(m->body);
            xs_msg_free(m);
        } else {
            assert_null(m);
            assert_true(err[0] != '\0');
        }
    }
    /* Some mutations land in harmless places (the echo text); most break the message. */
    assert_true(ok < 20000);
}

static void test_new_id_and_uuid(void **state)
{
    (void)state;
    char a[XS_PROTO_ID_MAX], b[XS_PROTO_ID_MAX];
    assert_int_equal(xs_proto_new_id(a), XS_OK);
    assert_int_equal(xs_proto_new_id(b), XS_OK);
    assert_string_not_equal(a, b);
    assert_true(xs_uuid_valid(CONN));
    assert_true(xs_uuid_valid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
    assert_false(xs_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950"));
    assert_false(xs_uuid_valid("0f8fad5bxd9cb-469f-a165-70867728950e"));
    assert_false(xs_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950g"));
    assert_false(xs_uuid_valid(NULL));
}

/* read_all returns the contents of path (new). */
static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}

/* README.md specifies every declared message under a "### `type`" heading, and every declared
 * field in a table row "| `field` |" of that section; and it names no type the table lacks. */
static void test_readme_matches_table(void **state)
{
    (void)state;
    const char *path = getenv("XS_PROTO_README");
    assert_non_null(path);
    char *doc = read_all(path);
    assert_non_null(doc);
    size_t n;
    const xs_proto_spec *specs = xs_proto_specs(&n);
    for (size_t i = 0; i < n; i++) {
        char head[96];
        snprintf(head, sizeof(head), "### `%s`", specs[i].type);
        char *sec = strstr(doc, head);
        if (sec == NULL) {
            fail_msg("README.md has no section %s", head);
        }
        char *end = strstr(sec + 4, "\n### ");
        size_t seclen = end != NULL ? (size_t)(end - sec) : strlen(sec);
        for (size_t f = 0; f < specs[i].nfields; f++) {
            char row[96];
            snprintf(row, sizeof(row), "| `%s`", specs[i].fields[f].name);
            char *hit = strstr(sec, row);
            if (hit == NULL || (size_t)(hit - sec) > seclen) {
                fail_msg("README.md section %s does not describe field %s", head,
                         specs[i].fields[f].name);
            }
        }
    }
    /* Every "### `x`" heading names a declared type. */
    for (char *p = strstr(doc, "\n### `"); p != NULL; p = strstr(p + 1, "\n### `")) {
        char name[64] = {0};
        const char *s = p + 6;
        size_t k = 0;
        while (s[k] != '\0' && s[k] != '`' && k < sizeof(name) - 1) {
            name[k] = s[k];
            k++;
        }
        char *arrow = strstr(name, " ");
        if (arrow != NULL) {
            *arrow = '\0';
        }
        if (xs_proto_find(name) == NULL) {
            fail_msg("README.md specifies %s, which proto.c does not declare", name);
        }
    }
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_request),
        cmocka_unit_test(test_round_trip_event),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_connection_messages),
        cmocka_unit_test(test_encode_refuses_bad_bodies),
        cmocka_unit_test(test_decode_refuses_malformed),
        cmocka_unit_test(test_decode_ignores_unknown_fields),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_new_id_and_uuid),
        cmocka_unit_test(test_readme_matches_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
