/* connections.h: the REST routes for connections and the OAuth callback (connections.c),
 * fronting xs-auth, and the bus's connection events. */
#ifndef ORCH_CONNECTIONS_H
#define ORCH_CONNECTIONS_H

#include "orch.h"
#include "proto.h"
#include "rest.h"

/* The routes (docs/API.md): POST /v1/connections/authorize, GET /v1/oauth/callback, GET
 * /v1/connections, GET, POST .../check, POST .../pause, POST .../resume and DELETE
 * /v1/connections/{id}. */
orch_route orch_connections_authorize, orch_oauth_callback, orch_connections_list,
    orch_connections_get, orch_connections_check, orch_connections_pause, orch_connections_resume,
    orch_connections_delete;

/* orch_event_connection takes an event.connection (borrowed) from the bus. */
void orch_event_connection(orch *o, const xs_msg *m);

#endif
