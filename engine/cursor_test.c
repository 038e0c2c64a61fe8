/* cursor_test.c: a pull's list paths, its next page and tie-break, and the cursor a step
 * hands the next, over entities described here (no database, no Xero). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "xs/json.h"
#include "engine/cursor.h"
#include "engine/fake_entities.h"

/* The two ids, short for the paths and bodies they are written into. */
#define A FAKE_A
#define B FAKE_B

/* J parses text (a new value). */
static json_t *J(const char *text)
{
    json_t *v = xs_json_parse(text, strlen(text), NULL);
    assert_non_null(v);
    return v;
}

/* T reads an ISO 8601 time. */
static xs_time T(const char *iso)
{
    xs_time t = 0;
    assert_int_equal(xs_time_parse_iso(iso, &t), XS_OK);
    return t;
}

/* assert_path checks that cursor_path gives want for these arguments. */
static void assert_path(const xs_entity_ops *ops, const char *ids, int64_t number,
                        int64_t page_size, const char *types, const char *filter,
                        const tiebreak *tb, const char *want)
{
    json_t *i = ids != NULL ? J(ids) : NULL, *t = types != NULL ? J(types) : NULL;
    json_t *f = filter != NULL ? J(filter) : NULL;
    char path[XS_XERO_PATH_MAX * 2 + TIEBREAK_MAX * 96];
    assert_int_equal(cursor_path(ops, i, number, page_size, t, f, tb, path, sizeof(path)), XS_OK);
    assert_string_equal(path, want);
    json_decref(i);
    json_decref(t);
    json_decref(f);
}

static void test_path_paged(void **state)
{
    (void)state;
    assert_path(&FAKE_CONTACTS, NULL, 3, 100, NULL, NULL, NULL,
                "/api.xro/2.0/Contacts?page=3&pageSize=100&order=UpdatedDateUTC%20ASC"
                "&includeArchived=true");
    assert_path(&FAKE_INVOICES, NULL, 1, 1000, NULL, NULL, NULL,
                "/api.xro/2.0/Invoices?page=1&pageSize=1000&order=UpdatedDateUTC%20ASC");
}

static void test_path_unpaged(void **state)
{
    (void)state;
    assert_path(&FAKE_ACCOUNTS, NULL, 7, 100, NULL, NULL, NULL,
                "/api.xro/2.0/Accounts?order=UpdatedDateUTC%20ASC");
    assert_path(&FAKE_ACCOUNTS, NULL, 1, 100, "[\"BANK\", \"REVENUE\"]", NULL, NULL,
                "/api.xro/2.0/Accounts?order=UpdatedDateUTC%20ASC&where=(Type%3D%3D%22BANK%22"
                "%20OR%20Type%3D%3D%22REVENUE%22)");
}

static void test_path_ids(void **state)
{
    (void)state;
    assert_path(&FAKE_CONTACTS, "[\"" A "\", \"" B "\"]", 1, 100, NULL, NULL, NULL,
                "/api.xro/2.0/Contacts?IDs=" A "," B "&includeArchived=true");
    assert_path(&FAKE_PAYMENTS, "[\"" A "\", \"" B "\"]", 1, 100, NULL, NULL, NULL,
                "/api.xro/2.0/Payments?where=PaymentID%3D%3DGuid(%22" A "%22)%20OR%20"
                "PaymentID%3D%3DGuid(%22" B "%22)");
    /* By ids, the step's types, filter and tie-break do not apply. */
    const char ids[1][XS_ID_MAX] = {B};
    tiebreak tb = {T("2024-05-06T07:08:09Z"), ids, 1};
    assert_path(&FAKE_INVOICES, "[\"" A "\"]", 1, 100, "[\"ACCREC\"]",
                "{\"date_from\": \"2024-01-31\", \"statuses\": [\"PAID\"]}", &tb,
                "/api.xro/2.0/Invoices?IDs=" A);
}

