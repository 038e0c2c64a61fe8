/*
 * sim_contacts_test.c: xero-sim's Contacts: list paging and the pagination object,
 * If-Modified-Since, order UpdatedDateUTC ASC/DESC, where, includeArchived, IDs, searchTerm,
 * summaryOnly, GET by id and by ContactNumber, a GET with a "{}" body; PUT/POST batches with
 * and without summarizeErrors; Addresses and Phones by their type; Idempotency-Key replay and
 * mismatch; Name uniqueness; the duplicate-creation counter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simtest.h"
#include "xs/clock.h"

static st_sim *seeded(int contacts)
{
    st_sim *t = st_start(NULL);
    char body[128], path[128];
    snprintf(body, sizeof(body), "{\"contacts\":%d,\"seed\":42}", contacts);
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", t->tenant);
    json_decref(st_ctl(t, "POST", path, body, 200));
    st_connect(t);
    return t;
}

static json_t *contacts_of(st_reply *r)
{
    assert_int_equal(r->status, 200);
    assert_non_null(r->json);
    json_t *a = json_object_get(r->json, "Contacts");
    assert_true(json_is_array(a));
    return a;
}

static void test_envelope_and_paging(void **state)
{
    (void)state;
    st_sim *t = seeded(250);
    st_reply r = st_api(t, "GET", "/Contacts?page=1&includeArchived=true", NULL, NULL);
    json_t *a = contacts_of(&r);
    assert_int_equal(json_array_size(a), 100);
    assert_string_equal(st_str(r.json, "Status"), "OK");
    assert_string_equal(st_str(r.json, "ProviderName"), "xero-sync");
    assert_int_equal(strncmp(st_str(r.json, "DateTimeUTC"), "/Date(", 6), 0);
    assert_int_equal(strlen(st_str(r.json, "Id")), 36);
    json_t *p = json_object_get(r.json, "pagination");
    assert_int_equal(json_integer_value(json_object_get(p, "page")), 1);
    assert_int_equal(json_integer_value(json_object_get(p, "pageSize")), 100);
    assert_int_equal(json_integer_value(json_object_get(p, "pageCount")), 3);
    assert_int_equal(json_integer_value(json_object_get(p, "itemCount")), 250);
    json_t *c0 = json_array_get(a, 0);
    assert_int_equal(json_array_size(json_object_get(c0, "Addresses")), 2);
    assert_int_equal(json_array_size(json_object_get(c0, "Phones")), 4);
    assert_non_null(json_object_get(c0, "Balances"));
    assert_int_equal(strncmp(st_str(c0, "UpdatedDateUTC"), "/Date(", 6), 0);
    char v[64];
    assert_non_null(st_header(&r, "X-DayLimit-Remaining", v, sizeof(v)));
    assert_non_null(st_header(&r, "X-AppMinLimit-Remaining", v, sizeof(v)));
    st_reply_free(&r);

    /* pageSize up to 1000, clamped above; the last page is partial; beyond it is empty */
    r = st_api(t, "GET", "/Contacts?page=3&pageSize=100&includeArchived=true", NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 50);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts?page=9&includeArchived=true", NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 0);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts?page=1&pageSize=5000&includeArchived=true", NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 250);
    assert_int_equal(json_integer_value(st_path(r.json, "pagination.pageSize")), 1000);
    st_reply_free(&r);
    /* unpaged: everything, no pagination object */
    r = st_api(t, "GET", "/Contacts?includeArchived=true", NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 250);
    assert_null(json_object_get(r.json, "pagination"));
    st_reply_free(&r);
    st_stop(t);
}

