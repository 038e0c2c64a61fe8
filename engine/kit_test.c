/* kit_test.c: the SQL an entity's writes are built from its column table (xs_domain_sql), and
 * the check of a service's entity ops against the one table of entities. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "engine/domain.h"

/* A small table: text, a column named apart from its field, a value, a record-set field. */
static const xs_domain_col COLS[] = {
    {"name", "name", "text", NULL},
    {"owner_id", "owner", "uuid", NULL},
    {"total", "total", "numeric", "coalesce(r.total, 0)"},
    {NULL, "parts", "jsonb", NULL},
};
static const xs_domain_table TABLE = {"app.things", "t", COLS, 4};

/* expect_sql checks the statement of kind over t. */
static void expect_sql(const xs_domain_table *t, xs_domain_sql_kind kind, const char *want)
{
    char *got = xs_domain_sql(t, kind);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_recordset(void **state)
{
    (void)state;
    expect_sql(&TABLE, XS_DOMAIN_SQL_RECORDSET,
               "jsonb_to_recordset($2::jsonb) AS r(id uuid, name text, owner uuid, total numeric, "
               "parts jsonb)");
}

static void test_insert(void **state)
{
    (void)state;
    expect_sql(&TABLE, XS_DOMAIN_SQL_INSERT,
               "INSERT INTO app.things (id, organisation_id, name, owner_id, total) SELECT r.id, "
               "$1, r.name, r.owner, coalesce(r.total, 0) FROM jsonb_to_recordset($2::jsonb) AS "
               "r(id uuid, name text, owner uuid, total numeric, parts jsonb) RETURNING id, "
               "(extract(epoch FROM updated_at) * 1000)::bigint");
}

static void test_update(void **state)
{
    (void)state;
    expect_sql(
        &TABLE, XS_DOMAIN_SQL_UPDATE,
        "UPDATE app.things t SET name = r.name, owner_id = r.owner, total = coalesce(r.total, "
        "0) FROM jsonb_to_recordset($2::jsonb) AS r(id uuid, name text, owner uuid, total "
        "numeric, parts jsonb) WHERE t.id = r.id AND t.organisation_id = $1 RETURNING t.id, "
        "(extract(epoch FROM t.updated_at) * 1000)::bigint");
}

static void test_insert_rec(void **state)
{
    (void)state;
    /* A value cannot be read from r.rec. */
    assert_null(xs_domain_sql(&TABLE, XS_DOMAIN_SQL_INSERT_REC));
    static const xs_domain_col plain[] = {
        {"name", "name", "text", NULL},
        {"tags", "tags", "jsonb", NULL},
        {"due_date", "due", "date", NULL},
    };
    const xs_domain_table t = {"app.things", "t", plain, 3};
    expect_sql(&t, XS_DOMAIN_SQL_INSERT_REC,
               "INSERT INTO app.things (id, organisation_id, name, tags, due_date) SELECT r.id, "
               "$1, r.rec->>'name', r.rec->'tags', (r.rec->>'due')::date FROM r");
}

/* Stand-ins for the ops the check looks at. */
static json_t *fake_to_xero(const json_t *rec, const char *xero_id, const json_t *parts)
{
    (void)rec;
    (void)xero_id;
    (void)parts;
    return NULL;
}

static xs_err fake_match(xs_pg *pg, const char *org, const char *conn, const xs_match_item *items,
                         size_t n, const json_t *keys, xs_match_pairs *out)
{
    (void)pg;
    (void)org;
    (void)conn;
    (void)items;
    (void)n;
    (void)keys;
    (void)out;
    return XS_OK;
}

/* contact is ops that agree with the contact's entry. */
static xs_entity_ops contact(void)
{
    return (xs_entity_ops){.info = &xs_entity_table[XS_ENTITY_CONTACT],
                           .to_xero = fake_to_xero,
                           .match = fake_match,
                           .table = "app.contacts",
                           .columns = &TABLE};
}

/* check runs xs_domain_entities_check of domain over one or two ops (b may be NULL) and
 * expects want, whose reason then names `names`. */
static void check(const char *domain, const xs_entity_ops *a, const xs_entity_ops *b, xs_err want,
                  const char *names)
{
    const xs_entity_ops *list[] = {a, b, NULL};
    char why[XS_DOMAIN_WHY_MAX] = "";
    assert_int_equal(xs_domain_entities_check(domain, list, why), want);
    if (names != NULL && strstr(why, names) == NULL) {
        fail_msg("\"%s\" does not name %s", why, names);
    }
}

static void test_entities_check(void **state)
{
    (void)state;
    xs_entity_ops ok = contact();
    check("contacts", &ok, NULL, XS_OK, NULL);

    /* Each disagreement with the contact's entry, one at a time. */
    xs_entity_ops typed = contact(), no_match = contact(), retired = contact(),
                  read_only = contact(), no_columns = contact(), linked = contact();
    typed.type_field = "Type";
    no_match.match = NULL;
    retired.retired_status = "DELETED";
    read_only.to_xero = NULL;
    no_columns.columns = NULL;
    linked.create_linked = true; /* TABLE has a column with a value of its own */
    const struct {
        const xs_entity_ops *ops;
        const char *names;
    } bad[] = {{&typed, "typed"},    {&no_match, "match"},     {&retired, "immutable"},
               {&read_only, "push"}, {&no_columns, "columns"}, {&linked, "create_linked"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        check("contacts", bad[i].ops, NULL, XS_EINVAL, bad[i].names);
    }

    check("invoices", &ok, NULL, XS_EINVAL, "served by contacts");
    check("contacts", &ok, &ok, XS_EINVAL, "two ops");

    xs_entity_ops stray = contact();
    static const xs_entity_info copy = {"contact", "contacts", true, true, NULL, false};
    stray.info = &copy;
    check("contacts", &stray, NULL, XS_EINVAL, "table of entities");

    /* The payments service must have both of its entities. */
    xs_entity_ops payment = {.info = &xs_entity_table[XS_ENTITY_PAYMENT],
                             .to_xero = fake_to_xero,
                             .table = "app.payments",
                             .columns = &TABLE,
                             .retired_status = "DELETED"};
    check("payments", &payment, NULL, XS_EINVAL, "payments 2 entities");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recordset),      cmocka_unit_test(test_insert),
        cmocka_unit_test(test_update),         cmocka_unit_test(test_insert_rec),
        cmocka_unit_test(test_entities_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
