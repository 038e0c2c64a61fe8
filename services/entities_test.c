/* entities_test.c: every domain service's entity ops agree with the one table of entities
 * (xs_domain_entities_check), as each service's main lists them, and with the entities of
 * xs-files and xs-jobs (which answer their steps with handlers of their own, not entity ops)
 * cover the table. */
#include <string.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "contacts/contact.h"
#include "invoices/account.h"
#include "invoices/invoice.h"
#include "payments/banktx.h"
#include "payments/payment.h"

static void test_services_agree_with_the_table(void **state)
{
    (void)state;
    static const xs_entity_ops *const contacts[] = {&contact_ops, NULL};
    static const xs_entity_ops *const invoices[] = {&account_ops, &invoice_ops, NULL};
    static const xs_entity_ops *const payments[] = {&payment_ops, &bank_transaction_ops, NULL};
    const struct {
        const char *domain;
        const xs_entity_ops *const *ops;
    } services[] = {{"contacts", contacts}, {"invoices", invoices}, {"payments", payments}};
    size_t served = 0;
    for (size_t s = 0; s < 3; s++) {
        char why[XS_DOMAIN_WHY_MAX] = "";
        if (xs_domain_entities_check(services[s].domain, services[s].ops, why) != XS_OK) {
            fail_msg("%s: %s", services[s].domain, why);
        }
        for (size_t i = 0; services[s].ops[i] != NULL; i++) {
            served++;
        }
    }
    size_t n = 0;
    const xs_entity_info *all = xs_entities(&n);
    for (size_t i = 0; i < n; i++) {
        served += strcmp(all[i].domain, "files") == 0 || strcmp(all[i].domain, "jobs") == 0;
    }
    assert_int_equal(served, XS_ENTITY_COUNT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_services_agree_with_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
