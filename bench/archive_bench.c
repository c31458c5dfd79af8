/*
 * archive_bench.c — the archive's figures (issue 5): ingest rate, indexing
 * rate, search latency and stored bytes per raw byte over a large generated
 * mailbox, through the daemon's own code paths.
 *
 * It sets up a fresh data_dir the way an operator would (customers with a
 * running subscription, domains, users: directory.h), starts the real
 * group-commit writer and the real archive indexer thread, and feeds N
 * generated messages through queue_submit — the job smtpd hands to the
 * writer after DATA: blob_put, the queue rows and archive_ingest in one
 * transaction. A window of jobs is kept in flight, as many SMTP sessions
 * would, so the writer groups them. Behind acceptance each message is marked
 * delivered and released (one writer job per batch, what the delivery engine
 * records), so the queue stays empty and what remains is what the archive
 * keeps; --keep-queue leaves the queue rows instead.
 *
 * The messages are generated deterministically (seeded PRNG, one stream per
 * message): words from a Zipf-distributed vocabulary, rare names, realistic
 * sizes (mostly 2-8 KiB, some HTML, some 50-200 KiB with a base64
 * attachment), ISO-8859-1 and windows-1252 as well as UTF-8, inbound and
 * outbound, between 2 customers x 5 domains x 200 users and 20000 outside
 * addresses, Date: spread over 90 days.
 *
 * Once the indexer has caught up, a fixed set of searches (store_archive_search,
 * as GET /api/v1/archive runs it: first page of 50 plus the total) is timed
 * in the three scopes, and the data_dir is measured. The result is a Markdown
 * section on stdout (bench/run --archive appends it to bench/results/latest.md);
 * progress goes to stderr. See docs/BENCHMARKS.md, "Archive".
 *
 * Not part of lifeboatd: built only on request (cmake --build B --target bench_archive).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <sqlite3.h>

#include "archive/archive.h"
#include "directory/directory.h"
#include "mail/received.h"
#include "queue/queue.h"
#include "store/store.h"
#include "store/writer.h"
#include "util/config.h"
#include "util/log.h"
#include "util/queueid.h"

/* ------------------------------------------------------------ parameters */

#define NCUSTOMERS 2
#define NDOMAINS 5         /* per customer */
#define NUSERS 200         /* per domain */
#define NINTERNAL (NCUSTOMERS * NDOMAINS * NUSERS)
#define NOUTSIDE 20000     /* outside correspondents */
#define NOUTSIDE_DOMAINS 1000
#define VOCAB 50000        /* Zipf-ranked words */
#define ZIPF_WORDS_S 1.0
#define ZIPF_USERS_S 0.8   /* some users get much more mail than others */
#define ZIPF_OUTSIDE_S 1.0 /* a few outside senders (newsletters, partners) write a lot */
#define NNAMES 200000      /* rare names (people, products, projects): uniform, ~2 per message */
#define MAX_RCPTS 12
#define DAYS 90
#define SEARCH_PAGE 50

static const char *const customer_names[NCUSTOMERS] = {"acme", "globex"};

/* ------------------------------------------------------------------- PRNG */

/* xoshiro256** seeded by splitmix64: one independent stream per message, so a
 * message's content depends only on (seed, index), not on timing. */
struct rng {
    uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double rng_unit(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform in [0, n). */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
    return n ? rng_next(r) % n : 0;
}

static int rng_chance(struct rng *r, double p)
{
    return rng_unit(r) < p;
}

/* ---------------------------------------------------------- Zipf sampling */

struct zipf {
    double *cdf;
    size_t n;
};

static int zipf_init(struct zipf *z, size_t n, double s)
{
    z->cdf = malloc(n * sizeof *z->cdf);
    if (!z->cdf)
        return -1;
    z->n = n;
    double sum = 0;
    for (size_t k = 0; k < n; k++)
        z->cdf[k] = (sum += 1.0 / pow((double)(k + 1), s));
    for (size_t k = 0; k < n; k++)
        z->cdf[k] /= sum;
    return 0;
}

/* A rank in [0, n), rank 0 the most frequent. */
static size_t zipf_draw(const struct zipf *z, struct rng *r)
{
    double u = rng_unit(r);
    size_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* ------------------------------------------------------------- vocabulary */

/* The most frequent words of business mail, most frequent first; the rest of
 * the VOCAB ranks are made-up words (synth_word). */
static const char *const common_words[] = {
    "the", "to", "and", "of", "a", "in", "for", "is", "you", "on", "we", "that", "this", "be", "with", "it",
    "please", "will", "have", "are", "our", "as", "at", "your", "from", "can", "by", "if", "thanks", "meeting",
    "not", "all", "project", "an", "would", "or", "team", "report", "let", "know", "me", "us", "update", "time",
    "new", "any", "next", "week", "attached", "invoice", "customer", "should", "could", "also", "more", "about",
    "one", "there", "review", "today", "schedule", "call", "need", "just", "they", "been", "has", "was", "get",
    "regards", "best", "hi", "hello", "dear", "order", "contract", "budget", "please", "below", "question",
    "questions", "information", "further", "agreement", "proposal", "delivery", "payment", "service", "support",
    "issue", "request", "feedback", "draft", "version", "final", "quarter", "sales", "marketing", "account",
    "price", "offer", "quote", "shipment", "product", "release", "plan", "planning", "status", "deadline",
    "monday", "tuesday", "wednesday", "thursday", "friday", "morning", "afternoon", "tomorrow", "yesterday",
    "office", "travel", "hotel", "flight", "conference", "presentation", "slides", "document", "documents",
    "file", "files", "link", "access", "password", "login", "server", "network", "system", "data", "database",
    "backup", "security", "policy", "compliance", "audit", "legal", "hr", "holiday", "vacation", "training",
    "workshop", "agenda", "minutes", "notes", "action", "items", "follow", "up", "confirm", "confirmed",
    "available", "availability", "room", "lunch", "dinner", "team", "colleagues", "manager", "director",
    "board", "approval", "approved", "sign", "signed", "signature", "changes", "change", "tracking",
    "number", "reference", "ticket", "case", "resolved", "pending", "urgent", "important", "asap", "soon",
    "later", "earlier", "already", "still", "again", "each", "other", "first", "last", "month", "year",
};
#define NCOMMON (sizeof common_words / sizeof common_words[0])

/* Words of the "European" messages, UTF-8; every one fits ISO-8859-1 except
 * the euro sign, which windows-1252 has and ISO-8859-1 gets as "EUR". */
static const char *const accented_words[] = {
    "café", "résumé", "naïve", "façade", "Übersicht", "größe", "Grüße", "straße", "über", "Zürich",
    "Genève", "crème", "déjà", "señor", "año", "élève", "coût", "réunion", "Besprechung", "Rückmeldung",
    "Bestätigung", "Lösung", "prévu", "délai", "numéro", "København", "Ærø", "måndag", "fête", "€",
};
#define NACCENTED (sizeof accented_words / sizeof accented_words[0])

static const char *const first_names[] = {
    "anna", "ben", "carla", "david", "eva", "felix", "greta", "hans", "ines", "jonas", "karin", "lukas", "maria",
    "nils", "olga", "paul", "rita", "simon", "tina", "uwe", "vera", "walter", "xenia", "yusuf", "zoe", "adam",
    "bianca", "chris", "dora", "emil", "fiona", "georg", "hanna", "ivan", "julia", "kevin", "lena", "marco",
    "nora", "oscar", "petra", "quentin", "rosa", "sven", "theo", "ulla", "viktor", "wanda", "yara", "zeno",
};
#define NFIRST (sizeof first_names / sizeof first_names[0])
/* Display names for some of them, with the characters the address cannot have. */
static const char *const first_display_accented[] = {"Jürgen", "José", "Zoë", "François", "Renée", "Søren"};

static const char *const last_names[] = {
    "meier", "schmidt", "muller", "fischer", "weber", "wagner", "becker", "hoffmann", "schulz", "koch",
    "richter", "klein", "wolf", "neumann", "schwarz", "braun", "zimmermann", "hartmann", "lange", "werner",
    "smith", "jones", "brown", "taylor", "wilson", "evans", "thomas", "roberts", "walker", "wright", "martin",
    "bernard", "dubois", "durand", "leroy", "moreau", "rossi", "russo", "ferrari", "costa",
};
#define NLAST (sizeof last_names / sizeof last_names[0])

/* A made-up word for rank k, deterministic: two syllables for the first
 * 5000 ranks, three or four further down (frequent words are short). No 'q',
 * 'j', 'w', 'x', 'y' or 'z': the no-hit searches use tokens made of those. */
static void synth_word(uint64_t k, char *out, size_t outlen)
{
    static const char *const cons[] = {"b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r",
                                       "s", "t", "v", "br", "st", "tr", "pl", "gr", "ch", "sh"};
    static const char *const vow[] = {"a", "e", "i", "o", "u", "a", "e", "o", "ea", "ou", "io"};
    static const char *const fin[] = {"", "", "", "n", "r", "s", "t", "l", "nd"};
    uint64_t x = k * 0x2545f4914f6cdd1dULL + 17;
    uint64_t h = splitmix64(&x);
    size_t used = 0;
    out[0] = '\0';
    unsigned syl = k < 5000 ? 2 : k < 30000 ? 3 : 3 + (unsigned)(h % 2);
    h /= 2;
    for (unsigned i = 0; i < syl; i++) {
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", cons[h % 22], vow[(h / 22) % 11]);
        h /= 242;
        if (used >= outlen)
            return;
    }
    snprintf(out + used, outlen - used, "%s", fin[h % 9]);
}

/* Rare name i of the pool (a person, a product, a project): capitalised, made
 * of letters the vocabulary's words avoid, uniform over NNAMES. */
static void synth_name(uint64_t i, char *out, size_t outlen)
{
    static const char *const cons[] = {"K", "Z", "V", "Y", "Dr", "Kr", "Zh", "X"};
    static const char *const cons_lc[] = {"k", "z", "v", "y", "dr", "kr", "zh", "x"};
    static const char *const vow[] = {"a", "o", "e", "y", "i"};
    static const char *const suf[] = {"ex", "on", "ia", "ar", "is"};
    uint64_t x = i * 0x9e3779b97f4a7c15ULL + 99;
    uint64_t h = splitmix64(&x);
    size_t used = 0;
    for (unsigned s = 0; s < 3; s++) {
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", s ? cons_lc[h % 8] : cons[h % 8], vow[(h / 8) % 5]);
        h /= 40;
        if (used >= outlen)
            return;
    }
    snprintf(out + used, outlen - used, "%s", suf[h % 5]);
}

/* ------------------------------------------------------------ the corpus */

struct gen {
    uint64_t seed;
    uint64_t n;           /* messages in the run */
    int64_t t0;           /* the newest Date: (the start of the run) */
    char (*words)[24];    /* VOCAB words by rank */
    struct zipf zwords, zusers, zoutside;
    char (*internal)[64]; /* NINTERNAL addresses: customer, domain, user order */
    char (*outside)[64];  /* NOUTSIDE addresses */
    char domains[NCUSTOMERS * NDOMAINS][32];
};

static void internal_addr_make(int c, int d, int u, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s.%s@%s%d.test", first_names[u % NFIRST],
             last_names[(size_t)(u / (int)NFIRST + 4 * d + 20 * c) % NLAST], customer_names[c], d);
}

static int gen_init(struct gen *g, uint64_t seed, uint64_t n, int64_t t0)
{
    memset(g, 0, sizeof *g);
    g->seed = seed;
    g->n = n;
    g->t0 = t0;
    g->words = calloc(VOCAB, sizeof *g->words);
    g->internal = calloc(NINTERNAL, sizeof *g->internal);
    g->outside = calloc(NOUTSIDE, sizeof *g->outside);
    if (!g->words || !g->internal || !g->outside || zipf_init(&g->zwords, VOCAB, ZIPF_WORDS_S) != 0 ||
        zipf_init(&g->zusers, NINTERNAL, ZIPF_USERS_S) != 0 || zipf_init(&g->zoutside, NOUTSIDE, ZIPF_OUTSIDE_S) != 0)
        return -1;
    for (size_t k = 0; k < VOCAB; k++) {
        if (k < NCOMMON)
            snprintf(g->words[k], sizeof g->words[k], "%s", common_words[k]);
        else
            synth_word(k, g->words[k], sizeof g->words[k]);
    }
    for (int c = 0; c < NCUSTOMERS; c++)
        for (int d = 0; d < NDOMAINS; d++)
            snprintf(g->domains[c * NDOMAINS + d], sizeof g->domains[0], "%s%d.test", customer_names[c], d);
    /* The Zipf rank of an internal user is spread over customers and domains
     * (rank k -> user k / 10 of domain k % 10), so every domain has busy users. */
    for (int k = 0; k < NINTERNAL; k++) {
        int dom = k % (NCUSTOMERS * NDOMAINS), u = k / (NCUSTOMERS * NDOMAINS);
        internal_addr_make(dom / NDOMAINS, dom % NDOMAINS, u, g->internal[k], sizeof g->internal[k]);
    }
    for (int k = 0; k < NOUTSIDE; k++) {
        char dom[32];
        synth_word((uint64_t)(k % NOUTSIDE_DOMAINS) + 1000000, dom, sizeof dom);
        snprintf(g->outside[k], sizeof g->outside[k], "%s.%s%d@%s.example", first_names[k % NFIRST],
                 last_names[(k / NFIRST) % NLAST], k / (int)(NFIRST * NLAST), dom);
    }
    return 0;
}

static void gen_free(struct gen *g)
{
    free(g->words);
    free(g->internal);
    free(g->outside);
    free(g->zwords.cdf);
    free(g->zusers.cdf);
    free(g->zoutside.cdf);
}

/* Index of an internal address's customer. */
static int internal_customer(int k)
{
    return (k % (NCUSTOMERS * NDOMAINS)) / NDOMAINS;
}

/* --------------------------------------------------------------- buffers */

struct buf {
    unsigned char *p;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "archive_bench: out of memory\n");
        abort();
    }
    b->p = p;
    b->cap = cap;
}

