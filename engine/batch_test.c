/* batch_test.c: what one push request holds, without a database: the kinds of write, the caps
 * of each (50 creates, 50 updates, one delete), which kind a batch keeps and what it leaves to
 * the next steps, the request's body and its Idempotency-Key. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"
#include "engine/batch.h"
#include "engine/push_store.h"

/* The entity the tests write: only what a request's body reads of it. */
static const xs_entity_info THING_INFO = {
    .name = "thing", .domain = "contacts", .pull = true, .push = true};
static const xs_entity_ops THING = {
    .info = &THING_INFO,
    .xero_path = "/api.xro/2.0/Things",
    .xero_list = "Things",
    .id_field = "ThingID",
};

/* J parses text (new). */
static json_t *J(const char *text)
{
    json_t *v = xs_json_parse(text, strlen(text), NULL);
    assert_non_null(v);
    return v;
}

/* take adds a record of kind k with local id lid (and Xero item {"Name": lid}). */
static void take(batch *b, batch_kind k, const char *lid)
{
    batch_take(b, k, json_pack("{s:s}", "local_id", lid), json_pack("{s:s}", "Name", lid));
}

/* take_n adds n records of kind k, their local ids prefix-0, prefix-1, ... */
static void take_n(batch *b, batch_kind k, const char *prefix, int n)
{
    for (int i = 0; i < n; i++) {
        char lid[64];
        snprintf(lid, sizeof(lid), "%s-%d", prefix, i);
        take(b, k, lid);
    }
}

/* assert_ids checks that list holds, in order, the local ids of want (a JSON array of strings);
 * list holds strings (again) or items with local_id. */
static void assert_ids(const json_t *list, const char *want)
{
    json_t *w = J(want), *got = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        json_array_append_new(got,
                              json_string(json_is_string(v) ? json_string_value(v)
                                                            : xs_json_str_or(v, "local_id", "?")));
    }
    if (!xs_json_equal(got, w)) {
        char *g = xs_json_dump(got, 0);
        fail_msg("got %s, want %s", g, want);
    }
    json_decref(got);
    json_decref(w);
}

static void test_kind_parse(void **state)
{
    (void)state;
    assert_int_equal(batch_kind_parse("create"), BATCH_CREATE);
    assert_int_equal(batch_kind_parse("update"), BATCH_UPDATE);
    assert_int_equal(batch_kind_parse("delete"), BATCH_DELETE);
    assert_int_equal(batch_kind_parse("none"), BATCH_NONE);
    assert_int_equal(batch_kind_parse("Create"), BATCH_NONE);
    assert_int_equal(batch_kind_parse(""), BATCH_NONE);
    assert_int_equal(batch_kind_parse(NULL), BATCH_NONE);
    for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
        assert_int_equal(batch_kind_parse(BATCH_NAMES[k]), k);
    }
}

static void test_caps(void **state)
{
    (void)state;
    const struct {
        batch_kind kind;
        int cap;
    } caps[] = {{BATCH_CREATE, 50}, {BATCH_UPDATE, 50}, {BATCH_DELETE, 1}};
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        batch b;
        batch_init(&b);
        assert_false(batch_full(&b));
        take_n(&b, caps[c].kind, "r", caps[c].cap - 1);
        assert_false(batch_full(&b));
        take(&b, caps[c].kind, "last");
        assert_true(batch_full(&b));
        batch_finish(&b);
        assert_int_equal(b.kind, caps[c].kind);
        assert_int_equal(json_array_size(b.items), caps[c].cap);
        assert_int_equal(json_array_size(b.xitems), caps[c].cap);
        assert_int_equal(json_array_size(b.again), 0);
        batch_fini(&b);
    }
}

/* fill takes records as spec says, in order: "c3 u50 d1" is 3 creates (local ids c-0, c-1,
 * c-2), then 50 updates (u-0 ...), then a delete (d-0). */
static void fill(batch *b, const char *spec)
{
    static const char letters[] = "xcud"; /* by batch_kind */
    for (const char *s = spec; *s != '\0';) {
        char prefix[2] = {*s, '\0'};
        char *end;
        long n = strtol(s + 1, &end, 10);
        const char *k = strchr(letters, *s);
        assert_non_null(k);
        take_n(b, (batch_kind)(k - letters), prefix, (int)n);
        s = end + strspn(end, " ");
    }
}