static void test_path_filters(void **state)
{
    (void)state;
    assert_path(&FAKE_INVOICES, NULL, 2, 500, "[\"ACCREC\"]",
                "{\"date_from\": \"2024-01-31\", \"statuses\": [\"AUTHORISED\", \"PAID\"]}", NULL,
                "/api.xro/2.0/Invoices?page=2&pageSize=500&order=UpdatedDateUTC%20ASC"
                "&where=(Type%3D%3D%22ACCREC%22)%20AND%20Date%3E%3DDateTime(2024%2C01%2C31)"
                "&Statuses=AUTHORISED%2CPAID");
    assert_path(&FAKE_INVOICES, NULL, 1, 10, NULL, "{\"date_from\": \"2023-12-01\"}", NULL,
                "/api.xro/2.0/Invoices?page=1&pageSize=10&order=UpdatedDateUTC%20ASC"
                "&where=Date%3E%3DDateTime(2023%2C12%2C01)");
    assert_path(&FAKE_INVOICES, NULL, 1, 10, NULL, "{\"statuses\": [\"DRAFT\"]}", NULL,
                "/api.xro/2.0/Invoices?page=1&pageSize=10&order=UpdatedDateUTC%20ASC"
                "&Statuses=DRAFT");
}

static void test_path_tiebreak(void **state)
{
    (void)state;
    const char ids[2][XS_ID_MAX] = {A, B};
    /* The records of since's second the page before read are left out unless changed in a
     * later second: the where names the second after since. */
    tiebreak tb = {T("2024-05-06T07:08:09.250Z"), ids, 2};
    assert_path(&FAKE_CONTACTS, NULL, 1, 100, NULL, NULL, &tb,
                "/api.xro/2.0/Contacts?page=1&pageSize=100&order=UpdatedDateUTC%20ASC"
                "&where=(UpdatedDateUTC%3E%3DDateTime(2024%2C05%2C06%2C07%2C08%2C10)%20OR%20("
                "ContactID%21%3DGuid(%22" A "%22)%20AND%20ContactID%21%3DGuid(%22" B
                "%22)))&includeArchived=true");
    /* With types and a date: each part joined by AND, the tie-break last. */
    tiebreak one = {T("2024-12-31T23:59:59Z"), ids, 1};
    assert_path(&FAKE_INVOICES, NULL, 4, 100, "[\"ACCPAY\"]", "{\"date_from\": \"2024-01-01\"}",
                &one,
                "/api.xro/2.0/Invoices?page=4&pageSize=100&order=UpdatedDateUTC%20ASC"
                "&where=(Type%3D%3D%22ACCPAY%22)%20AND%20Date%3E%3DDateTime(2024%2C01%2C01)"
                "%20AND%20(UpdatedDateUTC%3E%3DDateTime(2025%2C01%2C01%2C00%2C00%2C00)%20OR%20("
                "InvoiceID%21%3DGuid(%22" A "%22)))");
    /* An empty tie-break is none. */
    tiebreak none = {T("2024-12-31T23:59:59Z"), ids, 0};
    assert_path(&FAKE_INVOICES, NULL, 1, 100, NULL, NULL, &none,
                "/api.xro/2.0/Invoices?page=1&pageSize=100&order=UpdatedDateUTC%20ASC");
}