static void buf_add(struct buf *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ------------------------------------------------------------ encodings */

enum charset { CS_UTF8, CS_LATIN1, CS_CP1252 };
static const char *const charset_names[] = {"utf-8", "iso-8859-1", "windows-1252"};

/* UTF-8 text into the charset's bytes (every character we generate fits, the
 * euro sign becoming "EUR" in ISO-8859-1). */
static void to_charset(const unsigned char *s, size_t len, enum charset cs, struct buf *out)
{
    if (cs == CS_UTF8) {
        buf_add(out, s, len);
        return;
    }
    buf_reserve(out, len + 8);
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        if (c < 0x80) {
            out->p[out->len++] = (unsigned char)c;
            i++;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < len) {
            out->p[out->len++] = (unsigned char)(((c & 0x1F) << 6) | (s[i + 1] & 0x3F));
            i += 2;
        } else if (c == 0xE2 && i + 2 < len && s[i + 1] == 0x82 && s[i + 2] == 0xAC) { /* U+20AC */
            if (cs == CS_CP1252) {
                out->p[out->len++] = 0x80;
            } else {
                out->p[out->len] = '\0';
                buf_str(out, "EUR");
                buf_reserve(out, len - i + 8);
            }
            i += 3;
        } else {
            out->p[out->len++] = '?';
            i++;
        }
    }
    out->p[out->len] = '\0';
}

static int has_8bit(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] & 0x80)
            return 1;
    return 0;
}

/* Quoted-printable (RFC 2045 6.7) of CRLF text: lines at most 76 characters. */
static void qp_encode(const unsigned char *s, size_t len, struct buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c == '\r' && i + 1 < len && s[i + 1] == '\n') {
            buf_add(out, "\r\n", 2);
            i++;
            col = 0;
            continue;
        }
        char enc[4];
        size_t n;
        if ((c >= 33 && c <= 126 && c != '=') || (c == ' ' && !(i + 1 < len && s[i + 1] == '\r'))) {
            enc[0] = (char)c;
            n = 1;
        } else {
            enc[0] = '=';
            enc[1] = hex[c >> 4];
            enc[2] = hex[c & 15];
            n = 3;
        }
        if (col + n > 75) {
            buf_add(out, "=\r\n", 3);
            col = 0;
        }
        buf_add(out, enc, n);
        col += n;
    }
}

/* Base64 (RFC 2045), in lines of 76 characters when wrap is set. */
static void base64_encode(const unsigned char *s, size_t len, int wrap, struct buf *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    buf_reserve(out, len / 3 * 4 + len / 57 * 2 + 8);
    size_t col = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < len)
            v |= s[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < len ? tab[(v >> 6) & 63] : '=',
                     i + 2 < len ? tab[v & 63] : '='};
        buf_add(out, q, 4);
        if (wrap && (col += 4) >= 76) {
            buf_add(out, "\r\n", 2);
            col = 0;
        }
    }
    if (wrap && col)
        buf_add(out, "\r\n", 2);
}

/* A header value as RFC 2047 encoded words (Q encoding) in the charset when
 * it is not ASCII, as is otherwise. */
static void header_words(struct buf *out, const char *utf8, enum charset cs)
{
    size_t len = strlen(utf8);
    if (!has_8bit((const unsigned char *)utf8, len)) {
        buf_add(out, utf8, len);
        return;
    }
    struct buf raw = {0};
    to_charset((const unsigned char *)utf8, len, cs, &raw);
    static const char hex[] = "0123456789ABCDEF";
    size_t inword = 0;
    for (size_t i = 0; i < raw.len; i++) {
        if (inword == 0)
            buf_fmt(out, "%s=?%s?Q?", i ? "\r\n " : "", charset_names[cs]);
        unsigned char c = raw.p[i];
        if (c == ' ') {
            buf_add(out, "_", 1);
            inword++;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                   c == ',' || c == '-') {
            buf_add(out, &c, 1);
            inword++;
        } else {
            char e[3] = {'=', hex[c >> 4], hex[c & 15]};
            buf_add(out, e, 3);
            inword += 3;
        }
        /* an encoded word is at most 75 characters */
        if (inword >= 40 && (c == ' ' || inword >= 48)) {
            buf_add(out, "?=", 2);
            inword = 0;
        }
    }
    if (inword)
        buf_add(out, "?=", 2);
    free(raw.p);
}

/* ------------------------------------------------------------- messages */

enum body_kind { BODY_PLAIN, BODY_HTML_ALT, BODY_HTML_ONLY, BODY_ATTACHMENT, NBODY_KINDS };
static const char *const body_kind_names[] = {"text/plain", "multipart/alternative (text + HTML)",
                                              "text/html only", "multipart/mixed with a base64 attachment"};
enum msg_kind { MSG_IN, MSG_IN_BOTH, MSG_OUT, MSG_OUT_CROSS, NMSG_KINDS };
static const char *const msg_kind_names[] = {
    "inbound (outside -> one customer)", "inbound to both customers (one entry each)",
    "outbound (customer -> outside, some to colleagues)", "outbound to the other customer (one entry each)"};

/* One message in flight: everything queue_submit needs stays here until its
 * done callback. */
struct slot {
    struct bench *b;
    uint64_t index;
    struct queue_message qm;
    char sender[128];
    char rcpt_store[MAX_RCPTS][128];
    const char *rcpts[MAX_RCPTS];
    char prefix[RECEIVED_MAX];
    struct buf body;
    /* what the generator chose, for the statistics */
    int msg_kind, body_kind, charset;
};

struct gen_counts {
    uint64_t msg_kind[NMSG_KINDS], body_kind[NBODY_KINDS], charset[3];
    uint64_t raw_bytes, largest;
};

/* A sentence-ish run of words into text (UTF-8), wrapped at 72 columns. */
struct wrap {
    struct buf *out;
    size_t col;
};