static void test_archived_where_ids_search(void **state)
{
    (void)state;
    st_sim *t = seeded(300);
    st_reply all = st_api(t, "GET", "/Contacts?includeArchived=true", NULL, NULL);
    size_t total = json_array_size(contacts_of(&all));
    size_t archived = 0;
    json_t *c;
    size_t i;
    json_array_foreach(json_object_get(all.json, "Contacts"), i, c)
    {
        archived += strcmp(st_str(c, "ContactStatus"), "ARCHIVED") == 0;
    }
    assert_true(archived > 0);
    st_reply r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), total - archived);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts?where=ContactStatus%3D%3D%22ARCHIVED%22", NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), archived);
    st_reply_free(&r);
    /* OR, AND, Contains, != null */
    r = st_api(t, "GET",
               "/Contacts?includeArchived=true&where=ContactStatus%3D%3D%22ACTIVE%22%20OR%20"
               "ContactStatus%3D%3D%22ARCHIVED%22",
               NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), total);
    st_reply_free(&r);
    json_t *first = json_array_get(json_object_get(all.json, "Contacts"), 7);
    char path[600], name[300];
    snprintf(name, sizeof(name), "%s", st_str(first, "Name"));
    char enc[400] = "";
    for (const char *p = name, *hex = "0123456789ABCDEF"; *p; p++) {
        size_t n = strlen(enc);
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) {
            enc[n] = *p;
            enc[n + 1] = '\0';
        } else {
            enc[n] = '%';
            enc[n + 1] = hex[(unsigned char)*p >> 4];
            enc[n + 2] = hex[*p & 15];
            enc[n + 3] = '\0';
        }
    }
    snprintf(path, sizeof(path), "/Contacts?includeArchived=true&where=Name%%3D%%3D%%22%s%%22",
             enc);
    r = st_api(t, "GET", path, NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 1);
    assert_string_equal(st_str(json_array_get(json_object_get(r.json, "Contacts"), 0), "Name"),
                        name);
    st_reply_free(&r);
    r = st_api(t, "GET",
               "/Contacts?includeArchived=true&where=EmailAddress!%3Dnull%20AND%20"
               "Name.StartsWith(%22zzzz-none%22)",
               NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 0);
    st_reply_free(&r);
    /* a bad where is a QueryParseException */
    r = st_api(t, "GET", "/Contacts?where=Nonsense%3D%3D1", NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "Type"), "QueryParseException");
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts?where=Name%3D%3D%22unterminated", NULL, NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);

    /* IDs */
    json_t *a = json_object_get(all.json, "Contacts");
    snprintf(path, sizeof(path), "/Contacts?includeArchived=true&IDs=%s,%s,%s",
             st_str(json_array_get(a, 3), "ContactID"), st_str(json_array_get(a, 9), "ContactID"),
             st_str(json_array_get(a, 3), "ContactID"));
    r = st_api(t, "GET", path, NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 2);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts?IDs=not-a-guid", NULL, NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* searchTerm over name, e-mail, ... (case-insensitive) */
    r = st_api(t, "GET", "/Contacts?includeArchived=true&searchTerm=zzqqxx-nothing", NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 0);
    st_reply_free(&r);

    /* summaryOnly leaves out the heavy parts */
    r = st_api(t, "GET", "/Contacts?page=1&summaryOnly=true", NULL, NULL);
    json_t *s0 = json_array_get(contacts_of(&r), 0);
    assert_null(json_object_get(s0, "Balances"));
    assert_null(json_object_get(s0, "Addresses"));
    assert_non_null(json_object_get(s0, "Name"));
    st_reply_free(&r);

    /* GET by id, by ContactNumber, and unknown (404, text) */
    snprintf(path, sizeof(path), "/Contacts/%s", st_str(json_array_get(a, 5), "ContactID"));
    r = st_api(t, "GET", path, NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 1);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts/00000000-0000-0000-0000-00000000abcd", NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "The resource you're looking for cannot be found");
    st_reply_free(&r);
    st_reply_free(&all);
    st_stop(t);
}

