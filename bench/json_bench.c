/*
 * json_bench: the JSON module's own work on a pull page, in one process, with no database and
 * no network: what sync_bench's pulls spend in lib/xs/json (issue 18 keeps it from growing).
 *
 * It builds a page of N Xero-style contacts and one of N invoices with lines (about 20
 * decimal amounts each), then, R times over each page: xs_json_parse (the fast path),
 * xs_json_parse_full (the full way), xs_json_dump with sorted keys (the canonical form),
 * xs_json_list_spans, and xs_json_equal of the two parses. It prints the milliseconds of each
 * step (the best of the R rounds) and a checksum of what was made, so two builds can be
 * compared: run it under `valgrind --tool=callgrind` for instruction counts that do not
 * depend on the machine's load.
 *
 * Usage: json_bench [--records N] [--rounds R]   (defaults 1000 and 5)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xs/json.h"

/* page_contacts makes the text of a contacts page of n records (new, free()). */
static char *page_contacts(int n, size_t *len)
{
    json_t *list = json_array();
    for (int i = 0; i < n; i++) {
        char id[40], name[64], mail[64];
        snprintf(id, sizeof(id), "%08x-1111-4222-8333-%012d", (unsigned)i * 2654435761u, i);
        snprintf(name, sizeof(name), "Contact O'Brien & Sons %d", i);
        snprintf(mail, sizeof(mail), "contact%d@example.com", i);
        json_t *phones = json_array();
        json_array_append_new(phones, json_pack("{s:s,s:s,s:s}", "PhoneType", "DEFAULT",
                                                "PhoneNumber", "555-0100", "PhoneAreaCode", "09"));
        json_t *c =
            json_pack("{s:s,s:s,s:s,s:s,s:b,s:b,s:o,s:s,s:s}", "ContactID", id, "ContactStatus",
                      "ACTIVE", "Name", name, "EmailAddress", mail, "IsSupplier", i % 3 == 0,
                      "IsCustomer", 1, "Phones", phones, "UpdatedDateUTC",
                      "/Date(1573755038314+0000)/", "Notes", "line one\nline \"two\"");
        json_object_set_new(c, "Balance", xs_json_decimal(i % 2 ? "-12.50" : "1234.5678"));
        json_array_append_new(list, c);
    }
    json_t *page = json_pack("{s:o}", "Contacts", list);
    char *text = xs_json_dump(page, XS_JSON_COMPACT);
    json_decref(page);
    *len = strlen(text);
    return text;
}

/* page_invoices makes the text of an invoices page of n records with three lines each. */
static char *page_invoices(int n, size_t *len)
{
    json_t *list = json_array();
    for (int i = 0; i < n; i++) {
        char id[40];
        snprintf(id, sizeof(id), "%08x-aaaa-4bbb-8ccc-%012d", (unsigned)i * 40503u, i);
        json_t *lines = json_array();
        for (int l = 0; l < 3; l++) {
            json_t *line = json_pack("{s:s,s:s,s:s}", "Description", "Consulting, hourly",
                                     "AccountCode", "200", "TaxType", "OUTPUT2");
            json_object_set_new(line, "Quantity", xs_json_decimal("2.0000"));
            json_object_set_new(line, "UnitAmount", xs_json_decimal("125.50"));
            json_object_set_new(line, "TaxAmount", xs_json_decimal("37.65"));
            json_object_set_new(line, "LineAmount", xs_json_decimal("251.00"));
            json_array_append_new(lines, line);
        }
        json_t *inv = json_pack("{s:s,s:s,s:s,s:s,s:{s:s},s:o,s:s}", "InvoiceID", id, "Type",
                                "ACCREC", "Status", "AUTHORISED", "InvoiceNumber", "INV-0001",
                                "Contact", "ContactID", "0a1b2c3d-1111-4222-8333-444455556666",
                                "LineItems", lines, "Date", "/Date(1573689600000+0000)/");
        const char *amounts[] = {"SubTotal",   "TotalTax",       "Total",       "AmountDue",
                                 "AmountPaid", "AmountCredited", "CurrencyRate"};
        for (size_t a = 0; a < sizeof(amounts) / sizeof(amounts[0]); a++) {
            json_object_set_new(inv, amounts[a], xs_json_decimal(a == 6 ? "1.000000" : "753.00"));
        }
        json_array_append_new(list, inv);
    }
    json_t *page = json_pack("{s:o}", "Invoices", list);
    char *text = xs_json_dump(page, XS_JSON_COMPACT);
    json_decref(page);
    *len = strlen(text);
    return text;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* run_page measures the steps on one page and prints a row per step. */
static unsigned long run_page(const char *name, const char *key, const char *text, size_t len,
                              int rounds)
{
    double best[5] = {1e300, 1e300, 1e300, 1e300, 1e300};
    unsigned long sum = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ms();
        json_t *a = xs_json_parse(text, len, NULL);
        double t1 = now_ms();
        json_t *b = xs_json_parse_full(text, len, NULL);
        double t2 = now_ms();
        char *out = xs_json_dump(a, XS_JSON_SORT_KEYS);
        double t3 = now_ms();
        xs_json_span list, *items = NULL;
        size_t n = 0;
        xs_err e = xs_json_list_spans(text, len, key, &list, &items, &n);
        double t4 = now_ms();
        bool same = xs_json_equal(a, b);
        double t5 = now_ms();
        if (a == NULL || b == NULL || out == NULL || e != XS_OK || !same) {
            fprintf(stderr, "json_bench: %s: a step failed\n", name);
            exit(1);
        }
        sum += strlen(out) + n;
        double d[5] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4};
        for (int k = 0; k < 5; k++) {
            best[k] = d[k] < best[k] ? d[k] : best[k];
        }
        free(out);
        free(items);
        json_decref(a);
        json_decref(b);
    }
    printf("| %s (%zu bytes) | %.2f | %.2f | %.2f | %.2f | %.2f |\n", name, len, best[0], best[1],
           best[2], best[3], best[4]);
    return sum;
}

int main(int argc, char **argv)
{
    int records = 1000, rounds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--records") == 0) {
            records = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--rounds") == 0) {
            rounds = atoi(argv[i + 1]);
        }
    }
    if (records <= 0 || rounds <= 0) {
        fprintf(stderr, "usage: json_bench [--records N] [--rounds R]\n");
        return 2;
    }
    size_t clen, ilen;
    char *contacts = page_contacts(records, &clen);
    char *invoices = page_invoices(records, &ilen);
    printf("| page | parse ms | parse_full ms | dump (sorted) ms | list_spans ms | equal ms |\n");
    printf("|---|---|---|---|---|---|\n");
    unsigned long sum = run_page("contacts", "Contacts", contacts, clen, rounds);
    sum += run_page("invoices", "Invoices", invoices, ilen, rounds);
    printf("checksum %lu\n", sum);
    free(contacts);
    free(invoices);
    return 0;
}
