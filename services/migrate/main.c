/* xs-migrate: brings the database to this build's schema version, then exits. */
#include <stdio.h>
#include <string.h>

#include "xs/migrate.h"
#include "xs/pg.h"
#include "xs/proc.h"

static const char usage[] =
    "xs-migrate [--check]: applies every pending migration in db/migrations (compiled in) to "
    "XS_DATABASE_URL, each in its own transaction, and exits 0. It refuses a database that a "
    "newer build has migrated. With --check it changes nothing and exits 0 only when the "
    "database is exactly at this build's version (1 otherwise).";

int main(int argc, char **argv)
{
    xs_proc p;
    int code;
    if (xs_proc_start(&p, "xs-migrate", XS_PROC_MIGRATE, argc, argv, usage, &code) != XS_OK) {
        return code;
    }
    bool check_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check") == 0) {
            check_only = true;
        } else {
            xs_log_error(p.log, "args.invalid", "{s:s}", "arg", argv[i]);
            xs_proc_finish(&p, XS_EXIT_CONFIG);
            return XS_EXIT_CONFIG;
        }
    }
    code = XS_EXIT_FAIL;
    xs_pg *pg = NULL;
    xs_err e = xs_pg_connect(&pg, xs_config_str(p.cfg, "XS_DATABASE_URL"), "xs-migrate",
                             xs_config_int(p.cfg, "XS_DB_CONNECT_WAIT"), p.log);
    if (e != XS_OK) {
        xs_log_error(p.log, "db.unreachable", "{s:s}", "err", xs_err_name(e));
        goto done;
    }
    if (check_only) {
        char why[160];
        e = xs_migrate_check(pg, why);
        if (e == XS_OK) {
            xs_log_info(p.log, "migrate.current", "{s:i}", "version", xs_migrate_latest());
            code = XS_EXIT_OK;
        } else {
            xs_log_error(p.log, "migrate.not_current", "{s:s}", "reason", why);
        }
        goto done;
    }
    int applied = 0;
    e = xs_migrate_apply(pg, p.log, &applied);
    if (e != XS_OK) {
        xs_log_error(p.log, "migrate.failed", "{s:s, s:s}", "err", xs_err_name(e), "reason",
                     xs_pg_error(pg));
        goto done;
    }
    xs_log_info(p.log, "migrate.done", "{s:i, s:i}", "applied", applied, "version",
                xs_migrate_latest());
    code = XS_EXIT_OK;
done:
    xs_pg_close(pg);
    xs_proc_finish(&p, code);
    return code;
}