static void test_ims_and_order(void **state)
{
    (void)state;
    st_sim *t = seeded(120);
    /* every record, ascending by UpdatedDateUTC */
    st_reply r =
        st_api(t, "GET", "/Contacts?includeArchived=true&order=UpdatedDateUTC%20ASC", NULL, NULL);
    json_t *a = contacts_of(&r);
    xs_time prev = 0;
    size_t i;
    json_t *c;
    json_array_foreach(a, i, c)
    {
        xs_time ti;
        assert_int_equal(xs_time_parse_xero(st_str(c, "UpdatedDateUTC"), &ti), XS_OK);
        assert_true(ti >= prev);
        prev = ti;
    }
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts?page=1&includeArchived=true&order=UpdatedDateUTC%20DESC", NULL,
               NULL);
    json_array_foreach(contacts_of(&r), i, c)
    {
        xs_time ti;
        xs_time_parse_xero(st_str(c, "UpdatedDateUTC"), &ti);
        assert_true(i == 0 || ti <= prev);
        prev = ti;
    }
    st_reply_free(&r);

    /* a user edits 5 contacts now: an incremental read since a second ago sees exactly them,
     * in order, whatever the page size */
    char ims[64], hdr[100];
    xs_time_format_iso_seconds(xs_clock_now() - 1000, ims);
    snprintf(hdr, sizeof(hdr), "If-Modified-Since: %s", ims);
    char tpath[128];
    snprintf(tpath, sizeof(tpath), "/_sim/tenants/%s/touch", t->tenant);
    json_t *tc = st_ctl(t, "POST", tpath, "{\"kind\":\"Contacts\",\"count\":5,\"seed\":3}", 200);
    assert_int_equal(json_array_size(json_object_get(tc, "changed")), 5);
    const char *h[] = {hdr, NULL};
    r = st_api(t, "GET", "/Contacts?page=1&pageSize=2&includeArchived=true&order=UpdatedDateUTC",
               NULL, h);
    assert_int_equal(json_integer_value(st_path(r.json, "pagination.itemCount")), 5);
    assert_int_equal(json_integer_value(st_path(r.json, "pagination.pageCount")), 3);
    assert_int_equal(json_array_size(contacts_of(&r)), 2);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts?includeArchived=true", NULL, h);
    assert_int_equal(json_array_size(contacts_of(&r)), 5);
    st_reply_free(&r);
    /* HTTP-date form too */
    r = st_api(t, "GET", "/Contacts?includeArchived=true", NULL,
               (const char *[]){"If-Modified-Since: Sun, 06 Nov 2044 08:49:37 GMT", NULL});
    assert_int_equal(json_array_size(contacts_of(&r)), 0);
    st_reply_free(&r);
    /* a date Xero cannot read is ignored: everything comes back (and is counted) */
    r = st_api(t, "GET", "/Contacts?includeArchived=true", NULL,
               (const char *[]){"If-Modified-Since: yesterday-ish", NULL});
    assert_int_equal(json_array_size(contacts_of(&r)), 120);
    st_reply_free(&r);
    json_t *st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    assert_int_equal(json_integer_value(st_path(st, "if_modified_since.ignored")), 1);
    json_decref(st);
    json_decref(tc);
    /* ordering by another field */
    r = st_api(t, "GET", "/Contacts?includeArchived=true&order=Name%20DESC", NULL, NULL);
    char last[300] = "";
    json_array_foreach(contacts_of(&r), i, c)
    {
        if (i > 0) {
            assert_true(strcasecmp(st_str(c, "Name"), last) <= 0);
        }
        snprintf(last, sizeof(last), "%s", st_str(c, "Name"));
    }
    st_reply_free(&r);
    st_stop(t);
}

/* The engine's keyset tie-break: records of the second a page starts at that the page before
 * read are left out by id, unless they changed after that second. */
static void test_keyset_tiebreak_where(void **state)
{
    (void)state;
    st_sim *t = seeded(120);
    st_reply r =
        st_api(t, "GET", "/Contacts?includeArchived=true&order=UpdatedDateUTC%20ASC", NULL, NULL);
    json_t *all = json_incref(contacts_of(&r));
    st_reply_free(&r);
    json_t *x = json_array_get(all, 60);
    char xid[64];
    snprintf(xid, sizeof(xid), "%s", st_str(x, "ContactID"));
    xs_time at;
    assert_int_equal(xs_time_parse_xero(st_str(x, "UpdatedDateUTC"), &at), XS_OK);
    xs_time sec = (at / 1000) * 1000;
    size_t from = 0; /* the first record of x's second */
    while (from < json_array_size(all)) {
        xs_time ti;
        xs_time_parse_xero(st_str(json_array_get(all, from), "UpdatedDateUTC"), &ti);
        if (ti >= sec) {
            break;
        }
        from++;
    }
    char ims[64], hdr[100], next[XS_TIME_ISO_MAX], path[512];
    xs_time_format_iso_seconds(sec, ims);
    snprintf(hdr, sizeof(hdr), "If-Modified-Since: %s", ims);
    xs_time_format_iso(sec + 1000, next);
    snprintf(
        path, sizeof(path),
        "/Contacts?page=1&includeArchived=true&order=UpdatedDateUTC%%20ASC&where="
        "(UpdatedDateUTC%%3E%%3DDateTime(%.4s%%2C%.2s%%2C%.2s%%2C%.2s%%2C%.2s%%2C%.2s)%%20OR%%20"
        "ContactID!%%3DGuid(%%22%s%%22))",
        next, next + 5, next + 8, next + 11, next + 14, next + 17, xid);
    const char *h[] = {hdr, NULL};
    r = st_api(t, "GET", path, NULL, h);
    json_t *got = contacts_of(&r);
    /* everything from x's second on, but x */
    assert_int_equal(json_integer_value(st_path(r.json, "pagination.itemCount")),
                     (json_int_t)(json_array_size(all) - from - 1));
    size_t i;
    json_t *c;
    json_array_foreach(got, i, c)
    {
        assert_string_not_equal(st_str(c, "ContactID"), xid);
        assert_string_equal(st_str(c, "ContactID"),
                            st_str(json_array_get(all, from + i + (from + i >= 60)), "ContactID"));
    }
    st_reply_free(&r);
    /* and paged: the third page of 10 is the 21st to 30th of them */
    char paged[600];
    snprintf(paged, sizeof(paged), "%s&pageSize=10", path);
    memcpy(strstr(paged, "page=1"), "page=3", 6);
    r = st_api(t, "GET", paged, NULL, h);
    got = contacts_of(&r);
    assert_int_equal(json_array_size(got), 10);
    json_array_foreach(got, i, c)
    {
        size_t at_all = from + 20 + i;
        assert_string_equal(st_str(c, "ContactID"),
                            st_str(json_array_get(all, at_all + (at_all >= 60)), "ContactID"));
    }
    st_reply_free(&r);
    /* once a user edits x, it is newer than that second: the same request brings it */
    char edit[256];
    snprintf(edit, sizeof(edit), "/_sim/tenants/%s/Contacts/%s", t->tenant, xid);
    json_decref(st_ctl(t, "POST", edit, "{\"AccountNumber\":\"TIE-1\"}", 200));
    r = st_api(t, "GET", path, NULL, h);
    got = contacts_of(&r);
    assert_int_equal(json_array_size(got), json_array_size(all) - from);
    assert_string_equal(st_str(json_array_get(got, json_array_size(got) - 1), "ContactID"), xid);
    st_reply_free(&r);
    /* above the high-volume mark, a where the indexes do not answer is refused, as Xero
     * refuses it */
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"high_volume\":50}", 200));
    r = st_api(t, "GET", path, NULL, h);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    json_decref(all);
    st_stop(t);
}