static void wrap_word(struct wrap *w, const char *word)
{
    size_t len = strlen(word);
    if (w->col && w->col + 1 + len > 72) {
        buf_add(w->out, "\r\n", 2);
        w->col = 0;
    } else if (w->col) {
        buf_add(w->out, " ", 1);
        w->col++;
    }
    buf_add(w->out, word, len);
    w->col += len;
}

static void wrap_end_paragraph(struct wrap *w)
{
    buf_add(w->out, "\r\n\r\n", 4);
    w->col = 0;
}

/* The body text: greeting, paragraphs of Zipf words with rare names and (in
 * "European" mail) accented words, a signature; about target bytes. */
static void gen_text(const struct gen *g, struct rng *r, struct buf *out, size_t target, int european,
                     const char *greet, const char *signer)
{
    struct wrap w = {out, 0};
    size_t start = out->len;
    buf_fmt(out, "Hi %s,\r\n\r\n", greet);
    unsigned names = 1 + (unsigned)rng_below(r, 3);
    while (out->len - start < target) {
        unsigned sentences = 2 + (unsigned)rng_below(r, 5);
        for (unsigned s = 0; s < sentences && out->len - start < target; s++) {
            unsigned nw = 6 + (unsigned)rng_below(r, 15);
            for (unsigned i = 0; i < nw; i++) {
                char word[64];
                if (european && rng_chance(r, 0.03))
                    snprintf(word, sizeof word, "%s", accented_words[rng_below(r, NACCENTED)]);
                else if (names && rng_chance(r, 0.01)) {
                    synth_name(rng_below(r, NNAMES), word, sizeof word);
                    names--;
                } else
                    snprintf(word, sizeof word, "%s", g->words[zipf_draw(&g->zwords, r)]);
                if (i == 0 && word[0] >= 'a' && word[0] <= 'z')
                    word[0] = (char)(word[0] - 'a' + 'A');
                if (i + 1 == nw)
                    strcat(word, rng_chance(r, 0.1) ? "?" : ".");
                else if (rng_chance(r, 0.06))
                    strcat(word, ",");
                wrap_word(&w, word);
            }
        }
        wrap_end_paragraph(&w);
    }
    while (names--) { /* every message names a few rare things */
        char word[64];
        synth_name(rng_below(r, NNAMES), word, sizeof word);
        wrap_word(&w, word);
    }
    buf_fmt(out, "\r\n\r\nBest regards,\r\n%s\r\n", signer);
}

/* The text as HTML, paragraphs with the inline styles mail clients write. */
static void text_to_html(const struct buf *text, struct buf *out)
{
    buf_str(out, "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Type\" content=\"text/html\">"
                 "<style>p{margin:0 0 12px 0}</style></head>\r\n<body>\r\n");
    int open = 0;
    const char *p = (const char *)text->p, *end = p + text->len;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol)
            eol = end;
        if (eol == p) {
            if (open)
                buf_str(out, "</p>\r\n");
            open = 0;
        } else {
            if (!open)
                buf_str(out, "<p style=\"font-family:Calibri,Arial,sans-serif;font-size:11pt;color:#1f1f1f\">");
            open = 1;
            buf_add(out, p, (size_t)(eol - p));
            buf_str(out, "\r\n");
        }
        p = eol + (eol + 1 < end && eol[1] == '\n' ? 2 : 1);
    }
    if (open)
        buf_str(out, "</p>\r\n");
    buf_str(out, "</body></html>\r\n");
}

/* A body part in the message's charset and a transfer encoding that fits. */
static void emit_text_part(struct buf *msg, const struct buf *utf8, const char *type, enum charset cs,
                           struct rng *r)
{
    struct buf raw = {0};
    to_charset(utf8->p, utf8->len, cs, &raw);
    int eight = has_8bit(raw.p, raw.len);
    int qp = eight && rng_chance(r, 0.6);
    buf_fmt(msg, "Content-Type: %s; charset=\"%s\"\r\nContent-Transfer-Encoding: %s\r\n\r\n", type,
            charset_names[cs], !eight ? "7bit" : qp ? "quoted-printable" : "8bit");
    if (qp)
        qp_encode(raw.p, raw.len, msg);
    else
        buf_add(msg, raw.p, raw.len);
    free(raw.p);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void rfc5322_date(int64_t t, int zone_minutes, char *out, size_t outlen)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t local = (time_t)(t + zone_minutes * 60);
    struct tm tm;
    gmtime_r(&local, &tm);
    int z = zone_minutes < 0 ? -zone_minutes : zone_minutes;
    snprintf(out, outlen, "%s, %d %s %d %02d:%02d:%02d %c%02d%02d", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, zone_minutes < 0 ? '-' : '+',
             z / 60, z % 60);
}

/* The display name of an address ("anna.meier@..." -> "Anna Meier"), now and
 * then with an accented first name. */
static void display_name(const char *addr, int european, struct rng *r, char *out, size_t outlen)
{
    char local[64];
    snprintf(local, sizeof local, "%.*s", (int)strcspn(addr, "@"), addr);
    char *dot = strchr(local, '.');
    char *last = dot ? dot + 1 : local;
    if (dot)
        *dot = '\0';
    last[strcspn(last, "0123456789")] = '\0';
    if (european && rng_chance(r, 0.3))
        snprintf(local, sizeof local, "%s", first_display_accented[rng_below(r, 6)]);
    local[0] = (char)(local[0] >= 'a' && local[0] <= 'z' ? local[0] - 'a' + 'A' : local[0]);
    if (last[0] >= 'a' && last[0] <= 'z')
        last[0] = (char)(last[0] - 'a' + 'A');
    snprintf(out, outlen, "%s %s", local, last);
}

static void address_header(struct buf *msg, const char *name, const char *const *addrs, size_t n, int european,
                           enum charset cs, struct rng *r)
{
    buf_fmt(msg, "%s: ", name);
    for (size_t i = 0; i < n; i++) {
        char dn[128];
        display_name(addrs[i], european, r, dn, sizeof dn);
        if (i)
            buf_str(msg, ",\r\n ");
        if (has_8bit((const unsigned char *)dn, strlen(dn)))
            header_words(msg, dn, cs);
        else
            buf_fmt(msg, "\"%s\"", dn);
        buf_fmt(msg, " <%s>", addrs[i]);
    }
    buf_str(msg, "\r\n");
}

/* The envelope of message i: its kind, sender, recipients, direction. */
static void gen_envelope(const struct gen *g, struct rng *r, struct slot *s)
{
    double k = rng_unit(r);
    s->msg_kind = k < 0.55 ? MSG_IN : k < 0.60 ? MSG_IN_BOTH : k < 0.95 ? MSG_OUT : MSG_OUT_CROSS;
    size_t n = 0;
    double m = rng_unit(r);
    size_t want = m < 0.70 ? 1 : m < 0.95 ? 2 + (size_t)rng_below(r, 2) : 4 + (size_t)rng_below(r, 7);
    int first = (int)zipf_draw(&g->zusers, r);
    int cust = internal_customer(first);
    switch (s->msg_kind) {
    case MSG_IN:
    case MSG_IN_BOTH:
        snprintf(s->sender, sizeof s->sender, "%s", g->outside[zipf_draw(&g->zoutside, r)]);
        s->qm.direction = DIR_INBOUND;
        snprintf(s->rcpt_store[n++], sizeof s->rcpt_store[0], "%s", g->internal[first]);
        while (n < want || (s->msg_kind == MSG_IN_BOTH && n < 2)) {
            int u = (int)zipf_draw(&g->zusers, r);
            int want_cust = s->msg_kind == MSG_IN_BOTH && n == 1 ? 1 - cust : -1;
            if ((want_cust >= 0 && internal_customer(u) != want_cust) ||
                (want_cust < 0 && internal_customer(u) != cust && s->msg_kind == MSG_IN))
                continue;
            snprintf(s->rcpt_store[n++], sizeof s->rcpt_store[0], "%s", g->internal[u]);
        }
        break;
    case MSG_OUT:
        snprintf(s->sender, sizeof s->sender, "%s", g->internal[first]);
        s->qm.direction = DIR_OUTBOUND;
        while (n < want)
            snprintf(s->rcpt_store[n++], sizeof s->rcpt_store[0], "%s", g->outside[zipf_draw(&g->zoutside, r)]);
        if (rng_chance(r, 0.2)) { /* a colleague in Cc */
            int u;
            do
                u = (int)zipf_draw(&g->zusers, r);
            while (internal_customer(u) != cust || u == first);
            snprintf(s->rcpt_store[n++], sizeof s->rcpt_store[0], "%s", g->internal[u]);
        }
        break;
    default: /* MSG_OUT_CROSS */
        snprintf(s->sender, sizeof s->sender, "%s", g->internal[first]);
        s->qm.direction = DIR_OUTBOUND;
        want = want > 3 ? 3 : want;
        while (n < want) {
            int u = (int)zipf_draw(&g->zusers, r);
            if (internal_customer(u) != cust)
                snprintf(s->rcpt_store[n++], sizeof s->rcpt_store[0], "%s", g->internal[u]);
        }
        break;
    }
    /* a recipient named twice is one recipient (smtpd refuses duplicates too) */
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t j = 0; j < out && !dup; j++)
            dup = !strcmp(s->rcpt_store[j], s->rcpt_store[i]);
        if (!dup && out != i)
            memcpy(s->rcpt_store[out], s->rcpt_store[i], sizeof s->rcpt_store[0]);
        out += !dup;
    }
    for (size_t i = 0; i < out; i++)
        s->rcpts[i] = s->rcpt_store[i];
    s->qm.nrcpt = out;
}