static void test_path_refused(void **state)
{
    (void)state;
    char path[XS_XERO_PATH_MAX * 2];
    json_t *bad = J("[\"" A "\", \"not-an-id\"]"), *num = J("[42]");
    assert_int_equal(cursor_path(&FAKE_CONTACTS, bad, 1, 100, NULL, NULL, NULL, path, sizeof(path)),
                     XS_EINVAL);
    assert_int_equal(cursor_path(&FAKE_PAYMENTS, num, 1, 100, NULL, NULL, NULL, path, sizeof(path)),
                     XS_EINVAL);
    const char ids[2][XS_ID_MAX] = {A, "nope"};
    tiebreak tb = {T("2024-05-06T07:08:09Z"), ids, 2};
    assert_int_equal(cursor_path(&FAKE_CONTACTS, NULL, 1, 100, NULL, NULL, &tb, path, sizeof(path)),
                     XS_EINVAL);
    /* Too long for the buffer, however it ends. */
    json_t *many = json_array();
    for (int i = 0; i < 50; i++) {
        char id[XS_ID_MAX];
        snprintf(id, sizeof(id), "0a1b2c3d-0000-4000-8000-%012d", i);
        json_array_append_new(many, json_string(id));
    }
    assert_int_equal(
        cursor_path(&FAKE_PAYMENTS, many, 1, 100, NULL, NULL, NULL, path, sizeof(path)), XS_EINVAL);
    json_t *one = J("[\"" A "\"]");
    char small[48];
    assert_int_equal(
        cursor_path(&FAKE_CONTACTS, one, 1, 100, NULL, NULL, NULL, small, sizeof(small)),
        XS_EINVAL);
    assert_int_equal(
        cursor_path(&FAKE_CONTACTS, NULL, 1, 100, NULL, NULL, NULL, small, sizeof(small)),
        XS_EINVAL);
    json_t *types = J("[\"ACCREC\", \"ACCPAY\"]");
    char mid[90];
    assert_int_equal(cursor_path(&FAKE_INVOICES, NULL, 1, 100, types, NULL, NULL, mid, sizeof(mid)),
                     XS_EINVAL);
    json_decref(bad);
    json_decref(num);
    json_decref(many);
    json_decref(one);
    json_decref(types);
}

static void test_filter_ok(void **state)
{
    (void)state;
    const char *good[] = {"{}", "{\"date_from\": \"2024-02-29\"}", "{\"statuses\": [\"PAID\"]}",
                          "{\"date_from\": \"2024-01-01\", \"statuses\": [\"A\", \"B\", \"C\", "
                          "\"D\", \"E\", \"F\", \"G\", \"H\"]}"};
    const char *bad[] = {"[]",
                         "{\"date_from\": \"2024-1-1\"}",
                         "{\"date_from\": \"2024-01-01T00:00:00Z\"}",
                         "{\"date_from\": 20240101}",
                         "{\"statuses\": []}",
                         "{\"statuses\": \"PAID\"}",
                         "{\"statuses\": [\"paid\"]}",
                         "{\"statuses\": [\"\"]}",
                         "{\"statuses\": [\"A\", \"B\", \"C\", \"D\", \"E\", \"F\", \"G\", \"H\", "
                         "\"I\"]}",
                         "{\"statuses\": [\"ABCDEFGHIJKLMNOPQRSTU\"]}",
                         "{\"types\": [\"ACCREC\"]}"};
    assert_true(cursor_filter_ok(NULL));
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        json_t *f = J(good[i]);
        if (!cursor_filter_ok(f)) {
            fail_msg("refused %s", good[i]);
        }
        json_decref(f);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *f = J(bad[i]);
        if (cursor_filter_ok(f)) {
            fail_msg("took %s", bad[i]);
        }
        json_decref(f);
    }
}

/* full_page is a full page of CONTACTS (100 records) from since, the last at last, asked for
 * well after it. */
static page full_page(const pull_ask *ask, xs_time since, int64_t number, xs_time last)
{
    page p = {.since = since, .number = number, .ask = ask, .n = 100, .last = last};
    p.asked_at = last + 60000;
    return p;
}

static void test_next_last_page(void **state)
{
    (void)state;
    pull_ask ask = {.ops = &FAKE_CONTACTS, .page_size = 100};
    page next;
    page p = full_page(&ask, 0, 1, T("2024-05-06T07:08:09Z"));
    p.n = 99; /* short: the last */
    assert_false(cursor_next(&p, &next));
    p.n = 100;
    p.page_count = 1; /* Xero's pagination says it is the last */
    assert_false(cursor_next(&p, &next));
    p.page_count = 2;
    assert_true(cursor_next(&p, &next));
    json_t *ids = J("[\"" A "\"]");
    pull_ask by_ids = {.ops = &FAKE_CONTACTS, .ids = ids, .page_size = 100};
    p.ask = &by_ids;
    assert_false(cursor_next(&p, &next));
    pull_ask whole = {.ops = &FAKE_ACCOUNTS, .page_size = 100};
    p.ask = &whole;
    assert_false(cursor_next(&p, &next));
    json_decref(ids);
}