static void test_get_with_empty_json_body(void **state)
{
    (void)state;
    st_sim *t = seeded(3);
    st_reply r = st_api(t, "GET", "/Contacts", "{}", NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts", "not json at all", NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    st_stop(t);
}

static void test_put_post_and_errors(void **state)
{
    (void)state;
    st_sim *t = seeded(0);
    /* PUT creates; the reply carries the records */
    st_reply r = st_api(t, "PUT", "/Contacts",
                        "{\"Contacts\":[{\"Name\":\"Acme Ltd\",\"EmailAddress\":\"a@acme.test\","
                        "\"ContactNumber\":\"EXT-1\",\"Addresses\":[{\"AddressType\":\"STREET\","
                        "\"City\":\"Wellington\"}],\"Phones\":[{\"PhoneType\":\"MOBILE\","
                        "\"PhoneNumber\":\"021 555\"}]},{\"Name\":\"Beta Ltd\"}]}",
                        NULL);
    json_t *a = contacts_of(&r);
    assert_int_equal(json_array_size(a), 2);
    json_t *acme = json_array_get(a, 0);
    char acme_id[64];
    snprintf(acme_id, sizeof(acme_id), "%s", st_str(acme, "ContactID"));
    assert_string_equal(st_str(acme, "ContactStatus"), "ACTIVE");
    assert_string_equal(st_str(st_path(acme, "Addresses.0"), "City"), "Wellington");
    assert_string_equal(st_str(st_path(acme, "Phones.3"), "PhoneNumber"), "021 555");
    assert_null(json_object_get(acme, "StatusAttributeString"));
    st_reply_free(&r);

    /* Name is unique among active contacts, case and spacing aside: the whole batch fails */
    r = st_api(t, "PUT", "/Contacts",
               "{\"Contacts\":[{\"Name\":\"Gamma\"},{\"Name\":\"  acme   LTD \"}]}", NULL);
    assert_int_equal(r.status, 400);
    assert_int_equal(json_integer_value(json_object_get(r.json, "ErrorNumber")), 10);
    assert_string_equal(st_str(r.json, "Type"), "ValidationException");
    json_t *els = json_object_get(r.json, "Elements");
    assert_int_equal(json_array_size(els), 1);
    assert_non_null(strstr(st_str(st_path(els, "0.ValidationErrors.0"), "Message"),
                           "already assigned to another contact"));
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts?where=Name%3D%3D%22Gamma%22", NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 0); /* nothing applied */
    st_reply_free(&r);

    /* with summarizeErrors=false the good items succeed and the bad one is marked */
    r = st_api(t, "POST", "/Contacts?summarizeErrors=false",
               "{\"Contacts\":[{\"Name\":\"Gamma\"},{\"Name\":\"ACME LTD\"},{\"Name\":\"\"},"
               "{\"Name\":\"Delta\",\"EmailAddress\":\"no-at-sign\"},{\"Name\":\"Gamma\"}]}",
               NULL);
    a = contacts_of(&r);
    assert_int_equal(json_array_size(a), 5);
    assert_string_equal(st_str(json_array_get(a, 0), "StatusAttributeString"), "OK");
    assert_string_equal(st_str(json_array_get(a, 1), "StatusAttributeString"), "ERROR");
    assert_true(json_array_size(json_object_get(json_array_get(a, 1), "ValidationErrors")) > 0);
    assert_string_equal(st_str(json_array_get(a, 2), "StatusAttributeString"), "ERROR");
    assert_string_equal(st_str(json_array_get(a, 3), "StatusAttributeString"), "ERROR");
    /* the second Gamma in the same request collides with the first */
    assert_string_equal(st_str(json_array_get(a, 4), "StatusAttributeString"), "ERROR");
    st_reply_free(&r);

    /* POST updates by id (in the body or the URL); read-only fields are ignored */
    char body[600], path[200];
    snprintf(body, sizeof(body),
             "{\"Contacts\":[{\"ContactID\":\"%s\",\"FirstName\":\"Ann\",\"IsCustomer\":true}]}",
             acme_id);
    r = st_api(t, "POST", "/Contacts", body, NULL);
    a = contacts_of(&r);
    assert_string_equal(st_str(json_array_get(a, 0), "FirstName"), "Ann");
    assert_string_equal(st_str(json_array_get(a, 0), "EmailAddress"), "a@acme.test");
    assert_true(json_is_false(json_object_get(json_array_get(a, 0), "IsCustomer")));
    st_reply_free(&r);
    snprintf(path, sizeof(path), "/Contacts/%s", acme_id);
    r = st_api(t, "POST", path, "{\"ContactStatus\":\"ARCHIVED\"}", NULL);
    assert_string_equal(st_str(json_array_get(contacts_of(&r), 0), "ContactStatus"), "ARCHIVED");
    st_reply_free(&r);
    /* once Acme is archived its name is free again */
    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"Acme Ltd\"}", NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 1);
    st_reply_free(&r);
    /* ... and restoring the archived one now collides */
    r = st_api(t, "POST", path, "{\"ContactStatus\":\"ACTIVE\"}", NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* PUT with an existing id is refused; POST with an unknown id too */
    snprintf(body, sizeof(body), "{\"ContactID\":\"%s\",\"Name\":\"Z\"}", acme_id);
    r = st_api(t, "PUT", "/Contacts", body, NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    r = st_api(t, "POST", "/Contacts",
               "{\"ContactID\":\"11111111-2222-3333-4444-555555555555\",\"Name\":\"Z\"}", NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* GET by ContactNumber */
    r = st_api(t, "GET", "/Contacts/EXT-1", NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 1);
    st_reply_free(&r);
    /* a wrong JSON type fails the whole request as PostDataInvalidException */
    r = st_api(t, "PUT", "/Contacts?summarizeErrors=false",
               "{\"Contacts\":[{\"Name\":\"Ok\"},{\"Name\":{\"x\":1}}]}", NULL);
    assert_int_equal(r.status, 400);
    assert_int_equal(json_integer_value(json_object_get(r.json, "ErrorNumber")), 14);
    assert_string_equal(st_str(r.json, "Type"), "PostDataInvalidException");
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts?where=Name%3D%3D%22Ok%22", NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 0);
    st_reply_free(&r);
    st_stop(t);
}

/* test_typed_parts: Addresses and Phones go to the group their type names (OFFICE is
 * DEFAULT); an unknown type is a validation error; a list or element of the wrong JSON type
 * fails the request. */
static void test_typed_parts(void **state)
{
    (void)state;
    st_sim *t = seeded(0);
    st_reply r =
        st_api(t, "PUT", "/Contacts",
               "{\"Name\":\"Parts\",\"Addresses\":[{\"AddressType\":\"pobox\","
               "\"City\":\"Nelson\"}],\"Phones\":[{\"PhoneType\":\"OFFICE\","
               "\"PhoneNumber\":\"04 1\"},{\"PhoneType\":\"fax\",\"PhoneNumber\":\"04 2\"}]}",
               NULL);
    json_t *c = json_array_get(contacts_of(&r), 0);
    assert_string_equal(st_str(st_path(c, "Addresses.1"), "AddressType"),
                        "POBOX"); /* STREET first */
    assert_string_equal(st_str(st_path(c, "Addresses.1"), "City"), "Nelson");
    assert_string_equal(st_str(st_path(c, "Phones.0"), "PhoneType"), "DEFAULT");
    assert_string_equal(st_str(st_path(c, "Phones.0"), "PhoneNumber"), "04 1");
    assert_string_equal(st_str(st_path(c, "Phones.2"), "PhoneType"), "FAX");
    assert_string_equal(st_str(st_path(c, "Phones.2"), "PhoneNumber"), "04 2");
    st_reply_free(&r);

    r = st_api(t, "PUT", "/Contacts?summarizeErrors=false",
               "{\"Name\":\"Bad parts\",\"Addresses\":[{\"AddressType\":\"HOME\"}],"
               "\"Phones\":[{\"PhoneNumber\":\"1\"}]}",
               NULL);
    st_assert_errors(json_array_get(contacts_of(&r), 0), "AddressType must be POBOX or STREET.",
                     "PhoneType must be DEFAULT, DDI, MOBILE or FAX.");
    st_reply_free(&r);

    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"A\",\"Addresses\":{\"City\":\"X\"}}", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "Type"), "PostDataInvalidException");
    assert_non_null(strstr(st_str(r.json, "Message"), "Addresses must be an array. Path '"));
    st_reply_free(&r);
    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"A\",\"Phones\":[\"04 1\"]}", NULL);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(st_str(r.json, "Message"), "a phone must be an object. Path '"));
    assert_non_null(strstr(st_str(r.json, "Message"), ".Phones[0]'."));
    st_reply_free(&r);
    st_stop(t);
}

