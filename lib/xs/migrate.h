/*
 * migrate.h: the database schema's versions, compiled in from db/migrations/NNNN_name.sql.
 *
 * xs_migrate_apply brings a database up to this build's version: each pending migration
 * runs in its own transaction and is recorded in sync.schema_migrations with its SHA-256;
 * a database that already holds a version this build does not know (a newer build migrated
 * it), or whose recorded checksum for a version differs from this build's file, is refused
 * with XS_ESCHEMA. Concurrent callers serialise on an advisory lock, so two processes
 * starting at once do not both migrate. Every service calls xs_migrate_check at start.
 */
#ifndef XS_MIGRATE_H
#define XS_MIGRATE_H

#include <stddef.h>

#include "xs/err.h"
#include "xs/log.h"
#include "xs/pg.h"

typedef struct xs_migration {
    int version;      /* NNNN from the file name */
    const char *name; /* the rest of the file name, without ".sql" */
    const char *sql;  /* the file's text */
    size_t len;       /* its length in bytes */
} xs_migration;

/* The migrations this build carries, in version order (generated at build time). */
extern const xs_migration xs_migrations[];
extern const size_t xs_nmigrations;

/* xs_migrate_latest returns the highest version this build carries (0 when none). */
int xs_migrate_latest(void);

/* xs_migrate_apply applies every pending migration. *applied (may be NULL) receives how many
 * ran. On failure the failing migration is rolled back whole and its error logged and left
 * readable through xs_pg_error(pg). It creates schema `sync` and sync.schema_migrations when
 * missing (the ledger is not itself a migration). pg must not be inside a transaction
 * (XS_ESTATE). */
xs_err xs_migrate_apply(xs_pg *pg, xs_log *log, int *applied);

/* xs_migrate_version reads the database's current version into *out (0 for an empty
 * database). */
xs_err xs_migrate_version(xs_pg *pg, int *out);

/* xs_migrate_check returns XS_OK when the database is exactly at this build's version, else
 * XS_ESCHEMA with a one-line reason in err (160 bytes), e.g. "database is at version 3,
 * this build needs 5: run xs-migrate". */
xs_err xs_migrate_check(xs_pg *pg, char *err);

#endif
