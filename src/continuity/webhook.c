/*
 * webhook.c — JSON POSTs to customers' webhook URLs, from one worker thread so
 * that a slow or dead endpoint never blocks the event loop. libcurl, plain
 * easy interface: one request at a time, 10 s each (connect included), only
 * http:// and https://, no redirects followed, certificates verified. A
 * failure is logged and dropped: the event is in the store and the log
 * anyway. The URL is never logged whole — webhook URLs often carry a secret
 * token — only its scheme and host.
 */
#include "continuity/continuity_internal.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define WEBHOOK_TIMEOUT_S 10L
#define WEBHOOK_QUEUE_MAX 1000 /* more waiting than this: the endpoint is hopeless, drop */

struct post {
    char *url;
    char *body;
};

struct webhooks {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    GQueue queue; /* struct post */
    int stopping;
    int started;
};

static void post_free(struct post *p)
{
    free(p->url);
    free(p->body);
    free(p);
}

/* "https://hooks.example.com" of a URL, for the log. */
static void url_site(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://");
    const char *host = p ? p + 3 : url;
    const char *at = NULL;
    size_t len = strcspn(host, "/?#");
    for (size_t i = 0; i < len; i++)
        if (host[i] == '@')
            at = host + i; /* user:password@ is a secret too */
    if (at) {
        len -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    snprintf(out, n, "%.*s://%.*s", p ? (int)(p - url) : 0, url, (int)len, host);
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * nmemb;
}

static void do_post(CURL *curl, const struct post *p)
{
    char site[300];
    url_site(p->url, site, sizeof site);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, p->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, WEBHOOK_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, WEBHOOK_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "lifeboat");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, p->body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(p->body));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK)
        log_warn("continuity: webhook %s: %s", site, curl_easy_strerror(rc));
    else if (status < 200 || status > 299)
        log_warn("continuity: webhook %s: answered HTTP %ld", site, status);
    else
        log_debug("continuity: webhook %s: HTTP %ld", site, status);
    curl_slist_free_all(headers);
}

static void *worker(void *arg)
{
    struct webhooks *w = arg;
    CURL *curl = curl_easy_init();
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->stopping && g_queue_is_empty(&w->queue))
            pthread_cond_wait(&w->wake, &w->lock);
        if (w->stopping)
            break;
        struct post *p = g_queue_pop_head(&w->queue);
        pthread_mutex_unlock(&w->lock);
        if (curl)
            do_post(curl, p);
        else
            log_err("continuity: webhook: cannot initialise libcurl; notification dropped");
        post_free(p);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    if (curl)
        curl_easy_cleanup(curl);
    return NULL;
}

struct webhooks *webhooks_start(char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return NULL;
    }
    struct webhooks *w = calloc(1, sizeof *w);
    if (!w) {
        curl_global_cleanup();
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    g_queue_init(&w->queue);
    if (pthread_create(&w->thread, NULL, worker, w) != 0) {
        snprintf(err, errlen, "cannot start the webhook thread");
        webhooks_stop(w);
        return NULL;
    }
    w->started = 1;
    return w;
}

void webhooks_post(struct webhooks *w, const char *url, const char *body)
{
    struct post *p = calloc(1, sizeof *p);
    if (p) {
        p->url = strdup(url);
        p->body = strdup(body);
    }
    if (!p || !p->url || !p->body) {
        log_err("continuity: webhook: out of memory; notification dropped");
        if (p)
            post_free(p);
        return;
    }
    pthread_mutex_lock(&w->lock);
    if (w->stopping || g_queue_get_length(&w->queue) >= WEBHOOK_QUEUE_MAX) {
        pthread_mutex_unlock(&w->lock);
        char site[300];
        url_site(url, site, sizeof site);
        log_warn("continuity: webhook %s: too many notifications waiting; this one is dropped", site);
        post_free(p);
        return;
    }
    g_queue_push_tail(&w->queue, p);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

void webhooks_stop(struct webhooks *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (w->started)
        pthread_join(w->thread, NULL);
    unsigned dropped = g_queue_get_length(&w->queue);
    if (dropped)
        log_warn("continuity: %u webhook notification(s) not sent at shutdown", dropped);
    struct post *p;
    while ((p = g_queue_pop_head(&w->queue)))
        post_free(p);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
    curl_global_cleanup();
}