static void test_idempotency_and_duplicates(void **state)
{
    (void)state;
    st_sim *t = seeded(0);
    const char *body = "{\"Contacts\":[{\"Name\":\"Idem Co\",\"ContactNumber\":\"K-1\"}]}";
    const char *k1[] = {"Idempotency-Key: batch-0001", NULL};
    st_reply r1 = st_api(t, "PUT", "/Contacts", body, k1);
    assert_int_equal(r1.status, 200);
    st_reply r2 = st_api(t, "PUT", "/Contacts", body, k1);
    assert_int_equal(r2.status, 200);
    /* the replay is the recorded reply, byte for byte, and nothing was created twice */
    assert_string_equal(r1.body, r2.body);
    st_reply_free(&r1);
    st_reply_free(&r2);
    st_reply r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(json_array_size(contacts_of(&r)), 1);
    st_reply_free(&r);
    /* the same key with another body is refused */
    r = st_api(t, "PUT", "/Contacts", "{\"Contacts\":[{\"Name\":\"Other Co\"}]}", k1);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* a key longer than 128 characters is refused */
    char longkey[200] = "Idempotency-Key: ";
    memset(longkey + strlen(longkey), 'k', 140);
    const char *kl[] = {longkey, NULL};
    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"Long\"}", kl);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* after the window the key is forgotten */
    json_decref(st_ctl(t, "POST", "/_sim/clock", "{\"advance_ms\":660000}", 200));
    st_connect(t);
    r = st_api(t, "PUT", "/Contacts", "{\"Contacts\":[{\"Name\":\"Other Co\"}]}", k1);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);

    /* duplicate creations: identical contacts can only be created while names differ...
     * so identical items sent twice without a key: the second is refused (no duplicate) */
    const char *same = "{\"Contacts\":[{\"Name\":\"Twice Ltd\"}]}";
    r = st_api(t, "PUT", "/Contacts", same, NULL);
    st_reply_free(&r);
    r = st_api(t, "PUT", "/Contacts", same, NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    json_t *st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    assert_int_equal(json_integer_value(st_path(st, "duplicates.total")), 0);
    assert_int_equal(json_integer_value(st_path(st, "idempotency.replays")), 1);
    assert_int_equal(json_integer_value(st_path(st, "idempotency.conflicts")), 1);
    json_decref(st);
    /* ... but after archiving the first, an identical retry creates a duplicate */
    r = st_api(t, "GET", "/Contacts?where=Name%3D%3D%22Twice%20Ltd%22", NULL, NULL);
    char path[128];
    snprintf(path, sizeof(path), "/Contacts/%s",
             st_str(json_array_get(contacts_of(&r), 0), "ContactID"));
    st_reply_free(&r);
    r = st_api(t, "POST", path, "{\"ContactStatus\":\"ARCHIVED\"}", NULL);
    st_reply_free(&r);
    r = st_api(t, "PUT", "/Contacts", same, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    assert_int_equal(json_integer_value(st_path(st, "duplicates.total")), 1);
    assert_int_equal(json_integer_value(st_path(st, "duplicates.by_kind.Contacts")), 1);
    json_decref(st);
    st_stop(t);
}

static void test_webhook_free_user_changes_and_counts(void **state)
{
    (void)state;
    st_sim *t = seeded(10);
    /* the OAuth calls of st_connect are counted; start from zero */
    json_decref(st_ctl(t, "POST", "/_sim/stats/reset", NULL, 200));
    char path[160];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts", t->tenant);
    json_t *j = st_ctl(t, "PUT", path, "{\"Name\":\"Made In Xero\"}", 200);
    const char *id = st_str(st_path(j, "Contacts.0"), "ContactID");
    char p2[200];
    snprintf(p2, sizeof(p2), "/_sim/tenants/%s/Contacts/%s/archive", t->tenant, id);
    json_t *k = st_ctl(t, "POST", p2, NULL, 200);
    assert_string_equal(st_str(st_path(k, "Contacts.0"), "ContactStatus"), "ARCHIVED");
    json_decref(k);
    json_decref(j);
    /* control calls are not counted as API calls */
    json_t *st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(st, "calls_total")), 0);
    json_decref(st);
    st_reply r = st_api(t, "GET", "/Contacts?page=1", NULL, NULL);
    st_reply_free(&r);
    st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(st, "calls_total")), 1);
    assert_int_equal(json_integer_value(st_path(st, "by_endpoint.GET /Contacts.200")), 1);
    json_decref(st);
    json_t *calls = st_ctl(t, "GET", "/_sim/calls", NULL, 200);
    assert_int_equal(json_array_size(calls), 1);
    assert_string_equal(st_str(json_array_get(calls, 0), "endpoint"), "GET /Contacts");
    json_decref(calls);
    st_stop(t);
}

