/*
 * follow.c: `xs sync`: starts a run and follows it to its end by reading it again every few
 * hundred milliseconds (GET /v1/runs/{id}: its progress per entity and its calls to Xero) and
 * the tenant's budget every two seconds (GET /v1/connections/{id}/stats). On a terminal, a bar
 * per entity redrawn in place; otherwise a plain line per change, with no escape codes, so a
 * log or a pipe reads cleanly.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "xs/json.h"

#define MAX_TRACKS  16
#define TTY_POLL_MS 250
#define LOG_POLL_MS 500
#define STATS_EVERY 2000

/* What is known of one entity's progress, and since when its phase has been seen. */
typedef struct track {
    char entity[32], phase[16], state[16];
    int64_t done, total; /* total -1: not known yet */
    int64_t t0, done0;   /* when this phase was first seen, and its done then */
    char said[160];      /* the last plain line about it */
} track;

/* A run followed. */
typedef struct follow {
    cli *c;
    char run[64], conn[64];
    track t[MAX_TRACKS];
    int n;
    int drawn; /* lines of the last drawing (terminal) */
    char status[32], said_status[32];
    int64_t started, calls;
    json_t *budget; /* the tenant's, from the stats (new), or NULL */
} follow;

/* track_of finds or makes the track of entity. */
static track *track_of(follow *f, const char *entity)
{
    for (int i = 0; i < f->n; i++) {
        if (strcmp(f->t[i].entity, entity) == 0) {
            return &f->t[i];
        }
    }
    if (f->n == MAX_TRACKS) {
        return NULL;
    }
    track *t = &f->t[f->n++];
    memset(t, 0, sizeof(*t));
    snprintf(t->entity, sizeof(t->entity), "%s", entity);
    return t;
}

/* update takes the run's progress into the tracks. */
static void update(follow *f, const json_t *run, int64_t now)
{
    snprintf(f->status, sizeof(f->status), "%s", cli_str(run, "status"));
    f->calls = (int64_t)json_integer_value(json_object_get(run, "api_calls"));
    const char *k;
    json_t *p;
    json_object_foreach(json_object_get(run, "progress"), k, p)
    {
        track *t = track_of(f, k);
        if (t == NULL) {
            continue;
        }
        const char *phase = cli_str(p, "phase");
        int64_t done = (int64_t)json_integer_value(json_object_get(p, "done"));
        if (strcmp(t->phase, phase) != 0 || t->t0 == 0 || done < t->done) {
            snprintf(t->phase, sizeof(t->phase), "%s", phase);
            t->t0 = now;
            t->done0 = done;
        }
        snprintf(t->state, sizeof(t->state), "%s", cli_str(p, "state"));
        t->done = done;
        json_t *total = json_object_get(p, "total");
        t->total = json_is_integer(total) ? (int64_t)json_integer_value(total) : -1;
    }
}

/* rate is the records a second of t's phase since it was first seen (0: not known yet). */
static double rate(const track *t, int64_t now)
{
    double secs = (double)(now - t->t0) / 1000.0;
    return secs >= 0.5 && t->done > t->done0 ? (double)(t->done - t->done0) / secs : 0.0;
}

/* percent is how far t's phase is (0 to 100), or -1 when its total is not known. */
static int percent(const track *t)
{
    if (strcmp(t->state, "done") == 0) {
        return 100;
    }
    if (t->total < 0) {
        return -1;
    }
    if (t->total == 0) {
        return 0;
    }
    int64_t p = t->done * 100 / t->total;
    return (int)(p > 100 ? 100 : p);
}

/* columns is the terminal's width (80 when it cannot be told). */
static int columns(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) {
        return ws.ws_col;
    }
    return 80;
}

/* budget_text writes the tenant's budget left into out, "budget ?" when not known. */
static void budget_text(const follow *f, char *out, size_t cap)
{
    const json_t *b = f->budget;
    if (!json_is_object(b)) {
        snprintf(out, cap, "budget ?");
        return;
    }
    snprintf(out, cap, "budget %lld/%lld a minute, %lld/%lld a day",
             (long long)json_integer_value(json_object_get(b, "minute_left")),
             (long long)json_integer_value(json_object_get(b, "minute_limit")),
             (long long)json_integer_value(json_object_get(b, "day_left")),
             (long long)json_integer_value(json_object_get(b, "day_limit")));
}

