/* push_test.c: a sync.push that holds no permit (max_calls 0) never calls Xero: a lookup,
 * which always would, is refused before anything else, retryable, naming max_calls, with no
 * call made. Such a step comes without an access token; one that may call Xero and has none
 * is refused, naming access_token. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "xs/json.h"
#include "engine/fake_entities.h"
#include "engine/push.h"
#include "engine/runtime.h"

static const xs_entity_ops *const ENTITIES[] = {&FAKE_CONTACTS, NULL};

/* push_refused sends body (a sync.push) to the handler, which must refuse it with want,
 * replying nothing and having made no call; ctx says why. */
static void push_refused(const char *body, xs_err want, xs_svc_ctx *ctx)
{
    static xs_domain_svc svc = {.entities = ENTITIES};
    memset(ctx, 0, sizeof(*ctx));
    ctx->state = &svc;
    ctx->service = "test";
    xs_msg msg = {.body = xs_json_parse(body, strlen(body), NULL)};
    assert_non_null(msg.body);
    json_t *reply = NULL;
    assert_int_equal(xs_domain_push(ctx, &msg, &reply), want);
    assert_null(reply);
    assert_int_equal(ctx->calls, 0);
    json_decref(msg.body);
}

static void test_lookup_without_permit(void **state)
{
    (void)state;
    xs_svc_ctx ctx;
    push_refused("{\"entity\": \"contact\", \"step_id\": 7, \"max_calls\": 0, "
                 "\"lookup_names\": [{\"name\": \"Acme\", \"local_id\": \"" FAKE_A "\"}]}",
                 XS_ERATELIMIT, &ctx);
    assert_string_equal(ctx.field, "max_calls");
    assert_true(ctx.retryable);
    assert_string_equal(ctx.err, "the step holds no permit and a lookup needs a call to Xero");
}

static void test_calls_need_a_token(void **state)
{
    (void)state;
    const char *bodies[] = {
        /* max_calls absent is 1 */
        "{\"entity\": \"contact\", \"step_id\": 7, \"scan_after\": \"\"}",
        "{\"entity\": \"contact\", \"step_id\": 7, \"max_calls\": 2, \"local_ids\": [\"" FAKE_A
        "\"]}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        xs_svc_ctx ctx;
        push_refused(bodies[i], XS_EINVAL, &ctx);
        assert_string_equal(ctx.field, "access_token");
        assert_false(ctx.retryable);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_without_permit),
        cmocka_unit_test(test_calls_need_a_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