static void test_finish(void **state)
{
    (void)state;
    const struct {
        const char *takes;
        batch_kind kind;   /* the kind kept */
        const char *items; /* their local ids, or NULL when only counted */
        size_t n;          /* how many are kept */
        const char *again; /* the local ids left to the next steps */
    } cases[] = {
        /* A kind full: it is the request; the others wait. */
        {"c3 u50", BATCH_UPDATE, NULL, 50, "[\"c-0\", \"c-1\", \"c-2\"]"},
        {"u2 d1", BATCH_DELETE, "[\"d-0\"]", 1, "[\"u-0\", \"u-1\"]"},
        /* Two kinds full: the first, in the order create, update, delete. */
        {"d1 u2 c50", BATCH_CREATE, NULL, 50, "[\"u-0\", \"u-1\", \"d-0\"]"},
        /* None full: the kind with the most, the first of those with as many. */
        {"c2 u3", BATCH_UPDATE, "[\"u-0\", \"u-1\", \"u-2\"]", 3, "[\"c-0\", \"c-1\"]"},
        {"u2 c2", BATCH_CREATE, "[\"c-0\", \"c-1\"]", 2, "[\"u-0\", \"u-1\"]"},
        /* Nothing taken: no request. */
        {"", BATCH_NONE, "[]", 0, "[]"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        batch b;
        batch_init(&b);
        fill(&b, cases[c].takes);
        batch_finish(&b);
        assert_int_equal(b.kind, cases[c].kind);
        assert_int_equal(json_array_size(b.items), cases[c].n);
        assert_int_equal(json_array_size(b.xitems), cases[c].n);
        if (cases[c].items != NULL) {
            assert_ids(b.items, cases[c].items);
        }
        /* Each Xero item is its record's. */
        for (size_t i = 0; i < cases[c].n; i++) {
            assert_string_equal(xs_json_str_or(json_array_get(b.xitems, i), "Name", "?"),
                                xs_json_str_or(json_array_get(b.items, i), "local_id", ""));
        }
        assert_ids(b.again, cases[c].again);
        batch_fini(&b);
    }
}

static void test_defer(void **state)
{
    (void)state;
    batch b;
    batch_init(&b);
    fill(&b, "c2 u1");
    batch_defer(&b);
    assert_ids(b.again, "[\"c-0\", \"c-1\", \"u-0\"]");
    batch_finish(&b);
    assert_int_equal(b.kind, BATCH_NONE);
    assert_int_equal(json_array_size(b.items), 0);
    assert_ids(b.again, "[\"c-0\", \"c-1\", \"u-0\"]");
    batch_fini(&b);
}

/* body_of builds a batch of kind k from Xero items xitems (text) and returns its body (new). */
static char *body_of(batch_kind k, const char *xitems)
{
    batch b;
    batch_init(&b);
    json_t *x = J(xitems);
    size_t i;
    json_t *v;
    json_array_foreach(x, i, v)
    {
        batch_take(&b, k, json_pack("{s:s}", "local_id", "l"), json_incref(v));
    }
    json_decref(x);
    batch_finish(&b);
    char *body = push_request_body(&THING, &b);
    batch_fini(&b);
    assert_non_null(body);
    return body;
}

static void test_body(void **state)
{
    (void)state;
    char *body = body_of(BATCH_CREATE, "[{\"Name\": \"A\"}, {\"Name\": \"B\"}]");
    assert_string_equal(body, "{\"Things\":[{\"Name\":\"A\"},{\"Name\":\"B\"}]}");
    free(body);
    body = body_of(BATCH_UPDATE, "[{\"ThingID\": \"x1\", \"Amount\": 12.50}]");
    assert_string_equal(body, "{\"Things\":[{\"ThingID\":\"x1\",\"Amount\":12.50}]}");
    free(body);
    /* A delete Xero takes alone, its id in the path: the item less its id field. */
    body = body_of(BATCH_DELETE, "[{\"ThingID\": \"x1\", \"Status\": \"DELETED\"}]");
    assert_string_equal(body, "{\"Status\":\"DELETED\"}");
    free(body);
}

/* key_of derives the key of body for items (text) on connection conn (into key). */
static void key_of(const char *conn, const char *items, const char *body, char key[64])
{
    step_req req = {.conn = conn, .ops = &THING};
    json_t *it = J(items);
    assert_int_equal(push_request_key(&req, it, body, key), XS_OK);
    json_decref(it);
}

static void test_key(void **state)
{
    (void)state;
    const char *conn = "6f1f3c1e-0000-4000-8000-000000000001";
    const char *items = "[{\"local_id\": \"l1\"}, {\"local_id\": \"l2\", \"xero_id\": \"x2\"}]";
    const char *body = "{\"Things\":[{\"Name\":\"A\"},{\"ThingID\":\"x2\",\"Name\":\"B\"}]}";
    char k1[64], k2[64];
    key_of(conn, items, body, k1);
    assert_int_equal(strlen(k1), 43);
    assert_memory_equal(k1, "xs-", 3);
    assert_int_equal(strspn(k1 + 3, "0123456789abcdef"), 40);
    /* The same request: the same key (so a retry is known to Xero). */
    key_of(conn, items, body, k2);
    assert_string_equal(k1, k2);
    /* Another body, other records, another Xero record, another connection: another key. */
    key_of(conn, items, "{\"Things\":[{\"Name\":\"A\"},{\"ThingID\":\"x2\",\"Name\":\"C\"}]}", k2);
    assert_string_not_equal(k1, k2);
    key_of(conn, "[{\"local_id\": \"l1\"}, {\"local_id\": \"l3\", \"xero_id\": \"x2\"}]", body, k2);
    assert_string_not_equal(k1, k2);
    key_of(conn, "[{\"local_id\": \"l1\"}, {\"local_id\": \"l2\", \"xero_id\": \"x3\"}]", body, k2);
    assert_string_not_equal(k1, k2);
    key_of("6f1f3c1e-0000-4000-8000-000000000002", items, body, k2);
    assert_string_not_equal(k1, k2);
    /* Two deletes have the same body; the records they delete tell them apart. */
    key_of(conn, "[{\"local_id\": \"l1\", \"xero_id\": \"x1\"}]", "{\"Status\":\"DELETED\"}", k1);
    key_of(conn, "[{\"local_id\": \"l2\", \"xero_id\": \"x2\"}]", "{\"Status\":\"DELETED\"}", k2);
    assert_string_not_equal(k1, k2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_parse), cmocka_unit_test(test_caps),
        cmocka_unit_test(test_finish),     cmocka_unit_test(test_defer),
        cmocka_unit_test(test_body),       cmocka_unit_test(test_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
