/*
 * client.c: where the API is and the key to it (the config file and the environment), and
 * every call to it: one libcurl handle, JSON in and out, and the API's errors turned into a
 * message that names what was wrong and an exit code.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "xs/json.h"

#define DEFAULT_URL "http://127.0.0.1:8080"

int cli_fail(const cli *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "xs%s%s: ", c->cmd != NULL ? " " : "", c->cmd != NULL ? c->cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *cli_str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    const char *s = xs_json_string_value(v, NULL);
    return s != NULL ? s : "-";
}

/* set_url keeps url as the API's base, without trailing slashes. */
static void set_url(cli *c, const char *url)
{
    snprintf(c->url, sizeof(c->url), "%s", url);
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/') {
        c->url[--n] = '\0';
    }
}

/* trim cuts the white space around s in place and returns its start. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    return s;
}

/* config_read reads `key = value` lines (url, api_key; '#' starts a comment) from f. */
static int config_read(cli *c, FILE *f)
{
    char line[2048];
    int no = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        no++;
        char *s = trim(line);
        if (s[0] == '\0' || s[0] == '#') {
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            return cli_fail(c, CLI_USAGE, "%s, line %d: expected `key = value`", c->config_path,
                            no);
        }
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        if (strcmp(k, "url") == 0) {
            set_url(c, v);
        } else if (strcmp(k, "api_key") == 0) {
            snprintf(c->key, sizeof(c->key), "%s", v);
        } else {
            return cli_fail(c, CLI_USAGE, "%s, line %d: unknown key `%s` (url, api_key)",
                            c->config_path, no, k);
        }
    }
    return CLI_OK;
}

int cli_config_load(cli *c)
{
    set_url(c, DEFAULT_URL);
    const char *given = getenv("XS_CONFIG"), *home = getenv("HOME");
    if (given != NULL && given[0] != '\0') {
        snprintf(c->config_path, sizeof(c->config_path), "%s", given);
    } else if (home != NULL && home[0] != '\0') {
        snprintf(c->config_path, sizeof(c->config_path), "%s/.config/xs/config", home);
    }
    FILE *f = c->config_path[0] != '\0' ? fopen(c->config_path, "r") : NULL;
    if (f == NULL && given != NULL && given[0] != '\0') {
        return cli_fail(c, CLI_USAGE, "cannot read the config file %s (XS_CONFIG): %s",
                        c->config_path, strerror(errno));
    }
    if (f != NULL) {
        struct stat st;
        if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
            fclose(f);
            return cli_fail(c, CLI_USAGE, "the config file %s is not a regular file",
                            c->config_path);
        }
        if ((st.st_mode & 077) != 0) {
            /* It holds the API key: like ssh with a private key, refuse it when others may
             * read or change it. */
            fclose(f);
            return cli_fail(c, CLI_USAGE,
                            "the config file %s is open to others (mode %04o); it holds the API "
                            "key: chmod 600 %s",
                            c->config_path, (unsigned)(st.st_mode & 07777), c->config_path);
        }
        int rc = config_read(c, f);
        fclose(f);
        if (rc != CLI_OK) {
            return rc;
        }
    }
    const char *url = getenv("XS_URL"), *key = getenv("XS_API_KEY");
    if (url != NULL && url[0] != '\0') {
        set_url(c, url);
    }
    if (key != NULL && key[0] != '\0') {
        snprintf(c->key, sizeof(c->key), "%s", key);
    }
    if (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0) {
        return cli_fail(c, CLI_USAGE, "the API's URL `%s` must start with http:// or https://",
                        c->url);
    }
    return CLI_OK;
}

/* on_body appends a piece of the reply's body to the memory stream arg. */
static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    return fwrite(data, size, n, arg) * size;
}

char *cli_escape(cli *c, const char *s)
{
    char *e = curl_easy_escape(c->curl, s, 0);
    char *out = e != NULL ? strdup(e) : NULL;
    curl_free(e);
    if (out == NULL) {
        fprintf(stderr, "xs: out of memory\n");
        exit(CLI_UNREACHABLE);
    }
    return out;
}

void cli_query_add(cli *c, char *path, size_t cap, const char *name, const char *value)
{
    if (value == NULL) {
        return;
    }
    char *v = cli_escape(c, value);
    size_t n = strlen(path);
    snprintf(path + n, n < cap ? cap - n : 0, "%c%s=%s", strchr(path, '?') != NULL ? '&' : '?',
             name, v);
    free(v);
}

void cli_reply_free(cli_reply *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

void cli_print_json(const cli_reply *r)
{
    fwrite(r->body != NULL ? r->body : "", 1, r->len, stdout);
    if (r->len == 0 || r->body[r->len - 1] != '\n') {
        fputc('\n', stdout);
    }
}

/* say_error tells what the API refused or failed with: its code, message and field. */
static void say_error(const cli *c, const char *method, const char *path, const cli_reply *r)
{
    const json_t *err = json_object_get(r->json, "error");
    if (json_is_object(err)) {
        const char *field = xs_json_str_or(err, "field", NULL);
        cli_fail(c, 0, "%s %s: %ld %s: %s%s%s%s", method, path, r->status, cli_str(err, "code"),
                 cli_str(err, "message"), field != NULL ? " (field: " : "",
                 field != NULL ? field : "", field != NULL ? ")" : "");
        return;
    }
    cli_fail(c, 0, "%s %s: %ld %.200s", method, path, r->status,
             r->body != NULL ? r->body : "(no body)");
}

int cli_call(cli *c, const char *method, const char *path, const json_t *body, cli_reply *out)
{
    memset(out, 0, sizeof(*out));
    if (c->key[0] == '\0') {
        return cli_fail(c, CLI_USAGE,
                        "no API key: set XS_API_KEY, or api_key in the config file (%s)",
                        c->config_path[0] != '\0' ? c->config_path : "~/.config/xs/config");
    }
    char url[4096], auth[1100], *text = NULL;
    snprintf(url, sizeof(url), "%s%s", c->url, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->key);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Accept: application/json");
    if (body != NULL) {
        text = xs_json_dump(body, 0);
        h = curl_slist_append(h, "Content-Type: application/json");
    }
    char *got = NULL;
    size_t got_len = 0;
    FILE *b = open_memstream(&got, &got_len);
    CURL *k = c->curl;
    curl_easy_reset(k);
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_USERAGENT, "xs/" XS_VERSION);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, b);
    if (text != NULL) {
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE, 0L);
    }
    CURLcode rc = b != NULL ? curl_easy_perform(k) : CURLE_OUT_OF_MEMORY;
    curl_slist_free_all(h);
    free(text);
    if (b != NULL) {
        fclose(b); /* got, got_len: the body, NUL-terminated */
    }
    if (rc != CURLE_OK) {
        free(got);
        return cli_fail(c, CLI_UNREACHABLE,
                        "cannot reach the API at %s: %s (set XS_URL or url in the config file)",
                        c->url, curl_easy_strerror(rc));
    }
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = got;
    out->len = got_len;
    if (got != NULL && got_len > 0) {
        out->json = xs_json_parse(got, got_len, NULL);
    }
    if (out->status >= 200 && out->status < 300) {
        if (out->json == NULL) {
            return cli_fail(c, CLI_UNREACHABLE, "%s %s: %ld with a body that is not JSON", method,
                            path, out->status);
        }
        return CLI_OK;
    }
    say_error(c, method, path, out);
    return out->status >= 400 && out->status < 500 ? CLI_REFUSED : CLI_UNREACHABLE;
}
