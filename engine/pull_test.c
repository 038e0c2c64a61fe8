/* pull_test.c: a sync.pull request decoded once (pull_req_read): its values and defaults, and
 * each refusal with the field and message a request has always been answered with. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "xs/json.h"
#include "engine/cursor.h"
#include "engine/fake_entities.h"
#include "engine/pull.h"
#include "engine/runtime.h"

/* The two ids, short for the paths and bodies they are written into. */
#define A FAKE_A
#define B FAKE_B

/* An entity whose list path leaves little room: sixteen long Types do not fit. */
#define LONG_PATH                                                                                  \
    "/api.xro/2.0/Long/"                                                                           \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"              \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
    "a" LONG_1K
/* a thousand characters more: the first page may be PULL_FIRST_PATH_MAX (2,048) long */
#define LONG_100                                                                                   \
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" \
    "bbbbbbbb"
#define LONG_1K                                                                                    \
    LONG_100 LONG_100 LONG_100 LONG_100 LONG_100 LONG_100 LONG_100 LONG_100 LONG_100 LONG_100
static const xs_entity_info NARROW_INFO = {
    .name = "narrow", .domain = "invoices", .pull = true, .typed = true};
static const xs_entity_ops NARROW = {.info = &NARROW_INFO,
                                     .xero_path = LONG_PATH,
                                     .xero_list = "Long",
                                     .id_field = "LongID",
                                     .type_field = "Type"};

static const xs_entity_ops *const ENTITIES[] = {&FAKE_CONTACTS, &FAKE_INVOICES, &NARROW, NULL};

/* req_decode decodes body (JSON text) as a sync.pull with a service of ENTITIES; ctx keeps the
 * failure. */
static xs_err req_decode(const char *body, xs_svc_ctx *ctx, pull_req *out)
{
    static xs_domain_svc svc = {.entities = ENTITIES};
    static xs_msg msg;
    memset(ctx, 0, sizeof(*ctx));
    ctx->state = &svc;
    ctx->service = "test";
    json_decref(msg.body);
    msg.body = xs_json_parse(body, strlen(body), NULL);
    assert_non_null(msg.body);
    return pull_req_read(ctx, &msg, out);
}

/* assert_refused checks that body is refused naming field with message. */
static void assert_refused(const char *body, const char *field, const char *message)
{
    xs_svc_ctx ctx;
    pull_req r;
    if (req_decode(body, &ctx, &r) != XS_EINVAL) {
        fail_msg("took %s", body);
    }
    assert_string_equal(ctx.field, field);
    assert_string_equal(ctx.err, message);
}

static void test_defaults(void **state)
{
    (void)state;
    xs_svc_ctx ctx;
    pull_req r;
    assert_int_equal(req_decode("{\"entity\": \"contact\"}", &ctx, &r), XS_OK);
    assert_ptr_equal(r.step.ops, &FAKE_CONTACTS);
    assert_null(r.ids);
    assert_null(r.filter);
    assert_null(r.set.types);
    assert_int_equal(r.start.since, 0);
    assert_int_equal(r.start.number, 1);
    assert_int_equal(r.start.nafter, 0);
    assert_false(r.start.no_tiebreak);
    assert_int_equal(r.page_size, DEFAULT_PAGE);
    assert_int_equal(r.max_pages, 1);
    assert_int_equal(r.max_ms, 0);
    pull_req_fini(&r);
}

static void test_decoded(void **state)
{
    (void)state;
    xs_svc_ctx ctx;
    pull_req r;
    assert_int_equal(
        req_decode(
            "{\"entity\": \"invoice\", \"tenant_id\": \"" B "\", \"access_token\": \"tok\", "
            "\"cursor\": {\"since\": \"2024-05-06T07:08:09Z\", \"page\": 3, \"after\": [\"" A
            "\"], \"tiebreak\": true}, \"page_size\": 200, \"max_pages\": 5, \"max_ms\": 1500, "
            "\"filter\": {\"statuses\": [\"PAID\"]}, \"settings\": {\"types\": [\"ACCREC\"]}}",
            &ctx, &r),
        XS_OK);
    xs_time since = 0;
    assert_int_equal(xs_time_parse_iso("2024-05-06T07:08:09Z", &since), XS_OK);
    assert_ptr_equal(r.step.ops, &FAKE_INVOICES);
    assert_string_equal(r.step.tenant_id, B);
    assert_string_equal(r.step.bearer, "tok");
    assert_int_equal(r.start.since, since);
    assert_int_equal(r.start.number, 3);
    assert_int_equal(r.start.nafter, 1);
    assert_string_equal(r.start.after[0], A);
    assert_false(r.start.no_tiebreak);
    assert_int_equal(r.page_size, 200);
    assert_int_equal(r.max_pages, 5);
    assert_int_equal(r.max_ms, 1500);
    assert_non_null(r.filter);
    assert_int_equal(json_array_size(r.set.types), 1);
    pull_req_fini(&r);

    assert_int_equal(req_decode("{\"entity\": \"contact\", \"ids\": [\"" A "\", \"" B "\"], "
                                "\"cursor\": {\"tiebreak\": false}}",
                                &ctx, &r),
                     XS_OK);
    assert_int_equal(json_array_size(r.ids), 2);
    assert_true(r.start.no_tiebreak);
    pull_req_fini(&r);
}