/* Generates message i into s (envelope, prefix, body). */
static void gen_message(const struct gen *g, uint64_t i, struct slot *s)
{
    struct rng r;
    rng_seed(&r, g->seed, i);
    memset(&s->qm, 0, sizeof s->qm);
    s->index = i;
    s->body.len = 0;
    queueid_new(s->qm.id);
    gen_envelope(g, &r, s);

    int european = rng_chance(&r, 0.25);
    double c = rng_unit(&r);
    enum charset cs = !european ? CS_UTF8 : c < 0.5 ? CS_UTF8 : c < 0.8 ? CS_LATIN1 : CS_CP1252;
    s->charset = cs;
    double b = rng_unit(&r);
    s->body_kind = b < 0.85 ? BODY_PLAIN : b < 0.92 ? BODY_HTML_ALT : b < 0.95 ? BODY_HTML_ONLY : BODY_ATTACHMENT;

    /* Date: spread over DAYS days, in arrival order, within an hour's jitter. */
    int64_t span = (int64_t)DAYS * 86400;
    int64_t when = g->t0 - span + (int64_t)((double)span * (double)i / (double)(g->n ? g->n : 1));
    when = clamp64(when + (int64_t)rng_below(&r, 7200) - 3600, g->t0 - span, g->t0);
    static const int zones[] = {0, 60, 120, -300, -240, 330, 0, 60};
    char date[64];
    rfc5322_date(when, zones[rng_below(&r, 8)], date, sizeof date);

    struct buf *m = &s->body;
    const char *sender_dom = strchr(s->sender, '@') + 1;
    if (s->qm.direction == DIR_INBOUND) /* the sending side's own hop */
        buf_fmt(m,
                "Received: from [10.%u.%u.%u] (unknown [10.%u.%u.%u])\r\n\tby mail.%s (Postfix) with ESMTPSA id "
                "%08" PRIX64 "\r\n\tfor <%s>; %s\r\n",
                (unsigned)rng_below(&r, 256), (unsigned)rng_below(&r, 256), (unsigned)rng_below(&r, 256),
                (unsigned)rng_below(&r, 256), (unsigned)rng_below(&r, 256), (unsigned)rng_below(&r, 256),
                sender_dom, rng_next(&r) & 0xffffffffu, s->rcpts[0], date);
    if (rng_chance(&r, 0.5)) { /* a DKIM signature: opaque base64, as big as a real one */
        unsigned char bh[32], sig[256];
        for (size_t k = 0; k < sizeof bh; k++)
            bh[k] = (unsigned char)rng_next(&r);
        for (size_t k = 0; k < sizeof sig; k++)
            sig[k] = (unsigned char)rng_next(&r);
        struct buf b64 = {0};
        base64_encode(bh, sizeof bh, 0, &b64);
        buf_fmt(m,
                "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=sel1;\r\n\tt=%" PRId64
                "; h=from:to:subject:date:message-id;\r\n\tbh=%s;\r\n\tb=",
                sender_dom, when, (const char *)b64.p);
        b64.len = 0;
        base64_encode(sig, sizeof sig, 0, &b64);
        for (size_t off = 0; off < b64.len; off += 72) {
            buf_add(m, b64.p + off, b64.len - off < 72 ? b64.len - off : 72);
            buf_str(m, off + 72 < b64.len ? "\r\n\t" : "\r\n");
        }
        free(b64.p);
    }
    const char *from[1] = {s->sender};
    address_header(m, "From", from, 1, european, cs, &r);
    size_t nto = s->qm.nrcpt > 1 && rng_chance(&r, 0.5) ? (s->qm.nrcpt + 1) / 2 : s->qm.nrcpt;
    address_header(m, "To", s->rcpts, nto, european, cs, &r);
    if (nto < s->qm.nrcpt)
        address_header(m, "Cc", s->rcpts + nto, s->qm.nrcpt - nto, european, cs, &r);

    /* Subject: a few words, a rare name now and then, Re:/Fwd: */
    struct buf subj = {0};
    double pre = rng_unit(&r);
    buf_str(&subj, pre < 0.25 ? "Re: " : pre < 0.32 ? "Fwd: " : pre < 0.34 ? "AW: " : "");
    unsigned sw = 2 + (unsigned)rng_below(&r, 7);
    for (unsigned k = 0; k < sw; k++) {
        char word[64];
        if (k == sw - 1 && rng_chance(&r, 0.3))
            synth_name(rng_below(&r, NNAMES), word, sizeof word);
        else if (european && rng_chance(&r, 0.15))
            snprintf(word, sizeof word, "%s", accented_words[rng_below(&r, NACCENTED)]);
        else
            snprintf(word, sizeof word, "%s", g->words[zipf_draw(&g->zwords, &r)]);
        if (k == 0 && word[0] >= 'a' && word[0] <= 'z')
            word[0] = (char)(word[0] - 'a' + 'A');
        buf_fmt(&subj, "%s%s", k ? " " : "", word);
    }
    buf_str(m, "Subject: ");
    header_words(m, (const char *)subj.p, cs);
    free(subj.p);
    buf_fmt(m, "\r\nDate: %s\r\nMessage-ID: <%016" PRIx64 ".%" PRIu64 "@%s>\r\nMIME-Version: 1.0\r\n", date,
            rng_next(&r), i, sender_dom);

    /* The body: about 2-8 KiB in all for text, 50-200 KiB with an attachment. */
    char greet[64], signer[128];
    display_name(s->rcpts[0], 0, &r, greet, sizeof greet);
    greet[strcspn(greet, " ")] = '\0';
    display_name(s->sender, 0, &r, signer, sizeof signer);
    size_t headers = m->len;
    size_t target = (size_t)(2048.0 * pow(4.0, rng_unit(&r))); /* log-uniform 2-8 KiB */
    target = target > headers + 600 ? target - headers : 600;
    struct buf text = {0}, html = {0};
    char boundary[48];
    snprintf(boundary, sizeof boundary, "=_lb_%016" PRIx64, rng_next(&r));
    switch (s->body_kind) {
    case BODY_PLAIN:
        gen_text(g, &r, &text, target, european, greet, signer);
        emit_text_part(m, &text, "text/plain", cs, &r);
        break;
    case BODY_HTML_ONLY:
        gen_text(g, &r, &text, target * 2 / 3, european, greet, signer);
        text_to_html(&text, &html);
        emit_text_part(m, &html, "text/html", cs, &r);
        break;
    case BODY_HTML_ALT:
        gen_text(g, &r, &text, target / 2, european, greet, signer);
        text_to_html(&text, &html);
        buf_fmt(m, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n--%s\r\n", boundary, boundary);
        emit_text_part(m, &text, "text/plain", cs, &r);
        buf_fmt(m, "\r\n--%s\r\n", boundary);
        emit_text_part(m, &html, "text/html", cs, &r);
        buf_fmt(m, "\r\n--%s--\r\n", boundary);
        break;
    default: { /* BODY_ATTACHMENT: 50-200 KiB in all, log-uniform */
        static const char *const ext[] = {"pdf", "docx", "xlsx", "pptx", "zip", "jpg"};
        static const char *const mime[] = {
            "application/pdf", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation", "application/zip",
            "image/jpeg"};
        size_t total = (size_t)(51200.0 * pow(4.0, rng_unit(&r)));
        size_t textlen = 1000 + (size_t)rng_below(&r, 2000);
        gen_text(g, &r, &text, textlen, european, greet, signer);
        buf_fmt(m, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n", boundary, boundary);
        emit_text_part(m, &text, "text/plain", cs, &r);
        size_t used = m->len + 400;
        size_t att = total > used ? (total - used) / 4 * 3 : 1024;
        unsigned char *bin = malloc(att);
        if (!bin)
            abort();
        for (size_t k = 0; k < att; k += 8) { /* compressed formats: incompressible bytes */
            uint64_t v = rng_next(&r);
            memcpy(bin + k, &v, att - k < 8 ? att - k : 8);
        }
        size_t e = rng_below(&r, 6);
        char fname[96], nm[48];
        synth_name(rng_below(&r, NNAMES), nm, sizeof nm);
        snprintf(fname, sizeof fname, "%s_%s_%u.%s", g->words[NCOMMON + rng_below(&r, 500)], nm,
                 (unsigned)(2020 + rng_below(&r, 7)), ext[e]);
        buf_fmt(m,
                "\r\n--%s\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; "
                "filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
                boundary, mime[e], fname, fname);
        base64_encode(bin, att, 1, m);
        free(bin);
        buf_fmt(m, "\r\n--%s--\r\n", boundary);
        break;
    }
    }
    free(text.p);
    free(html.p);

    s->qm.sender = s->sender;
    s->qm.rcpts = s->rcpts;
    s->qm.body = s->body.p;
    s->qm.body_len = s->body.len;
    s->qm.client_addr = "198.51.100.25";
    s->qm.helo = s->qm.direction == DIR_INBOUND ? "mail.sender.example" : "mx1.acme0.test";
    struct received_info ri = {
        .helo = s->qm.helo, .client_ip = s->qm.client_addr, .hostname = "mx.lifeboat.test",
        .queue_id = s->qm.id, .rcpt = s->qm.nrcpt == 1 ? s->rcpts[0] : NULL, .esmtp = 1, .tls = 1,
        .tls_info = "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384", .when = time(NULL)};
    if (received_build(&ri, s->prefix, sizeof s->prefix) < 0)
        s->prefix[0] = '\0';
    s->qm.prefix = s->prefix;
}

/* ------------------------------------------------------------ measuring */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the process's threads: main (the generator and the done
 * callbacks: the bench's own work), the indexer (the one thread at nice 10),
 * the writer and anything else. */
struct thread_cpu {
    double main_s, indexer_s, writer_s;
};

static void threads_cpu(struct thread_cpu *out)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    long hz = sysconf(_SC_CLK_TCK);
    long main_nice = getpriority(PRIO_PROCESS, 0);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[300], line[1024];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        line[n] = '\0';
        char *p = strrchr(line, ')');
        if (!p)
            continue;
        /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
         * cutime cstime priority nice */
        unsigned long ut = 0, st = 0;
        long nice = 0;
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %ld", &ut, &st,
                   &nice) != 3)
            continue;
        double cpu = (double)(ut + st) / (double)hz;
        if (atoi(de->d_name) == getpid())
            out->main_s += cpu;
        else if (nice > main_nice) /* the indexer lowers its own priority */
            out->indexer_s += cpu;
        else
            out->writer_s += cpu;
    }
    closedir(d);
}

/* Names the writer and indexer threads (comm), so that perf and top tell
 * them apart; the main thread is the generator. */
