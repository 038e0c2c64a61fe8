/* domain_service.c: the runtime entry of the domain services that sync entities (see
 * domain_service.h). */
#include "domain_service.h"

#include "xs/config.h"
#include "xs/log.h"
#include "xs/proc.h"
#include "engine/runtime.h"

/* Each service's identity: its binary, the variables it reads (config.h) and its --help. */
static const struct service {
    xs_bus_domain domain;
    const char *name;
    unsigned procmask;
    const char *usage;
} services[] = {
    {XS_BUS_DOMAIN_CONTACTS, "xs-contacts", XS_PROC_CONTACTS,
     "xs-contacts: syncs contacts (customers and suppliers) between app.contacts and Xero, one "
     "bounded step at a time as the orchestrator hands them out. It dials the orchestrator's "
     "bus (XS_BUS_URL) and calls Xero at XS_XERO_API_URL. Start as many replicas as you like; "
     "stop with SIGTERM."},
    {XS_BUS_DOMAIN_INVOICES, "xs-invoices", XS_PROC_INVOICES,
     "xs-invoices: syncs invoices and bills with their lines between app.invoices and Xero, "
     "and mirrors Xero's chart of accounts into app.accounts, one bounded step at a time as "
     "the orchestrator hands them out. It dials the orchestrator's bus (XS_BUS_URL) and calls "
     "Xero at XS_XERO_API_URL. Start as many replicas as you like; stop with SIGTERM."},
    {XS_BUS_DOMAIN_PAYMENTS, "xs-payments", XS_PROC_PAYMENTS,
     "xs-payments: syncs payments between app.payments and Xero, and mirrors Xero's bank "
     "transactions into app.bank_transactions, one bounded step at a time as the orchestrator "
     "hands them out. It dials the orchestrator's bus (XS_BUS_URL) and calls Xero at "
     "XS_XERO_API_URL. Start as many replicas as you like; stop with SIGTERM."},
};

int domain_service_run(xs_bus_domain domain, const xs_entity_ops *const *entities, int argc,
                       char **argv)
{
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
        const struct service *s = &services[i];
        if (s->domain != domain) {
            continue;
        }
        /* A service whose ops disagree with the table of entities never starts. */
        char why[XS_DOMAIN_WHY_MAX];
        if (xs_domain_entities_check(xs_bus_domain_name(domain), entities, why) != XS_OK) {
            xs_log *log = NULL;
            if (xs_log_create(&log, s->name, XS_LOG_ERROR, 2) == XS_OK) {
                xs_log_error(log, "svc.entities_mismatch", "{s:s}", "reason", why);
            }
            xs_log_destroy(log);
            return XS_EXIT_FAIL;
        }
        xs_svc_def def = {
            .name = s->name,
            .service = xs_bus_domain_name(domain),
            .procmask = s->procmask,
            .domain = domain,
            .usage = s->usage,
        };
        return xs_domain_svc_main(&def, entities, argc, argv);
    }
    return XS_EXIT_FAIL;
}
