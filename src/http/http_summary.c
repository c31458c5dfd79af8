/*
 * http_summary.c — the few header fields a message list shows (From, To,
 * Subject, Date, Message-ID), read from the message itself.
 *
 * The mailbox rows keep the envelope only, so the list reads each message's
 * header. http_summary_parse is a pure function over the raw message: it walks
 * the header lines up to the empty line, unfolds the fields it wants (the first
 * of each) and decodes RFC 2047 words with GMime into UTF-8. Blobs are content
 * addressed and never change, so summaries are cached by blob ID in a small
 * direct-mapped table: a folder is parsed once, then listed and searched from
 * memory.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "http/http_internal.h"
#include "util/log.h"

/* Raw bytes of one field taken into account (a longer one is cut). */
#define FIELD_RAW_MAX 4096
/* Bytes of a message searched for the end of its header. */
#define HEADER_SCAN_MAX (256u * 1024)

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_start(void)
{
    g_mime_init(); /* counted: other users of GMime in the daemon are not disturbed */
}

/* Copies the decoded text into out (outlen bytes): UTF-8 made valid, control
 * characters as spaces, cut at a character boundary. */
static void store_text(const char *text, char *out, size_t outlen)
{
    gchar *valid = g_utf8_make_valid(text, -1);
    size_t len = strlen(valid), n = 0;
    for (; n < len && n + 1 < outlen; n++)
        out[n] = ((unsigned char)valid[n] < 0x20 || valid[n] == 0x7f) ? ' ' : valid[n];
    if (n < len) /* cut: back off to the lead byte of a character split in two */
        while (n > 0 && ((unsigned char)valid[n] & 0xC0) == 0x80)
            n--;
    out[n] = '\0';
    g_free(valid);
}

enum { F_FROM, F_TO, F_SUBJECT, F_MSGID, F_DATE, F_COUNT };
static const char *const field_names[F_COUNT] = {"From", "To", "Subject", "Message-ID", "Date"};

void http_summary_parse(const char *msg, size_t len, struct http_summary *out)
{
    pthread_once(&gmime_once, gmime_start);
    memset(out, 0, sizeof *out);
    if (len > HEADER_SCAN_MAX)
        len = HEADER_SCAN_MAX;
    char raw[F_COUNT][FIELD_RAW_MAX];
    int have[F_COUNT] = {0};
    size_t rawlen[F_COUNT] = {0};
    int current = -1; /* the field whose continuation lines follow, -1: none wanted */

    size_t pos = 0;
    while (pos < len) {
        const char *line = msg + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t linelen = nl ? (size_t)(nl - line) : len - pos;
        pos += linelen + (nl ? 1 : 0);
        if (linelen > 0 && line[linelen - 1] == '\r')
            linelen--;
        if (linelen == 0)
            break; /* the end of the header */
        if (line[0] == ' ' || line[0] == '\t') {
            if (current >= 0) { /* unfold: the line break goes, the white space stays */
                size_t room = FIELD_RAW_MAX - 1 - rawlen[current];
                size_t n = linelen < room ? linelen : room;
                memcpy(raw[current] + rawlen[current], line, n);
                rawlen[current] += n;
            }
            continue;
        }
        current = -1;
        const char *colon = memchr(line, ':', linelen);
        if (!colon)
            continue; /* not a field: ignored, as GMime does */
        size_t namelen = (size_t)(colon - line);
        while (namelen > 0 && (line[namelen - 1] == ' ' || line[namelen - 1] == '\t'))
            namelen--;
        for (int f = 0; f < F_COUNT; f++) {
            if (have[f] || strlen(field_names[f]) != namelen || strncasecmp(line, field_names[f], namelen) != 0)
                continue;
            have[f] = 1;
            current = f;
            const char *v = colon + 1;
            size_t vlen = linelen - (size_t)(v - line);
            size_t n = vlen < FIELD_RAW_MAX - 1 ? vlen : FIELD_RAW_MAX - 1;
            memcpy(raw[f], v, n);
            rawlen[f] = n;
            break;
        }
    }
    for (int f = 0; f < F_COUNT; f++) {
        if (!have[f])
            continue;
        raw[f][rawlen[f]] = '\0';
        if (memchr(raw[f], '\0', rawlen[f])) /* a NUL inside: treat the field as cut there */
            rawlen[f] = strlen(raw[f]);
        const char *v = raw[f];
        while (*v == ' ' || *v == '\t')
            v++;
        if (f == F_DATE) {
            GDateTime *dt = g_mime_utils_header_decode_date(v);
            if (dt) {
                out->date = g_date_time_to_unix(dt);
                g_date_time_unref(dt);
            }
            continue;
        }
        char *decoded = g_mime_utils_header_decode_text(NULL, v);
        const char *text = decoded ? decoded : v;
        switch (f) {
        case F_FROM: store_text(text, out->from, sizeof out->from); break;
        case F_TO: store_text(text, out->to, sizeof out->to); break;
        case F_SUBJECT: store_text(text, out->subject, sizeof out->subject); break;
        case F_MSGID: store_text(text, out->message_id, sizeof out->message_id); break;
        }
        g_free(decoded);
    }
}

/* ------------------------------------------------------------------ cache */

#define CACHE_SLOTS 4096

struct cache_slot {
    char blob[BLOB_ID_SIZE];
    struct http_summary summary;
};

struct http_summary_cache {
    pthread_mutex_t lock;
    struct cache_slot slots[CACHE_SLOTS];
};

struct http_summary_cache *http_summary_cache_new(void)
{
    struct http_summary_cache *c = calloc(1, sizeof *c);
    if (c)
        pthread_mutex_init(&c->lock, NULL);
    return c;
}

void http_summary_cache_free(struct http_summary_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The blob ID is a SHA-256 in hex: its first hex digits are as good a hash as any. */
static size_t slot_of(const char *blob_id)
{
    return (size_t)strtoul((char[7]){blob_id[0], blob_id[1], blob_id[2], blob_id[3], blob_id[4], blob_id[5], 0},
                           NULL, 16) %
           CACHE_SLOTS;
}

int http_summary_get(struct http_summary_cache *c, struct blobstore *bs, const char *blob_id,
                     struct http_summary *out)
{
    if (!blob_id_valid(blob_id))
        return -1;
    size_t i = slot_of(blob_id);
    pthread_mutex_lock(&c->lock);
    int hit = strcmp(c->slots[i].blob, blob_id) == 0;
    if (hit)
        *out = c->slots[i].summary;
    pthread_mutex_unlock(&c->lock);
    if (hit)
        return 0;

    unsigned char *data = NULL;
    size_t len = 0;
    if (blob_get(bs, blob_id, &data, &len) != 0) {
        log_err("http: cannot read blob %s for a message summary", blob_id);
        return -1;
    }
    http_summary_parse((const char *)data, len, out);
    free(data);
    pthread_mutex_lock(&c->lock);
    memcpy(c->slots[i].blob, blob_id, BLOB_ID_SIZE);
    c->slots[i].summary = *out;
    pthread_mutex_unlock(&c->lock);
    return 0;
}
