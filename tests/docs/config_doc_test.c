/*
 * config_doc_test.c: docs/CONFIG.md documents exactly the variables in the one table
 * (lib/xs/config_vars.c). The table in the document sits between the markers
 *   <!-- BEGIN xs_config_markdown -->  and  <!-- END xs_config_markdown -->
 * and must equal what xs_config_markdown generates. `config_doc_test --write FILE` rewrites
 * that part of FILE (what `make config-doc` runs).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/config.h"

#define BEGIN "<!-- BEGIN xs_config_markdown -->\n"
#define END   "<!-- END xs_config_markdown -->"

static const char *doc_path;

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
    if (buf != NULL) {
        size_t got = fread(buf, 1, (size_t)n, f);
        buf[got] = '\0';
    }
    fclose(f);
    return buf;
}

static void test_doc_matches_table(void **state)
{
    (void)state;
    char *want = NULL;
    assert_int_equal(xs_config_markdown(&want), XS_OK);
    char *doc = read_all(doc_path);
    if (doc == NULL) {
        fail_msg("cannot read %s", doc_path);
    }
    char *b = strstr(doc, BEGIN);
    char *e = b != NULL ? strstr(b, END) : NULL;
    if (b == NULL || e == NULL) {
        fail_msg("%s lacks the markers %s and %s", doc_path, BEGIN, END);
    }
    b += strlen(BEGIN);
    *e = '\0';
    if (strcmp(b, want) != 0) {
        fprintf(stderr,
                "docs/CONFIG.md is out of date with lib/xs/config_vars.c; run "
                "`make config-doc`. The table should read:\n%s\n",
                want);
        fail();
    }
    free(doc);
    free(want);
}

/* Every variable is documented with a sentence and used by some process. */
static void test_table_is_complete(void **state)
{
    (void)state;
    for (size_t i = 0; i < xs_config_nvars; i++) {
        const xs_config_var *v = &xs_config_vars[i];
        if (strncmp(v->name, "XS_", 3) != 0) {
            fail_msg("%s: every variable starts with XS_", v->name);
        }
        if (v->doc == NULL || strlen(v->doc) < 10) {
            fail_msg("%s: no documentation", v->name);
        }
        if (v->used_by == 0) {
            fail_msg("%s: used by no process", v->name);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(xs_config_vars[j].name, v->name) == 0) {
                fail_msg("%s: declared twice", v->name);
            }
        }
    }
}

/* write_doc replaces the generated part of path with the table. */
static int write_doc(const char *path)
{
    char *table = NULL;
    if (xs_config_markdown(&table) != XS_OK) {
        return 1;
    }
    char *doc = read_all(path);
    char *b = doc != NULL ? strstr(doc, BEGIN) : NULL;
    char *e = b != NULL ? strstr(b, END) : NULL;
    if (b == NULL || e == NULL) {
        fprintf(stderr, "%s lacks the markers\n", path);
        return 1;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return 1;
    }
    fwrite(doc, 1, (size_t)(b - doc) + strlen(BEGIN), f);
    fputs(table, f);
    fputs(e, f);
    fclose(f);
    free(doc);
    free(table);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write") == 0) {
        return write_doc(argv[2]);
    }
    doc_path = getenv("XS_CONFIG_DOC");
    if (doc_path == NULL) {
        fprintf(stderr, "XS_CONFIG_DOC is not set: run through ctest\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_matches_table),
        cmocka_unit_test(test_table_is_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
