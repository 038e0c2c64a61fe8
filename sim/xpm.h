/*
 * xpm.h: a tenant's Xero Practice Manager (XPM) data: clients, the practice's job states and
 * jobs, their rendering in the XPM API v3.1's JSON shapes (ClientDetailedDto, JobDto,
 * NamedEntityDto), the changes a practice's staff make (adding clients and jobs, moving a job
 * to another state) and realistic seeding. Owns each tenant's sim_xpm (made with the tenant by
 * world.c, freed with it by store.c), guarded by the tenant's lock: the readers here need it
 * held for reading, the writers for writing.
 */
#ifndef XS_SIM_XPM_H
#define XS_SIM_XPM_H

#include "store.h"

/* Text fields of an XPM client, packed in one sim_strs. */
enum {
    XC_NAME,
    XC_EMAIL,
    XC_FIRST,
    XC_LAST,
    XC_PHONE,
    XC_ADDRESS,
    XC_CITY,
    XC_REGION,
    XC_POSTCODE,
    XC_COUNTRY,
    XC_WEBSITE,
    XC_NSTR
};

typedef struct sim_xpm_client {
    xs_uuid uuid;
    sim_strs s;
    bool archived;
    xs_time created, modified;
} sim_xpm_client;

/* Text fields of an XPM job. */
enum { XJ_NAME, XJ_DESCRIPTION, XJ_TYPE, XJ_ORDER, XJ_NSTR };

typedef struct sim_xpm_job {
    char number[32]; /* the job's id, "J000123" */
    xs_uuid uuid;
    sim_strs s;
    uint32_t client; /* index into the clients */
    uint32_t state;  /* index into the states */
    xs_time created, modified;
    xs_time start, due, completed; /* days (midnight UTC); completed 0 while not completed */
    bool has_budget;
    xs_money budget;
} sim_xpm_job;

typedef struct sim_xpm_state {
    xs_uuid uuid;
    char name[64];
    bool completed; /* a job in it is completed (job.api/current leaves it out) */
} sim_xpm_state;

#define SIM_XPM_STATES_MAX 32
#define SIM_XPM_SEED_MAX   10000

typedef struct sim_xpm {
    sim_xpm_client **clients; /* in creation order */
    uint32_t nclients, capclients;
    sim_xpm_job **jobs; /* in creation order (so in job number order) */
    uint32_t njobs, capjobs;
    sim_xpm_state states[SIM_XPM_STATES_MAX];
    uint32_t nstates;
    uint32_t next_number; /* the next automatic job number */
    sim_rng rng;          /* uuids */
} sim_xpm;

/* sim__xpm_attach gives t its XPM data (new, owned by t): no clients or jobs, and the default
 * job states of a practice (Planned, In Progress, Waiting on Client, Review, Completed) with
 * ids drawn from seed and the tenant's id. XS_ENOMEM. */
xs_err sim__xpm_attach(sim_tenant *t, uint64_t seed);

/* sim__xpm_client_find returns the client with that uuid (text; borrowed), or NULL. */
sim_xpm_client *sim__xpm_client_find(const sim_xpm *x, const char *uuid, uint32_t *index);
/* sim__xpm_job_find returns the job with that number (case-insensitive; borrowed), or NULL. */
sim_xpm_job *sim__xpm_job_find(const sim_xpm *x, const char *number);
/* sim__xpm_state_find returns the index of the job state named name (case-insensitive), or
 * SIM_NONE. */
uint32_t sim__xpm_state_find(const sim_xpm *x, const char *name);

/* sim__xpm_client_json renders a client as ClientDetailedDto (new); detailed adds its
 * contacts, notes, groups and relationships (the simulator keeps none: empty lists). */
json_t *sim__xpm_client_json(const sim_xpm_client *cl, bool detailed);
/* sim__xpm_job_json renders a job as JobDto (new); detailed adds its tasks, milestones and
 * notes (empty lists). */
json_t *sim__xpm_job_json(const sim_xpm *x, const sim_xpm_job *j, bool detailed);
/* sim__xpm_state_json renders a job state as NamedEntityDto (new). */
json_t *sim__xpm_state_json(const sim_xpm_state *st);

/* sim__xpm_client_put adds a client from a control request's item (cl NULL), or changes the
 * client cl (only the fields given), as a practice's staff do; its modified time becomes now.
 * The item's fields are those of ClientBaseDto the simulator keeps: name
 * (required for a new client), email, firstName, lastName, phone, address, city, region,
 * postCode, country, website (strings), isArchived (boolean). XS_EINVAL with why (256 bytes)
 * for a bad item (nothing changed), XS_ENOMEM. *out: the client (borrowed). */
xs_err sim__xpm_client_put(sim_xpm *x, sim_xpm_client *cl, const json_t *item, xs_time now,
                           sim_xpm_client **out, char *why);
/* sim__xpm_job_add adds a job from a control request's item: name and client (a client's
 * uuid, as text or {"uuid": ...}) required; id (the job number; default the next "J000001"
 * form), description, type, clientOrderNumber, state (a job state's name; default the
 * first), startDate (default today), dueDate (default 30 days after the start), budget
 * (a number), created (when it was created, default now: job.api/list selects by it), all
 * dates ISO 8601. XS_EINVAL with why (256 bytes), nothing added; XS_ENOMEM. */
xs_err sim__xpm_job_add(sim_xpm *x, const json_t *item, xs_time now, sim_xpm_job **out, char *why);
/* sim__xpm_job_set_state moves a job to the state at index st, as XPM does: a completed state
 * sets completedDate to today, any other clears it; modified becomes now. */
void sim__xpm_job_set_state(sim_xpm_job *j, const sim_xpm *x, uint32_t st, xs_time now);

/* A mark of how many clients and jobs x holds, to take back what a batch added when one of
 * its items fails (sim__xpm_rollback). */
typedef struct sim_xpm_mark {
    uint32_t nclients, njobs, next_number;
} sim_xpm_mark;

/* sim__xpm_mark_take returns x's mark now. */
sim_xpm_mark sim__xpm_mark_take(const sim_xpm *x);
/* sim__xpm_rollback removes every client and job added since mark m (no job added since
 * then may remain whose client is removed: jobs go first). */
void sim__xpm_rollback(sim_xpm *x, sim_xpm_mark m);

/* sim__xpm_seed adds n realistic clients (at most SIM_XPM_SEED_MAX) with one to three jobs
 * each, deterministic under seed, created over the 120 days before now. About half of the
 * clients carry the name and e-mail address of one of the tenant's accounting contacts (when
 * it has any), as a practice whose clients are also in its Xero organisation; the rest have
 * names of their own. XS_ENOMEM. */
xs_err sim__xpm_seed(sim_tenant *t, uint32_t n, uint64_t seed, xs_time now);

/* sim__xpm_json describes everything for /_sim/xpm (new): clients, job states and jobs as
 * the API renders them (detailed), each with the simulator's own created and modified
 * times. */
json_t *sim__xpm_json(const sim_xpm *x);

#endif
