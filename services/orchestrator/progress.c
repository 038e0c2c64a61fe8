/*
 * progress.c: a run's progress by entity. Each phase's tally lives in the run's params
 * (params.progress[phase] = {"done", "left"}), written with the run's row by the step that
 * finishes, so reading it costs nothing more than reading the run. The total of a phase is
 * what it was given (the ids of a fetch or push) or, for a pull or a scan, what is done plus
 * what the domain service last said was left: for a pull Xero's pagination.itemCount, for a
 * scan a count of the local records after where it stands; unknown (null) until one says.
 */
#include "progress.h"

#include <stdio.h>
#include <string.h>

#include "xs/json.h"

/* tally returns params.progress[phase] (borrowed), made when missing. */
static json_t *tally(json_t *params, int phase)
{
    json_t *all = json_object_get(params, "progress");
    if (all == NULL) {
        all = json_object();
        json_object_set_new(params, "progress", all);
    }
    char ph[16];
    snprintf(ph, sizeof(ph), "%d", phase);
    json_t *t = json_object_get(all, ph);
    if (t == NULL) {
        t = json_pack("{s:I}", "done", (json_int_t)0);
        json_object_set_new(all, ph, t);
    }
    return t;
}

void orch_progress_note(json_t *params, int phase, const char *kind, const json_t *input,
                        const json_t *reply)
{
    json_int_t add = 0;
    int64_t v = 0;
    bool absolute = false;
    if (strcmp(kind, "pull") == 0) {
        add = json_integer_value(json_object_get(json_object_get(reply, "counts"), "fetched"));
    } else if (strcmp(kind, "fetch") == 0) {
        add = (json_int_t)json_array_size(json_object_get(input, "ids"));
    } else if (strcmp(kind, "push") == 0 && json_object_get(input, "from") != NULL &&
               xs_json_get_int(reply, "consumed", &v) == XS_OK) {
        add = (json_int_t)v; /* a window of the phase's ids; other pushes redo records of one */
    } else if (strcmp(kind, "scan") == 0 && xs_json_get_int(reply, "scan_done", &v) == XS_OK) {
        add = (json_int_t)v;
        absolute = true;
    } else if (strcmp(kind, "scan") != 0 && strcmp(kind, "pull") != 0) {
        return;
    }
    json_t *t = tally(params, phase);
    json_int_t done = absolute ? add : json_integer_value(json_object_get(t, "done")) + add;
    json_object_set_new(t, "done", json_integer(done));
    if (xs_json_get_int(reply, "left", &v) == XS_OK) {
        json_object_set_new(t, "left", json_integer(v));
    }
}

/* phase_json is the progress of a started phase (its tally t, may be NULL): finished when the
 * run went past it, over when the run ended, queued when none of the run's steps ran yet. */
static json_t *phase_json(const json_t *phase, const json_t *t, bool finished, bool over,
                          bool queued)
{
    const char *op = xs_json_str_or(phase, "op", "");
    json_int_t done = json_integer_value(json_object_get(t, "done"));
    json_t *total = NULL;
    if (strcmp(op, "fetch") == 0 || strcmp(op, "push") == 0) {
        json_int_t n = (json_int_t)json_array_size(json_object_get(phase, "ids"));
        done = done > n ? n : done;
        total = json_integer(n);
    } else if (finished) {
        total = json_integer(done); /* read or scanned to its end */
    } else if (json_is_integer(json_object_get(t, "left"))) {
        total = json_integer(done + json_integer_value(json_object_get(t, "left")));
    } else {
        total = json_null();
    }
    const char *state = finished ? "done" : over ? "stopped" : queued ? "waiting" : "running";
    return json_pack("{s:s, s:s, s:I, s:o}", "phase", op, "state", state, "done", done, "total",
                     total);
}

json_t *orch_progress_json(const json_t *phases, int run_phase, const char *status,
                           const json_t *params)
{
    bool over = strcmp(status, "queued") != 0 && strcmp(status, "running") != 0;
    bool completed = strcmp(status, "succeeded") == 0 || strcmp(status, "partial") == 0;
    bool queued = strcmp(status, "queued") == 0;
    const json_t *tallies = json_object_get(params, "progress");
    json_t *out = json_object();
    size_t i;
    json_t *ph;
    json_array_foreach(phases, i, ph)
    {
        const char *ent = xs_json_str_or(ph, "entity", NULL);
        if (ent == NULL) {
            continue;
        }
        if ((int)i > run_phase) {
            /* Not started: shown only for an entity none of whose phases has. */
            if (json_object_get(out, ent) == NULL) {
                json_object_set_new(out, ent,
                                    json_pack("{s:s, s:s, s:I, s:n}", "phase",
                                              xs_json_str_or(ph, "op", ""), "state",
                                              over ? "not_run" : "waiting", "done", (json_int_t)0,
                                              "total"));
            }
            continue;
        }
        char key[24];
        snprintf(key, sizeof(key), "%zu", i);
        bool finished = (int)i < run_phase || completed;
        json_object_set_new(out, ent,
                            phase_json(ph, json_object_get(tallies, key), finished, over, queued));
    }
    return out;
}