static void threads_name(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    long main_nice = getpriority(PRIO_PROCESS, 0);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || atoi(de->d_name) == getpid())
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s", de->d_name);
        errno = 0;
        long nice = getpriority(PRIO_PROCESS, (id_t)atoi(de->d_name));
        if (errno)
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(nice > main_nice ? "lb-indexer" : "lb-writer", f);
            fclose(f);
        }
    }
    closedir(d);
}

static double process_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static long current_rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void loadavg(char *out, size_t outlen)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a = 0, b = 0, c = 0;
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3)
            a = b = c = 0;
        fclose(f);
    }
    snprintf(out, outlen, "%.2f %.2f %.2f", a, b, c);
}

static int64_t sql_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    else
        fprintf(stderr, "archive_bench: %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Linear interpolation between the nearest ranks (as bench/run's pct). */
static double pct(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    double k = (double)(n - 1) * p / 100.0;
    size_t lo = (size_t)k, hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (k - (double)lo);
}

/* ------------------------------------------------------------------ ingest */

#define DELIVER_BATCH 256

/* Delivery's record of a batch of messages: every recipient sent, the message
 * released (its queue rows and blob reference go; the archive keeps its own). */
struct deliver_job {
    struct bench *b;
    size_t n;
    char ids[DELIVER_BATCH][QUEUEID_SIZE];
};

struct rcpt_ids {
    int64_t id[MAX_RCPTS * 2];
    unsigned attempts[MAX_RCPTS * 2];
    size_t n;
};

static int collect_rcpt(const struct store_rcpt *rc, void *arg)
{
    struct rcpt_ids *l = arg;
    if (l->n < sizeof l->id / sizeof l->id[0]) {
        l->id[l->n] = rc->id;
        l->attempts[l->n++] = rc->attempts;
    }
    return 0;
}

static int deliver_run(struct store *st, struct blobstore *bs, void *arg)
{
    (void)bs;
    struct deliver_job *j = arg;
    int64_t now = time(NULL);
    for (size_t i = 0; i < j->n; i++) {
        struct rcpt_ids l = {.n = 0};
        int rc = store_rcpt_list(st, j->ids[i], collect_rcpt, &l);
        for (size_t k = 0; rc == STORE_OK && k < l.n; k++)
            rc = store_rcpt_update(st, l.id[k], RCPT_SENT, l.attempts[k] + 1, now, "250 2.0.0 Ok: queued");
        int released = 0;
        if (rc == STORE_OK)
            rc = store_message_release_if_done(st, j->ids[i], &released);
        if (rc != STORE_OK)
            return rc;
    }
    return STORE_OK;
}

struct bench {
    struct config cfg;
    struct gen gen;
    struct event_base *base;
    struct store_writer *w;
    struct archive_indexer *ix; /* NULL with --no-archive */
    int archiving;              /* customers subscribed, indexer running */
    int index_later;            /* --index-later: the indexer starts after the last accept */
    sqlite3 *stats;             /* read-only connection for progress counts */
    struct slot *slots;
    unsigned window;
    int keep_queue;
    uint64_t n, next, accepted, failed, inflight;
    uint64_t deliver_inflight, deliver_failed;
    struct deliver_job *dl;     /* the batch being filled */
    struct gen_counts counts;
    double t_start, t_accepted, t_caught_up, t_last_progress, t_index_start;
    uint64_t last_progress_accepted;
    int64_t indexed_at_accept_end; /* entries indexed when the last message was accepted */
    int64_t entries_at_accept_end;
    struct thread_cpu cpu_accept_end, cpu_caught_up;
    double pcpu_accept_end, pcpu_caught_up;
    long rss_accept_end;
    struct event *progress_ev, *poll_ev;
    int done;
    char err[512];
};

static void finish_check(struct bench *b);

static void deliver_done(int rc, void *arg)
{
    struct deliver_job *j = arg;
    struct bench *b = j->b;
    if (rc != STORE_OK)
        b->deliver_failed += j->n;
    free(j);
    b->deliver_inflight--;
    finish_check(b);
}

static void deliver_flush(struct bench *b)
{
    struct deliver_job *j = b->dl;
    b->dl = NULL;
    if (!j || j->n == 0) {
        free(j);
        return;
    }
    if (store_writer_submit(b->w, deliver_run, deliver_done, j) != 0) {
        b->deliver_failed += j->n;
        free(j);
        return;
    }
    b->deliver_inflight++;
}

static void deliver_note(struct bench *b, const char *id)
{
    if (b->keep_queue)
        return;
    if (!b->dl) {
        b->dl = calloc(1, sizeof *b->dl);
        if (!b->dl)
            abort();
        b->dl->b = b;
    }
    snprintf(b->dl->ids[b->dl->n++], QUEUEID_SIZE, "%s", id);
    if (b->dl->n == DELIVER_BATCH)
        deliver_flush(b);
}

static void submit_next(struct bench *b, struct slot *s);

static void on_queued(int rc, void *arg)
{
    struct slot *s = arg;
    struct bench *b = s->b;
    b->inflight--;
    if (rc == STORE_OK) {
        b->accepted++;
        b->counts.raw_bytes += s->body.len;
        if (s->body.len > b->counts.largest)
            b->counts.largest = s->body.len;
        b->counts.msg_kind[s->msg_kind]++;
        b->counts.body_kind[s->body_kind]++;
        b->counts.charset[s->charset]++;
        deliver_note(b, s->qm.id);
    } else {
        b->failed++;
    }
    archive_indexer_wake(b->ix); /* what lifeboatd's on_queued does */
    if (b->accepted + b->failed == b->n) {
        b->t_accepted = now_s();
        deliver_flush(b);
    }
    /* a slot that held a big message gives the memory back, so that the
     * peak RSS is lifeboat's and not the generator's 256 x 256 KiB */
    if (s->body.cap > 32 * 1024) {
        free(s->body.p);
        s->body = (struct buf){0};
    }
    submit_next(b, s);
    finish_check(b);
}

static void submit_next(struct bench *b, struct slot *s)
{
    if (b->next >= b->n)
        return;
    gen_message(&b->gen, b->next++, s);
    if (queue_submit(b->w, &s->qm, on_queued, s) != 0) {
        snprintf(b->err, sizeof b->err, "the writer refused a job");
        b->failed++;
        event_base_loopbreak(b->base);
        return;
    }
    b->inflight++;
}

static int64_t entries_total(struct bench *b)
{
    return sql_int(b->stats, "SELECT coalesce(max(id), 0) FROM archive");
}

static int64_t entries_unindexed(struct bench *b)
{
    return sql_int(b->stats, "SELECT count(*) FROM archive WHERE indexed = 0");
}

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bench *b = arg;
    double t = now_s();
    int64_t entries = entries_total(b), unindexed = entries_unindexed(b);
    char load[64];
    loadavg(load, sizeof load);
    fprintf(stderr,
            "archive_bench: %6.0f s: accepted %" PRIu64 "/%" PRIu64 " (%.0f msg/s now, %.0f overall), entries %" PRId64
            ", indexed %" PRId64 ", RSS %ld MiB, load %s\n",
            t - b->t_start, b->accepted, b->n,
            (double)(b->accepted - b->last_progress_accepted) / (t - b->t_last_progress),
            (double)b->accepted / (t - b->t_start), entries, entries - unindexed, current_rss_kb() / 1024, load);
    b->t_last_progress = t;
    b->last_progress_accepted = b->accepted;
}

/* After the last message: polls until the indexer has caught up. */
static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bench *b = arg;
    if (!b->archiving || sql_int(b->stats, "SELECT EXISTS (SELECT 1 FROM archive WHERE indexed = 0)") == 0) {
        b->t_caught_up = now_s();
        threads_cpu(&b->cpu_caught_up);
        b->pcpu_caught_up = process_cpu_s();
        b->done = 1;
        event_base_loopbreak(b->base);
        return;
    }
    struct timeval tv = {0, 200000};
    evtimer_add(b->poll_ev, &tv);
}

static void finish_check(struct bench *b)
{
    if (b->next < b->n || b->inflight || b->deliver_inflight || b->poll_ev)
        return;
    /* everything accepted and recorded as delivered */
    b->entries_at_accept_end = entries_total(b);
    b->indexed_at_accept_end = b->entries_at_accept_end - entries_unindexed(b);
    threads_cpu(&b->cpu_accept_end);
    b->pcpu_accept_end = process_cpu_s();
    b->rss_accept_end = peak_rss_kb();
    fprintf(stderr, "archive_bench: all %" PRIu64 " messages accepted in %.1f s; waiting for the indexer (%" PRId64
                    " of %" PRId64 " entries indexed)\n",
            b->accepted, b->t_accepted - b->t_start, b->indexed_at_accept_end, b->entries_at_accept_end);
    if (b->archiving && b->index_later) {
        char err[512];
        b->t_index_start = now_s();
        if (!(b->ix = archive_indexer_start(&b->cfg, b->w, err, sizeof err))) {
            snprintf(b->err, sizeof b->err, "%s", err);
            event_base_loopbreak(b->base);
            return;
        }
        threads_name();
    }
    b->poll_ev = evtimer_new(b->base, on_poll, b);
    on_poll(-1, 0, b);
}

/* ------------------------------------------------------------------ setup */

