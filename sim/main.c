/* xero-sim: a faithful stand-in for Xero's identity, accounting and webhook APIs, for tests,
 * benchmarks and the demo. See sim/README.md. */
#include <stdio.h>

#include "sim.h"
#include "xs/proc.h"

static const char usage[] =
    "xero-sim: serves Xero's OAuth 2.0 identity endpoints (/identity/connect/authorize, "
    "/connect/token, /connect/revocation, /connections), the Accounting API under "
    "/api.xro/2.0 (Contacts, Invoices, Payments, Accounts, BankTransactions, Organisation) with "
    "Xero's rules, rate limits and error shapes, signed webhooks, injected latency and faults, "
    "and a control API under /_sim. All state is in memory. Stop it with SIGTERM or SIGINT.";

int main(int argc, char **argv)
{
    xs_proc p;
    int code;
    if (xs_proc_start(&p, "xero-sim", XS_PROC_SIM, argc, argv, usage, &code) != XS_OK) {
        return code;
    }
    if (argc > 1) {
        xs_log_error(p.log, "args.invalid", "{s:s}", "arg", argv[1]);
        xs_proc_finish(&p, XS_EXIT_CONFIG);
        return XS_EXIT_CONFIG;
    }
    sim *s = NULL;
    xs_err e = sim_create(&s, p.cfg, p.log);
    if (e != XS_OK) {
        code = e == XS_ECONFIG ? XS_EXIT_CONFIG : XS_EXIT_FAIL;
        xs_log_error(p.log, "sim.start_failed", "{s:s}", "err", xs_err_name(e));
        xs_proc_finish(&p, code);
        return code;
    }
    xs_log_info(p.log, "sim.listen", "{s:s,s:i}", "addr", xs_config_str(p.cfg, "XS_SIM_ADDR"),
                "port", (int)sim_port(s));
    while (xs_proc_wait_signal(&p, 1000) == 0) {
    }
    sim_destroy(s);
    xs_proc_finish(&p, XS_EXIT_OK);
    return XS_EXIT_OK;
}
