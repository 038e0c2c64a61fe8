/* organisations.h: the REST routes of the host application's organisations (organisations.c),
 * the rows of app.organisations that connect Xero tenants. */
#ifndef ORCH_ORGANISATIONS_H
#define ORCH_ORGANISATIONS_H

#include "rest.h"

/* The routes (docs/API.md, "Organisations"): POST /v1/organisations, GET /v1/organisations
 * and GET /v1/organisations/{id}. */
orch_route orch_organisations_create, orch_organisations_list, orch_organisations_get;

#endif