/* status_line writes the run's line: its id, status, time, calls and the budget. */
static void status_line(const follow *f, int64_t now, char *out, size_t cap)
{
    char bt[128];
    budget_text(f, bt, sizeof(bt));
    snprintf(out, cap, "run %s  %s  %.1f s  %lld calls  %s", f->run, f->status,
             (double)(now - f->started) / 1000.0, (long long)f->calls, bt);
}

/* bar_line writes entity t's line of the terminal drawing, at most width characters. */
static void bar_line(const track *t, int64_t now, int width, char *out, size_t cap)
{
    int pct = percent(t);
    char total[24], tail[96] = "";
    if (t->total >= 0) {
        snprintf(total, sizeof(total), "%lld", (long long)t->total);
    } else {
        snprintf(total, sizeof(total), "?");
    }
    double r = rate(t, now);
    if (strcmp(t->state, "running") == 0 && r > 0 && t->total > t->done) {
        snprintf(tail, sizeof(tail), "  %.0f/s  ETA %.0f s", r, (double)(t->total - t->done) / r);
    } else if (strcmp(t->state, "running") == 0 && r > 0) {
        snprintf(tail, sizeof(tail), "  %.0f/s", r);
    } else if (strcmp(t->state, "running") != 0) {
        snprintf(tail, sizeof(tail), "  %s", t->state);
    }
    char head[64], nums[64];
    snprintf(head, sizeof(head), "%-16.16s %-5.5s ", t->entity, t->phase);
    if (pct >= 0) {
        snprintf(nums, sizeof(nums), " %3d%%  %lld/%s", pct, (long long)t->done, total);
    } else {
        snprintf(nums, sizeof(nums), "    ?  %lld/%s", (long long)t->done, total);
    }
    int bw = width - (int)strlen(head) - (int)strlen(nums) - (int)strlen(tail) - 3;
    bw = bw > 50 ? 50 : bw;
    char bar[64] = "";
    if (bw >= 5) {
        int fill = pct >= 0 ? pct * bw / 100 : 0;
        bar[0] = '[';
        for (int i = 0; i < bw; i++) {
            bar[i + 1] = i < fill ? '#' : (pct < 0 ? ' ' : '.');
        }
        bar[bw + 1] = ']';
        bar[bw + 2] = '\0';
    }
    snprintf(out, cap, "%s%s%s%s", head, bar, nums, tail);
    if ((int)strlen(out) >= width) {
        out[width - 1] = '\0';
    }
}

/* draw redraws the terminal's lines in place: a bar per entity, then the run's line. */
static void draw(follow *f, int64_t now)
{
    int width = columns();
    char line[512];
    if (f->drawn > 0) {
        printf("\033[%dA", f->drawn);
    }
    for (int i = 0; i < f->n; i++) {
        bar_line(&f->t[i], now, width, line, sizeof(line));
        printf("\r\033[K%s\n", line);
    }
    status_line(f, now, line, sizeof(line));
    if ((int)strlen(line) >= width) {
        line[width - 1] = '\0';
    }
    printf("\r\033[K%s\n", line);
    f->drawn = f->n + 1;
    fflush(stdout);
}

/* say prints a plain line for each change since the last ones. */
static void say(follow *f, int64_t now)
{
    if (strcmp(f->status, f->said_status) != 0) {
        printf("run %s %s\n", f->run, f->status);
        snprintf(f->said_status, sizeof(f->said_status), "%s", f->status);
    }
    for (int i = 0; i < f->n; i++) {
        track *t = &f->t[i];
        char total[24], line[160];
        if (t->total >= 0) {
            snprintf(total, sizeof(total), "%lld", (long long)t->total);
        } else {
            snprintf(total, sizeof(total), "?");
        }
        snprintf(line, sizeof(line), "%s %s %s %lld/%s", t->entity, t->phase, t->state,
                 (long long)t->done, total);
        if (strcmp(line, t->said) != 0) {
            double r = rate(t, now);
            if (r > 0 && strcmp(t->state, "running") == 0) {
                printf("%s (%.0f/s)\n", line, r);
            } else {
                printf("%s\n", line);
            }
            snprintf(t->said, sizeof(t->said), "%s", line);
        }
    }
    fflush(stdout);
}

/* stats_read takes the tenant's budget from the connection's statistics; a failure leaves it
 * as it was (the run is what is followed). */