static int setup_directory(struct bench *b, int subscribe, int64_t customer_ids[NCUSTOMERS])
{
    struct store *st;
    char err[512];
    if (store_open(&b->cfg, &st, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "archive_bench: %s\n", err);
        return -1;
    }
    int rc = 0;
    for (int c = 0; c < NCUSTOMERS && rc == 0; c++) {
        rc = directory_customer_add(st, customer_names[c], err, sizeof err);
        for (int d = 0; d < NDOMAINS && rc == 0; d++) {
            char route[64];
            snprintf(route, sizeof route, "mx.%s", b->gen.domains[c * NDOMAINS + d]);
            rc = directory_domain_add(st, b->gen.domains[c * NDOMAINS + d], customer_names[c], route, err,
                                      sizeof err);
            for (int u = 0; u < NUSERS && rc == 0; u++) {
                char addr[128], name[128];
                internal_addr_make(c, d, u, addr, sizeof addr);
                snprintf(name, sizeof name, "%s", addr);
                rc = directory_user_add(st, addr, name, u == 0 ? "admin" : "user", NULL, 1, err, sizeof err);
            }
        }
        /* a few minutes ago, so that every message arrives after the start */
        if (rc == 0 && subscribe)
            rc = directory_subscription_start(st, customer_names[c], 12, time(NULL) - 300, err, sizeof err);
        struct store_customer cu;
        if (rc == 0 && store_customer_get(st, customer_names[c], &cu) == STORE_OK)
            customer_ids[c] = cu.id;
    }
    if (rc != 0)
        fprintf(stderr, "archive_bench: setting up the directory: %s\n", err);
    store_close(st);
    return rc;
}

/* ------------------------------------------------------------------ search */

enum scope { SCOPE_USER, SCOPE_ADMIN, SCOPE_OPERATOR, NSCOPES };
static const char *const scope_names[] = {"user", "admin", "operator"};

enum qtype { Q_BROWSE, Q_RARE, Q_COMMON, Q_TWO, Q_FROM, Q_TO, Q_DATE, Q_TEXT_DATE, Q_NONE, NQTYPES };
static const char *const qtype_names[] = {
    "no filter (the archive view: newest 50)",
    "a rare word (a name, ~10 messages in 1M)",
    "a common word (\"meeting\", \"invoice\", ...)",
    "two words (Zipf ranks 100-2000)",
    "sender filter (from=ADDRESS)",
    "recipient filter (to=ADDRESS)",
    "date range (7 days)",
    "text + date (a word of rank 100-2000, 30 days)",
    "a word with no hits",
};
static const char *const search_common[] = {"meeting", "invoice", "project", "report", "update", "thanks",
                                            "schedule", "customer", "contract", "budget"};

struct search_cell {
    double *ms;
    size_t n;
    uint64_t *hits;
};

struct page_count {
    unsigned n;
};

static int page_cb(const struct store_archive_entry *e, void *arg)
{
    (void)e;
    ((struct page_count *)arg)->n++;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int run_searches(struct bench *b, const int64_t customer_ids[NCUSTOMERS], unsigned reps, double budget_s,
                        struct search_cell cells[NSCOPES][NQTYPES])
{
    struct store *st;
    char err[512];
    if (store_open(&b->cfg, &st, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "archive_bench: %s\n", err);
        return -1;
    }
    const struct gen *g = &b->gen;
    int64_t span_start = g->t0 - (int64_t)DAYS * 86400;
    for (int sc = 0; sc < NSCOPES; sc++) {
        for (int qt = 0; qt < NQTYPES; qt++) {
            struct search_cell *cell = &cells[sc][qt];
            cell->ms = calloc(reps, sizeof *cell->ms);
            cell->hits = calloc(reps, sizeof *cell->hits);
            if (!cell->ms || !cell->hits)
                abort();
            double spent = 0;
            for (unsigned rep = 0; rep < reps && (spent < budget_s || rep < 10); rep++) {
                struct rng r;
                rng_seed(&r, g->seed ^ 0x5ea4c4, (uint64_t)(sc * 1000 + qt) * 100000 + rep);
                struct store_archive_query q = {.direction = -1, .has_attachment = -1, .limit = SEARCH_PAGE};
                int user = (int)zipf_draw(&g->zusers, &r);
                const char *user_addrs[1] = {g->internal[user]};
                if (sc == SCOPE_USER) {
                    q.customer_id = customer_ids[internal_customer(user)];
                    q.user_addrs = user_addrs;
                    q.nuser_addrs = 1;
                } else if (sc == SCOPE_ADMIN) {
                    q.customer_id = customer_ids[rng_below(&r, NCUSTOMERS)];
                }
                char text[128];
                int64_t day = span_start + (int64_t)rng_below(&r, DAYS - 30) * 86400;
                switch (qt) {
                case Q_BROWSE:
                    break;
                case Q_RARE:
                    synth_name(rng_below(&r, NNAMES), text, sizeof text);
                    q.text = text;
                    break;
                case Q_COMMON:
                    q.text = search_common[rng_below(&r, sizeof search_common / sizeof search_common[0])];
                    break;
                case Q_TWO:
                    snprintf(text, sizeof text, "%s %s", g->words[100 + rng_below(&r, 1900)],
                             g->words[100 + rng_below(&r, 1900)]);
                    q.text = text;
                    break;
                case Q_FROM:
                    /* a user: mail from someone who writes a lot; admin and
                     * operator: from any outside correspondent */
                    q.from = g->outside[sc == SCOPE_USER ? rng_below(&r, 50) : zipf_draw(&g->zoutside, &r)];
                    break;
                case Q_TO:
                    /* a user: mail they sent to a correspondent; others: mail to a user */
                    q.to = sc == SCOPE_USER ? g->outside[rng_below(&r, 50)]
                                            : g->internal[zipf_draw(&g->zusers, &r)];
                    break;
                case Q_DATE:
                    q.after = day;
                    q.before = day + 7 * 86400;
                    break;
                case Q_TEXT_DATE:
                    q.text = g->words[100 + rng_below(&r, 1900)];
                    q.after = day;
                    q.before = day + 30 * 86400;
                    break;
                default: /* Q_NONE: letters no generated word has */
                    snprintf(text, sizeof text, "qjw%" PRIu64, rng_below(&r, 1000000));
                    q.text = text;
                    break;
                }
                struct page_count pc = {0};
                uint64_t total = 0;
                double t = now_s();
                int rc = store_archive_search(st, &q, page_cb, &pc, &total);
                double dt = now_s() - t;
                if (rc != STORE_OK) {
                    fprintf(stderr, "archive_bench: search failed (%s, %s)\n", scope_names[sc], qtype_names[qt]);
                    store_close(st);
                    return -1;
                }
                spent += dt;
                cell->ms[cell->n] = dt * 1000;
                cell->hits[cell->n++] = total;
            }
            qsort(cell->ms, cell->n, sizeof *cell->ms, cmp_double);
            qsort(cell->hits, cell->n, sizeof *cell->hits, cmp_u64);
            fprintf(stderr, "archive_bench: search %-8s %-50s n=%3zu p50 %8.2f ms p95 %8.2f ms, median hits %" PRIu64 "\n",
                    scope_names[sc], qtype_names[qt], cell->n, pct(cell->ms, cell->n, 50), pct(cell->ms, cell->n, 95),
                    cell->hits[cell->n / 2]);
        }
    }
    store_close(st);
    return 0;
}

/* ------------------------------------------------------------------ disk */

static uint64_t walk_files, walk_apparent, walk_allocated;

static int walk_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (type == FTW_F) {
        walk_files++;
        walk_apparent += (uint64_t)sb->st_size;
        walk_allocated += (uint64_t)sb->st_blocks * 512;
    }
    return 0;
}

struct disk {
    uint64_t blob_files, blob_apparent, blob_allocated, blob_stored_rows;
    uint64_t db_bytes, wal_bytes, db_allocated;
    uint64_t page_size, free_pages;
    /* SQLite pages in use by table (with its indexes) */
    uint64_t fts_index, fts_content, fts_other, archive, addrs, blobs_tbl, queue, other;
    int64_t entries, fts_rows;
};

static uint64_t file_size(const char *path, uint64_t *allocated)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return 0;
    if (allocated)
        *allocated += (uint64_t)sb.st_blocks * 512;
    return (uint64_t)sb.st_size;
}

static int measure_disk(struct bench *b, struct disk *d)
{
    memset(d, 0, sizeof *d);
    char path[1200];
    snprintf(path, sizeof path, "%s/blobs", b->cfg.data_dir);
    walk_files = walk_apparent = walk_allocated = 0;
    if (nftw(path, walk_cb, 64, FTW_PHYS) != 0)
        fprintf(stderr, "archive_bench: walking %s: %s\n", path, strerror(errno));
    d->blob_files = walk_files;
    d->blob_apparent = walk_apparent;
    d->blob_allocated = walk_allocated;
    snprintf(path, sizeof path, "%s/lifeboat.db", b->cfg.data_dir);
    d->db_bytes = file_size(path, &d->db_allocated);
    snprintf(path, sizeof path, "%s/lifeboat.db-wal", b->cfg.data_dir);
    d->wal_bytes = file_size(path, &d->db_allocated);

    sqlite3 *db = b->stats;
    d->page_size = (uint64_t)sql_int(db, "PRAGMA page_size");
    d->free_pages = (uint64_t)sql_int(db, "PRAGMA freelist_count");
    d->entries = sql_int(db, "SELECT count(*) FROM archive");
    d->fts_rows = sql_int(db, "SELECT count(*) FROM archive_fts_content");
    d->blob_stored_rows = (uint64_t)sql_int(db, "SELECT total(stored_size) FROM blobs");
    sqlite3_stmt *s = NULL;
    /* Pages counted one by one: SQLite 3.40's aggregate pgsize wraps at 4 GiB. */
    const char *sql = "SELECT m.tbl_name, count(*) * (SELECT page_size FROM pragma_page_size) FROM dbstat d "
                      "JOIN sqlite_schema m ON m.name = d.name GROUP BY m.tbl_name";
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "archive_bench: dbstat: %s\n", sqlite3_errmsg(db));
        return -1;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        uint64_t v = (uint64_t)sqlite3_column_int64(s, 1);
        if (!t)
            continue;
        if (!strcmp(t, "archive_fts_data") || !strcmp(t, "archive_fts_idx"))
            d->fts_index += v;
        else if (!strcmp(t, "archive_fts_content"))
            d->fts_content += v;
        else if (!strncmp(t, "archive_fts", 11))
            d->fts_other += v;
        else if (!strcmp(t, "archive"))
            d->archive += v;
        else if (!strcmp(t, "archive_addrs"))
            d->addrs += v;
        else if (!strcmp(t, "blobs"))
            d->blobs_tbl += v;
        else if (!strcmp(t, "messages") || !strcmp(t, "recipients"))
            d->queue += v;
        else
            d->other += v;
    }
    sqlite3_finalize(s);
    return 0;
}

