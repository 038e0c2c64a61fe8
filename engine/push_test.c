/* push_test.c: a sync.push that holds no permit (max_calls 0) never calls Xero: a lookup,
 * which always would, is refused before anything else, retryable, naming max_calls, with no
 * call made. */
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

static void test_lookup_without_permit(void **state)
{
    (void)state;
    static xs_domain_svc svc = {.entities = ENTITIES};
    xs_svc_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.state = &svc;
    ctx.service = "test";
    const char *body = "{\"entity\": \"contact\", \"step_id\": 7, \"max_calls\": 0, "
                       "\"lookup_names\": [{\"name\": \"Acme\", \"local_id\": \"" FAKE_A "\"}]}";
    xs_msg msg = {.body = xs_json_parse(body, strlen(body), NULL)};
    assert_non_null(msg.body);
    json_t *reply = NULL;
    assert_int_equal(xs_domain_push(&ctx, &msg, &reply), XS_ERATELIMIT);
    assert_null(reply);
    assert_string_equal(ctx.field, "max_calls");
    assert_true(ctx.retryable);
    assert_string_equal(ctx.err, "the step holds no permit and a lookup needs a call to Xero");
    assert_int_equal(ctx.calls, 0);
    json_decref(msg.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_without_permit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