static void test_next_keyset(void **state)
{
    (void)state;
    pull_ask ask = {.ops = &FAKE_CONTACTS, .page_size = 100};
    page next;
    page p = full_page(&ask, T("2024-05-01T00:00:00Z"), 1, T("2024-05-06T07:08:09.750Z"));
    memcpy(p.tail[0], A, sizeof(A));
    memcpy(p.tail[1], B, sizeof(B));
    p.ntail = 2;
    assert_true(cursor_next(&p, &next));
    /* The next page starts at the last record's whole second, page 1, leaving out the
     * records of that second this page read. */
    assert_int_equal(next.since, T("2024-05-06T07:08:09Z"));
    assert_int_equal(next.number, 1);
    assert_ptr_equal(next.ask, &ask);
    assert_int_equal(next.nafter, 2);
    assert_string_equal(next.after[0], A);
    assert_string_equal(next.after[1], B);
    assert_false(next.no_tiebreak);

    /* More records of that second than a tie-break takes: they are read again. */
    p.ntail = TIEBREAK_MAX + 1;
    assert_true(cursor_next(&p, &next));
    assert_int_equal(next.since, T("2024-05-06T07:08:09Z"));
    assert_int_equal(next.nafter, 0);
    p.ntail = TIEBREAK_MAX;
    assert_true(cursor_next(&p, &next));
    assert_int_equal(next.nafter, TIEBREAK_MAX);

    /* A second too close to when the page was asked: a record of it may still change. */
    p.ntail = 2;
    p.asked_at = T("2024-05-06T07:08:14Z");
    assert_true(cursor_next(&p, &next));
    assert_int_equal(next.nafter, 0);
    p.asked_at = T("2024-05-06T07:08:15Z");
    assert_true(cursor_next(&p, &next));
    assert_int_equal(next.nafter, 2);

    /* Xero refused a tie-break in this pull: none again. */
    p.no_tiebreak = true;
    assert_true(cursor_next(&p, &next));
    assert_int_equal(next.nafter, 0);
    assert_true(next.no_tiebreak);

    /* An entity without an id field has no tie-break. */
    static const xs_entity_info NO_ID_INFO = {.name = "x", .domain = "contacts", .pull = true};
    static const xs_entity_ops NO_ID = {.info = &NO_ID_INFO, .xero_path = "/x", .xero_list = "X"};
    pull_ask no_id = {.ops = &NO_ID, .page_size = 100};
    p = full_page(&no_id, 0, 1, T("2024-05-06T07:08:09Z"));
    memcpy(p.tail[0], A, sizeof(A));
    p.ntail = 1;
    assert_true(cursor_next(&p, &next));
    assert_int_equal(next.nafter, 0);
}

static void test_next_same_second(void **state)
{
    (void)state;
    pull_ask ask = {.ops = &FAKE_CONTACTS, .page_size = 100};
    page next;
    /* A whole page within the second it started at: the next page of the same query, its
     * tie-break carried. */
    xs_time since = T("2024-05-06T07:08:09Z");
    page p = full_page(&ask, since, 3, since + 900);
    memcpy(p.after[0], B, sizeof(B));
    p.nafter = 1;
    memcpy(p.tail[0], A, sizeof(A));
    p.ntail = 1;
    assert_true(cursor_next(&p, &next));
    assert_int_equal(next.since, since);
    assert_int_equal(next.number, 4);
    assert_int_equal(next.nafter, 1);
    assert_string_equal(next.after[0], B);
}

/* round_trip writes p's cursor and reads it back into *out, as the next step does. */
static void round_trip(const page *p, page *out)
{
    json_t *c = cursor_json(p);
    assert_non_null(c);
    memset(out, 0, sizeof(*out));
    const char *since = xs_json_str_or(c, "since", NULL);
    if (since != NULL) {
        out->since = T(since);
    }
    assert_int_equal(xs_json_get_int(c, "page", &out->number), XS_OK);
    assert_true(cursor_read(c, out));
    json_decref(c);
}