/* expect_page checks a page past the end: 200, no records, the pagination of that page
 * (count and items -1: only consistent with each other) */
static void expect_page(st_sim *t, const char *path, long long page, long long size,
                        long long count, long long items)
{
    st_reply r = st_api(t, "GET", path, NULL, NULL);
    if (r.status != 200) {
        fprintf(stderr, "%s -> %ld %s\n", path, r.status, r.body);
    }
    assert_int_equal(r.status, 200);
    assert_non_null(r.json);
    json_t *p = json_object_get(r.json, "pagination");
    assert_int_equal(json_integer_value(json_object_get(p, "page")), page);
    assert_int_equal(json_integer_value(json_object_get(p, "pageSize")), size);
    if (count >= 0) { /* -1: whatever the filter matched, consistently */
        assert_int_equal(json_integer_value(json_object_get(p, "pageCount")), count);
        assert_int_equal(json_integer_value(json_object_get(p, "itemCount")), items);
    } else {
        json_int_t n = json_integer_value(json_object_get(p, "itemCount"));
        assert_true(n > 0);
        assert_int_equal(json_integer_value(json_object_get(p, "pageCount")),
                         (n + size - 1) / size);
    }
    json_t *recs = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(r.json, key, v)
    {
        if (json_is_array(v)) {
            recs = v;
        }
    }
    assert_non_null(recs);
    assert_int_equal(json_array_size(recs), 0);
    st_reply_free(&r);
}

