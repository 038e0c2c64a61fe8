/* mapping_api.h: the REST route of the links between local records and Xero's
 * (mapping_api.c), read from sync.mappings. */
#ifndef ORCH_MAPPING_API_H
#define ORCH_MAPPING_API_H

#include "rest.h"

/* The route (docs/API.md, "Mappings"): GET /v1/mappings. */
orch_route orch_api_mappings;

#endif