/* ------------------------------------------------------------------ report */

static const char *human(uint64_t bytes, char *out, size_t outlen)
{
    if (bytes >= (1ull << 30))
        snprintf(out, outlen, "%.2f GiB", (double)bytes / (double)(1ull << 30));
    else if (bytes >= (1ull << 20))
        snprintf(out, outlen, "%.1f MiB", (double)bytes / (double)(1ull << 20));
    else
        snprintf(out, outlen, "%.1f KiB", (double)bytes / 1024.0);
    return out;
}

static void disk_row(const char *what, uint64_t bytes, uint64_t msgs, uint64_t raw)
{
    char h[32];
    printf("| %s | %s | %.0f | %.3f |\n", what, human(bytes, h, sizeof h), (double)bytes / (double)(msgs ? msgs : 1),
           (double)bytes / (double)(raw ? raw : 1));
}

struct run_info {
    char load_before[64], load_after[64], fs[1024], started[64];
    double gen_rate;
    unsigned reps;
    double budget;
};

static void report(struct bench *b, const struct run_info *ri, struct search_cell cells[NSCOPES][NQTYPES],
                   const struct disk *d, int searched)
{
    struct store_writer_stats ws;
    store_writer_stats(b->w, &ws);
    char h1[32], h2[32];
    uint64_t msgs = b->accepted;
    double accept_s = b->t_accepted - b->t_start;
    double catch_s = b->t_caught_up - b->t_accepted;
    double total_s = b->t_caught_up - b->t_start;
    int64_t entries = d->entries;
    printf("## Archive: %" PRIu64 " generated messages through the accept path\n\n", msgs);
    printf("- run: `archive_bench --messages %" PRIu64 " --seed %" PRIu64 " --window %u%s%s`, started %s on %ld "
           "CPUs; load average %s before, %s after (other work on the machine shows here)\n",
           b->n, b->gen.seed, b->window, b->keep_queue ? " --keep-queue" : "",
           !b->archiving ? " --no-archive" : b->index_later ? " --index-later" : "", ri->started,
           sysconf(_SC_NPROCESSORS_ONLN), ri->load_before, ri->load_after);
    printf("- data_dir on %s\n", ri->fs);
    printf("- messages: %" PRIu64 " accepted (%" PRIu64 " failed), raw %s, mean %.0f B, largest %s; archive entries "
           "%" PRId64 " (%.2f per message)\n",
           msgs, b->failed, human(b->counts.raw_bytes, h1, sizeof h1),
           (double)b->counts.raw_bytes / (double)(msgs ? msgs : 1), human(b->counts.largest, h2, sizeof h2), entries,
           (double)entries / (double)(msgs ? msgs : 1));
    printf("- mix:");
    for (int k = 0; k < NMSG_KINDS; k++)
        printf(" %s %.1f%%;", msg_kind_names[k], 100.0 * (double)b->counts.msg_kind[k] / (double)(msgs ? msgs : 1));
    printf("\n  ");
    for (int k = 0; k < NBODY_KINDS; k++)
        printf(" %s %.1f%%;", body_kind_names[k], 100.0 * (double)b->counts.body_kind[k] / (double)(msgs ? msgs : 1));
    printf("\n  ");
    for (int k = 0; k < 3; k++)
        printf(" %s %.1f%%;", charset_names[k], 100.0 * (double)b->counts.charset[k] / (double)(msgs ? msgs : 1));
    printf("\n- after acceptance every message was %s\n\n",
           b->keep_queue ? "left queued (--keep-queue: the queue rows count in the disk figures)"
                         : "marked delivered and released by a writer job per 256 messages, as delivery does "
                           "(the archive keeps its own blob reference)");

    printf("### Ingest and indexing\n\n| figure | value |\n|---|---|\n");
    printf("| accepted: messages/s (blob + queue rows + archive entries, %u jobs in flight) | **%.0f** |\n", b->window,
           (double)msgs / accept_s);
    printf("| accepted: raw MiB/s | %.1f |\n", (double)b->counts.raw_bytes / accept_s / 1048576.0);
    printf("| time to accept all | %.1f s |\n", accept_s);
    if (b->archiving) {
        printf("| indexed while accepting | %" PRId64 " of %" PRId64 " entries (%.0f entries/s) |\n",
               b->indexed_at_accept_end, b->entries_at_accept_end, (double)b->indexed_at_accept_end / accept_s);
        printf("| indexer caught up after the last accept | **%.1f s** (%.0f entries/s meanwhile) |\n", catch_s,
               (double)(b->entries_at_accept_end - b->indexed_at_accept_end) / (catch_s > 0 ? catch_s : 1));
        printf("| accept + index, whole run | %.1f s (%.0f messages/s) |\n", total_s, (double)msgs / total_s);
    }
    const struct thread_cpu *c = &b->cpu_caught_up;
    printf("| CPU: writer thread (blobs, SQLite, archive_ingest, delivery records, FTS inserts) | %.1f s (%.3f ms/msg) |\n",
           c->writer_s, c->writer_s * 1000 / (double)(msgs ? msgs : 1));
    if (b->archiving)
        printf("| CPU: indexer thread (blob read, GMime, text extraction) | %.1f s (%.3f ms/entry) |\n", c->indexer_s,
               c->indexer_s * 1000 / (double)(entries ? entries : 1));
    printf("| CPU: generator (the bench's main thread, not lifeboat) | %.1f s (alone: %.0f msg/s on one core) |\n",
           c->main_s, ri->gen_rate);
    printf("| CPU: process total | %.1f s while accepting, %.1f s in all |\n", b->pcpu_accept_end, b->pcpu_caught_up);
    printf("| peak RSS (whole process, generator included) | %.1f MiB |\n", (double)peak_rss_kb() / 1024.0);
    printf("| writer groups | %" PRIu64 " for %" PRIu64 " jobs (%.1f per commit, largest %" PRIu64 "), %" PRIu64
           " failed |\n\n",
           ws.groups, ws.jobs, (double)ws.jobs / (double)(ws.groups ? ws.groups : 1), ws.largest_group,
           ws.failed_jobs);

    if (searched) {
        printf("### Search latency\n\nstore_archive_search as `GET /api/v1/archive` runs it: first page of %d, "
               "newest first, plus the total; each row up to %u searches with varying parameters "
               "(fewer when a row used up its %.0f s budget), one connection, OS page cache warm. "
               "User scope: a user's own address within their customer (Zipf-chosen user: busy users search more); "
               "admin: one customer; operator: all.\n\n",
               SEARCH_PAGE, ri->reps, ri->budget);
        printf("| query | scope | n | p50 ms | p95 ms | p99 ms | max ms | hits (median) | hits (p95) |\n");
        printf("|---|---|---|---|---|---|---|---|---|\n");
        for (int qt = 0; qt < NQTYPES; qt++)
            for (int sc = 0; sc < NSCOPES; sc++) {
                struct search_cell *cell = &cells[sc][qt];
                if (!cell->n)
                    continue;
                printf("| %s | %s | %zu | %.2f | %.2f | %.2f | %.2f | %" PRIu64 " | %" PRIu64 " |\n", qtype_names[qt],
                       scope_names[sc], cell->n, pct(cell->ms, cell->n, 50), pct(cell->ms, cell->n, 95),
                       pct(cell->ms, cell->n, 99), cell->ms[cell->n - 1], cell->hits[cell->n / 2],
                       cell->hits[(size_t)((double)(cell->n - 1) * 0.95)]);
            }
        printf("\n");
    }

    uint64_t raw = b->counts.raw_bytes;
    uint64_t db_total = d->db_bytes + d->wal_bytes;
    printf("### Disk\n\nRaw = the messages as the client sent them (%s). Per message = over %" PRIu64
           " messages; the SQLite rows are split by table from `dbstat` (pages in use, indexes with their table).\n\n",
           human(raw, h1, sizeof h1), msgs);
    printf("| what | size | B per message | per raw byte |\n|---|---|---|---|\n");
    disk_row("blob files, apparent (zstd level 1)", d->blob_apparent, msgs, raw);
    disk_row("blob files, allocated (`du`)", d->blob_allocated, msgs, raw);
    disk_row("SQLite file + WAL", db_total, msgs, raw);
    disk_row("&nbsp;&nbsp;full-text index (archive_fts_data + _idx)", d->fts_index, msgs, raw);
    disk_row("&nbsp;&nbsp;full-text copy of the text (archive_fts_content)", d->fts_content, msgs, raw);
    disk_row("&nbsp;&nbsp;archive entries (with their 5 indexes)", d->archive, msgs, raw);
    disk_row("&nbsp;&nbsp;participants (archive_addrs)", d->addrs, msgs, raw);
    disk_row("&nbsp;&nbsp;blob reference counts (blobs)", d->blobs_tbl, msgs, raw);
    disk_row("&nbsp;&nbsp;queue rows", d->queue, msgs, raw);
    disk_row("&nbsp;&nbsp;other tables, FTS config, free pages, WAL",
             db_total - d->fts_index - d->fts_content - d->archive - d->addrs - d->blobs_tbl - d->queue, msgs, raw);
    uint64_t stored = d->blob_allocated + db_total;
    printf("| **stored in all (blobs allocated + SQLite)** | **%s** | **%.0f** | **%.3f** |\n\n",
           human(stored, h1, sizeof h1), (double)stored / (double)(msgs ? msgs : 1),
           (double)stored / (double)(raw ? raw : 1));
    printf("Full-text share of all stored bytes: %.1f%% (index %.1f%%, text copy %.1f%%). %" PRIu64
           " blob files for %" PRIu64 " messages.\n\n",
           100.0 * (double)(d->fts_index + d->fts_content + d->fts_other) / (double)stored,
           100.0 * (double)d->fts_index / (double)stored, 100.0 * (double)d->fts_content / (double)stored,
           d->blob_files, msgs);
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr,
            "usage: archive_bench [--messages N] [--seed S] [--window W] [--dir DIR] [--keep]\n"
            "                     [--keep-queue] [--no-archive] [--index-later] [--searches N]\n"
            "                     [--search-budget SECONDS] [--dump I[-J]]\n"
            "  --messages N       messages to generate and accept (default 1000000)\n"
            "  --window W         queue_submit jobs in flight (default 256)\n"
            "  --dir DIR          data_dir to create (must not exist; default a temp dir, removed at the end)\n"
            "  --keep             keep the data_dir\n"
            "  --keep-queue       leave the queued messages (default: marked delivered and released)\n"
            "  --no-archive       customers without a subscription: the mail path alone, for comparison\n"
            "  --index-later      start the indexer only after the last accept (ingest and indexing apart)\n"
            "  --searches N       searches per query type and scope (default 200; 0: none)\n"
            "  --search-budget S  seconds per query type and scope at most (default 60)\n"
            "  --dump I[-J]       print generated message(s) I..J and exit (checking the generator)\n");
}