static void test_cursor_round_trip(void **state)
{
    (void)state;
    page p = {.since = T("2024-05-06T07:08:09Z"), .number = 2, .nafter = 2};
    memcpy(p.after[0], A, sizeof(A));
    memcpy(p.after[1], B, sizeof(B));
    page back;
    round_trip(&p, &back);
    assert_int_equal(back.since, p.since);
    assert_int_equal(back.number, 2);
    assert_int_equal(back.nafter, 2);
    assert_string_equal(back.after[0], A);
    assert_string_equal(back.after[1], B);
    assert_false(back.no_tiebreak);

    json_t *c = cursor_json(&p);
    assert_string_equal(xs_json_str_or(c, "since", ""), "2024-05-06T07:08:09.000Z");
    assert_null(json_object_get(c, "tiebreak"));
    json_decref(c);

    page plain = {.number = 5, .no_tiebreak = true};
    round_trip(&plain, &back);
    assert_int_equal(back.since, 0);
    assert_int_equal(back.number, 5);
    assert_int_equal(back.nafter, 0);
    assert_true(back.no_tiebreak);
    c = cursor_json(&plain);
    assert_null(xs_json_str_or(c, "since", NULL)); /* null: from the start */
    assert_null(json_object_get(c, "after"));
    assert_true(json_is_false(json_object_get(c, "tiebreak")));
    json_decref(c);
}

static void test_cursor_of(void **state)
{
    (void)state;
    page p = {.since = T("2024-05-06T07:08:09Z"), .number = 3, .nafter = 1};
    memcpy(p.after[0], A, sizeof(A));
    page c = cursor_of(&p);
    assert_int_equal(c.since, p.since);
    assert_int_equal(c.number, 3);
    assert_int_equal(c.nafter, 1);
    assert_string_equal(c.after[0], A);
    assert_false(c.no_tiebreak);
    /* Refused: asked again without a tie-break, and so is the rest of the pull. */
    p.outcome = TIEBREAK_REFUSED;
    c = cursor_of(&p);
    assert_int_equal(c.number, 3);
    assert_int_equal(c.nafter, 0);
    assert_true(c.no_tiebreak);
}

static void test_cursor_read_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"after\": \"" A "\"}", "{\"after\": [\"" A "\", \"nope\"]}",
        "{\"after\": [7]}",       "{\"tiebreak\": \"no\"}",
        "{\"tiebreak\": 0}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *c = J(bad[i]);
        page p = {.since = T("2024-05-06T07:08:09Z")};
        if (cursor_read(c, &p)) {
            fail_msg("took %s", bad[i]);
        }
        json_decref(c);
    }
    /* after only goes with since. */
    json_t *c = J("{\"after\": [\"" A "\"]}");
    page p = {.since = 0};
    assert_false(cursor_read(c, &p));
    p.since = T("2024-05-06T07:08:09Z");
    assert_true(cursor_read(c, &p));
    assert_int_equal(p.nafter, 1);
    json_decref(c);
    /* At most TIEBREAK_MAX ids. */
    json_t *after = json_array();
    for (int i = 0; i <= TIEBREAK_MAX; i++) {
        char id[XS_ID_MAX];
        snprintf(id, sizeof(id), "0a1b2c3d-0000-4000-8000-%012d", i);
        json_array_append_new(after, json_string(id));
    }
    c = json_pack("{s:o}", "after", after);
    assert_false(cursor_read(c, &p));
    json_array_remove(after, 0);
    assert_true(cursor_read(c, &p));
    assert_int_equal(p.nafter, TIEBREAK_MAX);
    json_decref(c);
    /* No cursor at all is the start. */
    page start = {.number = 1};
    assert_true(cursor_read(NULL, &start));
    assert_int_equal(start.nafter, 0);
    assert_false(start.no_tiebreak);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_paged),
        cmocka_unit_test(test_path_unpaged),
        cmocka_unit_test(test_path_ids),
        cmocka_unit_test(test_path_filters),
        cmocka_unit_test(test_path_tiebreak),
        cmocka_unit_test(test_path_refused),
        cmocka_unit_test(test_filter_ok),
        cmocka_unit_test(test_next_last_page),
        cmocka_unit_test(test_next_keyset),
        cmocka_unit_test(test_next_same_second),
        cmocka_unit_test(test_cursor_round_trip),
        cmocka_unit_test(test_cursor_of),
        cmocka_unit_test(test_cursor_read_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