static void stats_read(follow *f)
{
    char path[256];
    char *e = cli_escape(f->c, f->conn);
    snprintf(path, sizeof(path), "/v1/connections/%s/stats", e);
    free(e);
    cli_reply r;
    if (cli_call(f->c, "GET", path, NULL, &r) == CLI_OK) {
        json_decref(f->budget);
        f->budget = json_incref(json_object_get(r.json, "budget"));
    }
    cli_reply_free(&r);
}

static bool over(const char *status)
{
    return strcmp(status, "queued") != 0 && strcmp(status, "running") != 0;
}

/* run_follow follows run f->run to its end; the exit code. */
static int run_follow(follow *f)
{
    cli *c = f->c;
    char path[256];
    char *e = cli_escape(c, f->run);
    snprintf(path, sizeof(path), "/v1/runs/%s", e);
    free(e);
    int64_t stats_at = 0;
    f->started = cli_now_ms();
    for (;;) {
        cli_reply r;
        int rc = cli_call(c, "GET", path, NULL, &r);
        if (rc != CLI_OK) {
            cli_reply_free(&r);
            return rc;
        }
        int64_t now = cli_now_ms();
        update(f, r.json, now);
        bool end = over(f->status);
        if (!c->json && (stats_at == 0 || now - stats_at >= STATS_EVERY || end)) {
            stats_read(f);
            stats_at = now;
        }
        if (end) {
            if (c->json) {
                cli_print_json(&r);
            } else if (c->tty) {
                draw(f, now);
            } else {
                say(f, now);
                printf("run %s %s in %.1f s, %lld calls to Xero\n", f->run, f->status,
                       (double)(now - f->started) / 1000.0, (long long)f->calls);
            }
            const char *err = xs_json_str_or(r.json, "error", NULL);
            rc = strcmp(f->status, "succeeded") == 0
                     ? CLI_OK
                     : cli_fail(c, CLI_NOT_DONE, "run %s ended %s%s%s (xs run %s tells more)",
                                f->run, f->status, err != NULL ? ": " : "", err != NULL ? err : "",
                                f->run);
            cli_reply_free(&r);
            return rc;
        }
        cli_reply_free(&r);
        if (!c->json && c->tty) {
            draw(f, now);
        } else if (!c->json) {
            say(f, now);
        }
        usleep((c->tty ? TTY_POLL_MS : LOG_POLL_MS) * 1000);
    }
}

int cli_sync(cli *c, const cli_args *a)
{
    const char *mode = cli_opt(a, "mode") != NULL ? cli_opt(a, "mode") : "incremental";
    if (strcmp(mode, "full") != 0 && strcmp(mode, "incremental") != 0 &&
        strcmp(mode, "push") != 0) {
        return cli_fail(c, CLI_USAGE, "--mode must be full, incremental or push, not `%s`", mode);
    }
    json_t *body = json_pack("{s:s}", "mode", mode);
    const char *ents = cli_opt(a, "entities");
    if (ents != NULL) {
        json_t *list = json_array();
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", ents);
        char *save = NULL;
        for (char *s = strtok_r(buf, ",", &save); s != NULL; s = strtok_r(NULL, ",", &save)) {
            json_array_append_new(list, json_string(s));
        }
        if (json_array_size(list) == 0) {
            json_decref(list);
            json_decref(body);
            return cli_fail(c, CLI_USAGE, "--entities needs names: contact,invoice,...");
        }
        json_object_set_new(body, "entities", list);
    }
    follow f;
    memset(&f, 0, sizeof(f));
    f.c = c;
    snprintf(f.conn, sizeof(f.conn), "%s", a->pos[0]);
    char path[256];
    char *e = cli_escape(c, a->pos[0]);
    snprintf(path, sizeof(path), "/v1/connections/%s/sync", e);
    free(e);
    cli_reply r;
    int rc = cli_call(c, "POST", path, body, &r);
    json_decref(body);
    if (rc == CLI_OK) {
        snprintf(f.run, sizeof(f.run), "%s", cli_str(r.json, "id"));
        if (cli_opt(a, "no-wait") != NULL && c->json) {
            cli_print_json(&r);
        } else if (cli_opt(a, "no-wait") != NULL) {
            printf("run %s %s\n", f.run, cli_str(r.json, "status"));
        }
    }
    cli_reply_free(&r);
    if (rc != CLI_OK || cli_opt(a, "no-wait") != NULL) {
        return rc;
    }
    rc = run_follow(&f);
    json_decref(f.budget);
    return rc;
}