static int rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

int main(int argc, char **argv)
{
    struct bench *b = calloc(1, sizeof *b);
    if (!b)
        return 1;
    uint64_t seed = 20261128;
    b->n = 1000000;
    b->window = 256;
    const char *dir = NULL;
    int keep = 0, no_archive = 0;
    const char *dump = NULL;
    struct run_info ri = {.reps = 200, .budget = 60};
    static const struct option opts[] = {
        {"messages", required_argument, NULL, 'n'}, {"seed", required_argument, NULL, 's'},
        {"window", required_argument, NULL, 'w'},   {"dir", required_argument, NULL, 'd'},
        {"keep", no_argument, NULL, 'k'},           {"keep-queue", no_argument, NULL, 'q'},
        {"no-archive", no_argument, NULL, 'A'},     {"searches", required_argument, NULL, 'S'},
        {"search-budget", required_argument, NULL, 'B'}, {"dump", required_argument, NULL, 'D'},
        {"index-later", no_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'n': b->n = strtoull(optarg, NULL, 10); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'w': b->window = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'd': dir = optarg; break;
        case 'k': keep = 1; break;
        case 'q': b->keep_queue = 1; break;
        case 'A': no_archive = 1; break;
        case 'S': ri.reps = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'B': ri.budget = strtod(optarg, NULL); break;
        case 'D': dump = optarg; break;
        case 'L': b->index_later = 1; break;
        default: usage(); return o == 'h' ? 0 : 2;
        }
    }
    if (b->n == 0 || b->window == 0 || b->window > 100000) {
        usage();
        return 2;
    }

    if (dump) { /* --dump I[-J]: print generated messages (envelope, then the message), nothing else */
        struct gen g;
        char *dash = strchr(dump, '-');
        uint64_t from = strtoull(dump, NULL, 10), to = dash ? strtoull(dash + 1, NULL, 10) : from;
        if (gen_init(&g, seed, b->n, (int64_t)time(NULL)) != 0)
            return 1;
        struct slot s = {0};
        for (uint64_t i = from; i <= to; i++) {
            gen_message(&g, i, &s);
            printf("X-Bench-Envelope: %s %s ->", s.qm.direction == DIR_INBOUND ? "inbound" : "outbound", s.sender);
            for (size_t k = 0; k < s.qm.nrcpt; k++)
                printf(" %s", s.rcpts[k]);
            printf("\r\n");
            fwrite(s.body.p, 1, s.body.len, stdout);
            printf("\r\n");
        }
        free(s.body.p);
        gen_free(&g);
        free(b);
        return 0;
    }

    log_init("archive_bench", "bench.test", 1);
    log_set_level(LOG_LEVEL_WARN);
    /* glibc's default threshold: fixed, so that freed message buffers go back
     * to the system instead of raising the threshold and staying in the heap */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    config_defaults(&b->cfg);
    snprintf(b->cfg.hostname, sizeof b->cfg.hostname, "mx.lifeboat.test");
    char tmpl[900];
    if (dir && strlen(dir) >= sizeof tmpl - 1) {
        fprintf(stderr, "archive_bench: --dir: path too long\n");
        return 2;
    }
    if (dir) {
        if (mkdir(dir, 0700) != 0) {
            fprintf(stderr, "archive_bench: %s: %s (it must not exist)\n", dir, strerror(errno));
            return 1;
        }
        snprintf(tmpl, sizeof tmpl, "%s", dir);
    } else {
        const char *t = getenv("TMPDIR");
        snprintf(tmpl, sizeof tmpl, "%s/lb-archive-bench-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmpl)) {
            fprintf(stderr, "archive_bench: mkdtemp %s: %s\n", tmpl, strerror(errno));
            return 1;
        }
    }
    snprintf(b->cfg.data_dir, sizeof b->cfg.data_dir, "%s", tmpl);
    struct statfs sfs;
    snprintf(ri.fs, sizeof ri.fs, "%s", tmpl);
    if (statfs(tmpl, &sfs) == 0) {
        unsigned long t = (unsigned long)sfs.f_type;
        const char *name = t == 0xEF53 ? "ext2/3/4" : t == 0x58465342 ? "xfs" : t == 0x9123683E ? "btrfs"
                         : t == 0x01021994 ? "tmpfs" : "other";
        snprintf(ri.fs, sizeof ri.fs, "%s (%s, %.0f GiB free at start)", tmpl, name,
                 (double)sfs.f_bavail * (double)sfs.f_bsize / 1073741824.0);
    }
    time_t started = time(NULL);
    strftime(ri.started, sizeof ri.started, "%Y-%m-%d %H:%M UTC", gmtime(&started));
    loadavg(ri.load_before, sizeof ri.load_before);

    int rc = 1;
    struct search_cell cells[NSCOPES][NQTYPES];
    memset(cells, 0, sizeof cells);
    int64_t customer_ids[NCUSTOMERS] = {0};
    if (gen_init(&b->gen, seed, b->n, (int64_t)started) != 0) {
        fprintf(stderr, "archive_bench: out of memory\n");
        goto out;
    }
    /* The generator alone, so that its share of the machine is known. */
    {
        struct slot s = {0};
        double t = now_s();
        unsigned k;
        for (k = 0; k < 2000 && k < b->n; k++)
            gen_message(&b->gen, k, &s);
        ri.gen_rate = k / (now_s() - t);
        free(s.body.p);
    }
    fprintf(stderr, "archive_bench: data_dir %s; the generator alone makes %.0f msg/s\n", b->cfg.data_dir,
            ri.gen_rate);
    if (setup_directory(b, !no_archive, customer_ids) != 0)
        goto out;

    char err[512];
    if (evthread_use_pthreads() != 0 || !(b->base = event_base_new())) {
        fprintf(stderr, "archive_bench: cannot create the event loop\n");
        goto out;
    }
    if (!(b->w = store_writer_start(&b->cfg, b->base, err, sizeof err)) ||
        (!no_archive && !b->index_later && !(b->ix = archive_indexer_start(&b->cfg, b->w, err, sizeof err)))) {
        fprintf(stderr, "archive_bench: %s\n", err);
        goto out;
    }
    b->archiving = !no_archive;
    threads_name();
    char dbpath[1200];
    snprintf(dbpath, sizeof dbpath, "%s/lifeboat.db", b->cfg.data_dir);
    if (sqlite3_open_v2(dbpath, &b->stats, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "archive_bench: %s: %s\n", dbpath, sqlite3_errmsg(b->stats));
        goto out;
    }
    sqlite3_busy_timeout(b->stats, 10000);

    b->slots = calloc(b->window, sizeof *b->slots);
    if (!b->slots)
        goto out;
    b->t_start = b->t_last_progress = now_s();
    for (unsigned i = 0; i < b->window; i++) {
        b->slots[i].b = b;
        submit_next(b, &b->slots[i]);
    }
    b->progress_ev = event_new(b->base, -1, EV_PERSIST, on_progress, b);
    struct timeval every = {10, 0};
    evtimer_add(b->progress_ev, &every);
    event_base_dispatch(b->base);
    if (!b->done) {
        fprintf(stderr, "archive_bench: stopped early: %s\n", b->err[0] ? b->err : "?");
        goto out;
    }
    fprintf(stderr, "archive_bench: indexer caught up %.1f s after the last accept\n", b->t_caught_up - b->t_accepted);
    archive_indexer_stop(b->ix);
    b->ix = NULL;
    int have_ix = b->archiving;

    if (have_ix && ri.reps)
        if (run_searches(b, customer_ids, ri.reps, ri.budget, cells) != 0)
            goto out;
    struct disk d;
    fprintf(stderr, "archive_bench: measuring the data_dir (dbstat reads every page)\n");
    if (measure_disk(b, &d) != 0)
        goto out;
    loadavg(ri.load_after, sizeof ri.load_after);
    report(b, &ri, cells, &d, have_ix && ri.reps);
    rc = b->failed || b->deliver_failed ? 1 : 0;
out:
    archive_indexer_stop(b->ix);
    if (b->w)
        store_writer_stop(b->w);
    if (b->stats)
        sqlite3_close(b->stats);
    if (b->progress_ev)
        event_free(b->progress_ev);
    if (b->poll_ev)
        event_free(b->poll_ev);
    if (b->base)
        event_base_free(b->base);
    for (unsigned i = 0; b->slots && i < b->window; i++)
        free(b->slots[i].body.p);
    free(b->slots);
    for (int sc = 0; sc < NSCOPES; sc++)
        for (int qt = 0; qt < NQTYPES; qt++) {
            free(cells[sc][qt].ms);
            free(cells[sc][qt].hits);
        }
    gen_free(&b->gen);
    if (!keep && b->cfg.data_dir[0]) {
        nftw(b->cfg.data_dir, rm_cb, 64, FTW_DEPTH | FTW_PHYS);
        fprintf(stderr, "archive_bench: removed %s\n", b->cfg.data_dir);
    } else if (keep) {
        fprintf(stderr, "archive_bench: kept %s\n", b->cfg.data_dir);
    }
    free(b);
    return rc;
}