static void test_page_bounds(void **state)
{
    (void)state;
    st_sim *t = seeded(250);
    /* far past the end, through the index and through a filter that gathers */
    expect_page(t, "/Contacts?page=1000000&includeArchived=true", 1000000, 100, 3, 250);
    expect_page(t, "/Contacts?page=2147483647&pageSize=1000&includeArchived=true", 2147483647, 1000,
                1, 250);
    expect_page(t, "/Contacts?page=2147483647&searchTerm=a&order=Name", 2147483647, 100, -1, -1);
    expect_page(t, "/Invoices?page=2147483647&where=Reference%3D%3D%22x%22", 2147483647, 100, 0, 0);
    /* not a page Xero can have (its page is a 32-bit integer): Xero's 400, no crash */
    const char *absurd[] = {"/Contacts?page=9223372036854775807",
                            "/Contacts?page=99999999999999999999", "/Contacts?page=2147483648",
                            "/Invoices?page=9223372036854775807&pageSize=1000",
                            "/Payments?page=9223372036854775807"};
    for (size_t i = 0; i < sizeof(absurd) / sizeof(absurd[0]); i++) {
        st_reply r = st_api(t, "GET", absurd[i], NULL, NULL);
        if (r.status != 400) {
            fprintf(stderr, "%s -> %ld %s\n", absurd[i], r.status, r.body);
        }
        assert_int_equal(r.status, 400);
        assert_non_null(r.json);
        assert_int_equal(json_integer_value(json_object_get(r.json, "ErrorNumber")), 16);
        assert_string_equal(st_str(r.json, "Type"), "QueryParseException");
        assert_non_null(strstr(st_str(r.json, "Message"), "page"));
        st_reply_free(&r);
    }
    st_stop(t);
}