static void test_refused(void **state)
{
    (void)state;
    assert_refused("{\"entity\": \"payment\"}", "entity",
                   "the test service does not sync entity payment");
    assert_refused("{\"entity\": \"contact\", \"settings\": {\"policy\": \"coin\"}}",
                   "settings.policy", "unknown policy coin");
    assert_refused("{\"entity\": \"contact\", \"cursor\": {\"since\": \"yesterday\"}}",
                   "cursor.since", "not an ISO 8601 time");
    assert_refused("{\"entity\": \"contact\", \"cursor\": {\"page\": 0}}", "cursor.page",
                   "page must be from 1");
    assert_refused("{\"entity\": \"contact\", \"cursor\": {\"page\": 10000001}}", "cursor.page",
                   "page must be from 1");
    assert_refused("{\"entity\": \"contact\", \"page_size\": 0}", "page_size",
                   "page_size must be 1 to 1000");
    assert_refused("{\"entity\": \"contact\", \"page_size\": 1001}", "page_size",
                   "page_size must be 1 to 1000");
    assert_refused("{\"entity\": \"contact\", \"max_pages\": 0}", "max_pages",
                   "max_pages must be 1 to 100");
    assert_refused("{\"entity\": \"contact\", \"max_pages\": 101}", "max_pages",
                   "max_pages must be 1 to 100");
    assert_refused("{\"entity\": \"contact\", \"filter\": {\"date_from\": \"May\"}}", "filter",
                   "filter takes date_from (YYYY-MM-DD) and statuses (1 to 8 names, A-Z)");
    assert_refused("{\"entity\": \"contact\", \"ids\": [\"" A "\", \"nope\"]}", "ids",
                   "ids must be Xero ids (UUIDs), as many as fit in a request");
    assert_refused("{\"entity\": \"narrow\", \"settings\": {\"types\": ["
                   "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", \"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\", "
                   "\"CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC\", \"DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD\", "
                   "\"EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE\", \"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\", "
                   "\"GGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG\", \"HHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHH\", "
                   "\"IIIIIIIIIIIIIIIIIIIIIIIIIIIIIIII\", \"JJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJJ\", "
                   "\"KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK\", \"LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL\", "
                   "\"MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM\", \"NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN\", "
                   "\"OOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOO\", \"PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP\"]}}",
                   "settings.types", "too many types");
    const char *after = "after takes at most 20 Xero ids (UUIDs), with since; tiebreak is true or "
                        "false";
    assert_refused("{\"entity\": \"contact\", \"cursor\": {\"after\": [\"" A "\"]}}",
                   "cursor.after", after);
    assert_refused("{\"entity\": \"contact\", \"cursor\": {\"since\": \"2024-05-06T07:08:09Z\", "
                   "\"after\": [\"nope\"]}}",
                   "cursor.after", after);
    assert_refused("{\"entity\": \"contact\", \"cursor\": {\"tiebreak\": \"no\"}}", "cursor.after",
                   after);
    /* The first field at fault is the one named, in the order requests have been checked. */
    assert_refused("{\"entity\": \"contact\", \"cursor\": {\"since\": \"x\", \"page\": 0}, "
                   "\"page_size\": 0}",
                   "cursor.since", "not an ISO 8601 time");
    assert_refused("{\"entity\": \"contact\", \"page_size\": 0, \"max_pages\": 0}", "page_size",
                   "page_size must be 1 to 1000");
    assert_refused("{\"entity\": \"contact\", \"max_pages\": 0, \"filter\": 7}", "max_pages",
                   "max_pages must be 1 to 100");
    assert_refused("{\"entity\": \"contact\", \"filter\": 7, \"ids\": [\"nope\"]}", "filter",
                   "filter takes date_from (YYYY-MM-DD) and statuses (1 to 8 names, A-Z)");
    assert_refused("{\"entity\": \"contact\", \"ids\": [\"nope\"], \"cursor\": {\"tiebreak\": 1}}",
                   "ids", "ids must be Xero ids (UUIDs), as many as fit in a request");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_decoded),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