static void test_website_read_only_through_api(void **state)
{
    (void)state;
    st_sim *t = seeded(0);
    /* the API ignores it, as a read-only field (the spec: "Website address for contact (read
     * only)") */
    st_reply r = st_api(t, "PUT", "/Contacts",
                        "{\"Name\":\"Web Co\",\"Website\":\"https://api.example\"}", NULL);
    json_t *c0 = json_array_get(contacts_of(&r), 0);
    assert_null(json_object_get(c0, "Website"));
    char cid[64], path[200];
    snprintf(cid, sizeof(cid), "%s", st_str(c0, "ContactID"));
    st_reply_free(&r);
    snprintf(path, sizeof(path), "/Contacts/%s", cid);
    r = st_api(t, "POST", path, "{\"Website\":\"https://api.example\"}", NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = st_api(t, "GET", path, NULL, NULL);
    assert_null(json_object_get(json_array_get(contacts_of(&r), 0), "Website"));
    st_reply_free(&r);
    /* a Xero user sets it in Xero (here: /_sim); then every read carries it */
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s", t->tenant, cid);
    json_decref(st_ctl(t, "POST", path, "{\"Website\":\"https://www.web.example\"}", 200));
    snprintf(path, sizeof(path), "/Contacts/%s", cid);
    r = st_api(t, "GET", path, NULL, NULL);
    assert_string_equal(st_str(json_array_get(contacts_of(&r), 0), "Website"),
                        "https://www.web.example");
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts?page=1", NULL, NULL);
    assert_string_equal(st_str(json_array_get(contacts_of(&r), 0), "Website"),
                        "https://www.web.example");
    st_reply_free(&r);
    /* a later API update keeps it */
    r = st_api(t, "POST", path, "{\"EmailAddress\":\"web@web.example\",\"Website\":\"\"}", NULL);
    assert_string_equal(st_str(json_array_get(contacts_of(&r), 0), "Website"),
                        "https://www.web.example");
    st_reply_free(&r);
    /* and the user's limit is checked */
    char big[400];
    snprintf(big, sizeof(big), "{\"Website\":\"https://%0300d.example\"}", 0);
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s", t->tenant, cid);
    json_decref(st_ctl(t, "POST", path, big, 400));
    st_stop(t);
}

static void test_idempotency_expiry_after_ttl_change(void **state)
{
    (void)state;
    st_sim *t = seeded(0);
    const char *ka[] = {"Idempotency-Key: long-lived", NULL};
    const char *kb[] = {"Idempotency-Key: short-lived", NULL};
    st_reply r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"A1\"}", ka);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    /* a shorter window from now on: B expires before A, although recorded after it */
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"idempotency_ttl_ms\":1000}", 200));
    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"B1\"}", kb);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"B2\"}", kb);
    assert_int_equal(r.status, 400); /* still remembered */
    st_reply_free(&r);
    json_decref(st_ctl(t, "POST", "/_sim/clock", "{\"advance_ms\":5000}", 200));
    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"B2\"}", kb);
    assert_int_equal(r.status, 200); /* forgotten */
    st_reply_free(&r);
    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"A2\"}", ka);
    assert_int_equal(r.status, 400); /* A's ten minutes are not over */
    st_reply_free(&r);
    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"A1\"}", ka);
    assert_int_equal(r.status, 200); /* a replay */
    st_reply_free(&r);
    json_t *st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    assert_int_equal(json_integer_value(st_path(st, "idempotency.replays")), 1);
    json_decref(st);
    st_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_and_paging),
        cmocka_unit_test(test_archived_where_ids_search),
        cmocka_unit_test(test_ims_and_order),
        cmocka_unit_test(test_keyset_tiebreak_where),
        cmocka_unit_test(test_get_with_empty_json_body),
        cmocka_unit_test(test_put_post_and_errors),
        cmocka_unit_test(test_typed_parts),
        cmocka_unit_test(test_idempotency_and_duplicates),
        cmocka_unit_test(test_webhook_free_user_changes_and_counts),
        cmocka_unit_test(test_page_bounds),
        cmocka_unit_test(test_website_read_only_through_api),
        cmocka_unit_test(test_idempotency_expiry_after_ttl_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
