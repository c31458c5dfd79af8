/*
 * csv_import.c — the reader of `user import` files (SPEC.md "user import
 * CSV"): a pure function over a buffer, shared by lifeboatctl and the admin
 * API through user_import.c, and fuzzed (tests/fuzz/fuzz_csv_import.c).
 *
 * RFC 4180 with the tolerance that spreadsheet exports need: CRLF, LF or a
 * lone CR end a line, a UTF-8 byte order mark (Excel's "CSV UTF-8") is
 * skipped, blank lines are ignored, a missing final line end is fine. A
 * quoted field may hold commas, doubled quotes and line ends. What cannot
 * be read for sure is refused per record (a stray quote, text after a
 * closing quote, a wrong number of fields, a NUL, bytes that are not UTF-8),
 * so one broken line costs only itself; only a header we cannot trust (an
 * unknown or repeated column, no email column) refuses the whole file,
 * since every value would then land in the wrong place.
 *
 * Records are numbered by the file line they start on (the header is line
 * 1), which is what a spreadsheet or an editor shows the administrator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "directory/directory.h"
#include "util/errbuf.h"

static const char *const column_names[CSV_NCOLUMNS] = {
    [CSV_EMAIL] = "email",       [CSV_NAME] = "name",  [CSV_ALT_EMAIL] = "alt_email",
    [CSV_ALIASES] = "aliases",   [CSV_ROLE] = "role",  [CSV_ACTIVE] = "active",
    [CSV_PASSWORD] = "password",
};

const char *csv_import_column_name(int column)
{
    return column >= 0 && column < CSV_NCOLUMNS ? column_names[column] : "";
}

/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* The reader's position in the input and in the output text (fields are
 * written into a copy, unquoted and NUL-terminated; never longer than the
 * input, so the copy has room). */
struct reader {
    const char *in;
    size_t len, pos;
    char *out;
    size_t outpos;
    unsigned line; /* of pos */
};

/* A record: its fields' offsets in the output text. */
#define FIELDS_MAX 64 /* more than any header we accept has: the rest only count */
struct record {
    unsigned line;    /* where it starts */
    size_t nfields;
    size_t field[FIELDS_MAX];
    const char *error; /* static text, NULL: fine */
    int blank;         /* an empty line */
    int quoted;        /* some field was quoted ("" is an empty value, not a blank line) */
};

/* At a line end? Consumes it (CRLF, LF or CR) and counts the line. */
static int line_end(struct reader *r)
{
    if (r->pos >= r->len)
        return 0;
    if (r->in[r->pos] == '\r') {
        r->pos += r->pos + 1 < r->len && r->in[r->pos + 1] == '\n' ? 2 : 1;
    } else if (r->in[r->pos] == '\n') {
        r->pos++;
    } else {
        return 0;
    }
    r->line++;
    return 1;
}

static void set_error(struct record *rec, const char *why)
{
    if (!rec->error)
        rec->error = why;
}

/* Reads one field from pos into the output text. Returns 1 when a comma
 * follows (more fields), 0 at the end of the record. */
static int read_field(struct reader *r, struct record *rec)
{
    size_t start = r->outpos;
    if (rec->nfields < FIELDS_MAX)
        rec->field[rec->nfields] = start;
    rec->nfields++;
    if (r->pos < r->len && r->in[r->pos] == '"') {
        rec->quoted = 1;
        r->pos++;
        for (;;) {
            if (r->pos >= r->len) {
                set_error(rec, "a quoted field is not closed (a missing \")");
                r->out[r->outpos++] = 0;
                return 0;
            }
            char c = r->in[r->pos];
            if (c == '"') {
                if (r->pos + 1 < r->len && r->in[r->pos + 1] == '"') {
                    r->out[r->outpos++] = '"';
                    r->pos += 2;
                    continue;
                }
                r->pos++;
                break;
            }
            if (c == '\n' || (c == '\r' && !(r->pos + 1 < r->len && r->in[r->pos + 1] == '\n')))
                r->line++;
            r->out[r->outpos++] = c;
            r->pos++;
        }
        /* after the closing quote: a comma, the end of the line or of the file */
        if (r->pos < r->len && r->in[r->pos] != ',' && r->in[r->pos] != '\r' && r->in[r->pos] != '\n') {
            set_error(rec, "text after a closing quote (a quote inside a field is written \"\")");
            while (r->pos < r->len && r->in[r->pos] != ',' && r->in[r->pos] != '\r' && r->in[r->pos] != '\n')
                r->pos++;
        }
    } else {
        while (r->pos < r->len && r->in[r->pos] != ',' && r->in[r->pos] != '\r' && r->in[r->pos] != '\n') {
            if (r->in[r->pos] == '"')
                set_error(rec, "a quote inside a field that does not start with one (quote the whole field)");
            r->out[r->outpos++] = r->in[r->pos++];
        }
    }
    size_t n = r->outpos - start;
    if (memchr(r->out + start, 0, n))
        set_error(rec, "a NUL byte in a field");
    else if (!utf8_valid((const unsigned char *)r->out + start, n))
        set_error(rec, "the line is not UTF-8 text (save the file as \"CSV UTF-8\")");
    r->out[r->outpos++] = 0;
    if (r->pos < r->len && r->in[r->pos] == ',') {
        r->pos++;
        return 1;
    }
    line_end(r);
    return 0;
}

/* Reads the record at pos. */
static void read_record(struct reader *r, struct record *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->line = r->line;
    size_t out0 = r->outpos;
    int more;
    do
        more = read_field(r, rec);
    while (more);
    /* One empty unquoted field on a line of its own: a blank line. */
    rec->blank = rec->nfields == 1 && !rec->quoted && !rec->error && r->outpos - out0 == 1;
}

/* Trims spaces and tabs around s in place; returns s moved past the leading ones. */
char *csv_import_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    return s;
}

/* The header: which column each field is; -1 after err says why. */
static int read_header(struct reader *r, struct record *rec, int map[FIELDS_MAX], unsigned *columns, char *err,
                       size_t errlen)
{
    if (rec->error)
        return errbuf_fail(err, errlen, "line 1 (the header): %s", rec->error);
    if (rec->blank)
        return errbuf_fail(err, errlen, "line 1 must be the header, e.g. \"email,name,aliases,role,active\"");
    if (rec->nfields > FIELDS_MAX)
        return errbuf_fail(err, errlen, "the header has %zu columns; there are only %d kinds", rec->nfields,
                           CSV_NCOLUMNS);
    *columns = 0;
    for (size_t i = 0; i < rec->nfields; i++) {
        char *name = csv_import_trim(r->out + rec->field[i]);
        int col = -1;
        for (int c = 0; c < CSV_NCOLUMNS; c++)
            if (!strcasecmp(name, column_names[c]))
                col = c;
        if (col < 0) {
            /* The name may be anything: show only printable ASCII of it. */
            char shown[48];
            size_t k = 0;
            for (const unsigned char *p = (const unsigned char *)name; *p && k < sizeof shown - 1; p++)
                shown[k++] = *p >= 0x20 && *p < 0x7f ? (char)*p : '?';
            shown[k] = 0;
            return errbuf_fail(err, errlen,
                               "unknown column \"%s\" in the header (columns: email, name, alt_email, aliases, "
                               "role, active, password)",
                               shown);
        }
        if (*columns & (1u << col))
            return errbuf_fail(err, errlen, "column \"%s\" appears twice in the header", column_names[col]);
        *columns |= 1u << col;
        map[i] = col;
    }
    if (!(*columns & (1u << CSV_EMAIL)))
        return errbuf_fail(err, errlen, "the header has no \"email\" column");
    return 0;
}

int csv_import_parse(const char *buf, size_t len, struct csv_import_file *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > CSV_IMPORT_BYTES_MAX)
        return errbuf_fail(err, errlen, "the file is larger than %u MB: split it", CSV_IMPORT_BYTES_MAX >> 20);
    struct reader r = {.in = buf, .len = len, .line = 1};
    if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
        r.pos = 3;
    if (r.pos >= len)
        return errbuf_fail(err, errlen, "the file is empty (a header line is needed)");
    /* Every byte of input gives at most one of output, every field one NUL,
     * and a field needs at least one byte of input or is the last of its
     * line: len * 2 + 1 is always enough. */
    r.out = malloc(len * 2 + 1);
    if (!r.out)
        return errbuf_fail(err, errlen, "out of memory");
    out->text = r.out;
    out->textsize = len * 2 + 1;

    struct record rec;
    int map[FIELDS_MAX];
    read_record(&r, &rec);
    if (read_header(&r, &rec, map, &out->columns, err, errlen) != 0) {
        csv_import_file_free(out);
        return -1;
    }
    size_t ncols = rec.nfields, cap = 0;
    while (r.pos < r.len) {
        read_record(&r, &rec);
        if (rec.blank)
            continue;
        if (out->nrows == CSV_IMPORT_ROWS_MAX) {
            csv_import_file_free(out);
            return errbuf_fail(err, errlen, "the file has more than %u users: split it", CSV_IMPORT_ROWS_MAX);
        }
        if (out->nrows == cap) {
            cap = cap ? cap * 2 : 64;
            struct csv_import_row *rows = realloc(out->rows, cap * sizeof *rows);
            if (!rows) {
                csv_import_file_free(out);
                return errbuf_fail(err, errlen, "out of memory");
            }
            out->rows = rows;
        }
        struct csv_import_row *row = &out->rows[out->nrows++];
        memset(row, 0, sizeof *row);
        row->line = rec.line;
        row->error = rec.error;
        if (!row->error && rec.nfields != ncols)
            row->error = rec.nfields < ncols ? "fewer fields than the header has columns"
                                             : "more fields than the header has columns (quote a field with a comma)";
        if (row->error)
            continue;
        for (size_t i = 0; i < ncols; i++)
            row->field[map[i]] = r.out + rec.field[i];
    }
    return 0;
}

void csv_import_file_free(struct csv_import_file *f)
{
    if (f->text)
        explicit_bzero(f->text, f->textsize);
    free(f->rows);
    free(f->text);
    memset(f, 0, sizeof *f);
}

int csv_import_next_word(const char **pos, char *out, size_t outlen)
{
    const char *p = *pos;
    while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\r' || *p == '\n')
        p++;
    if (!*p) {
        *pos = p;
        return 0;
    }
    const char *start = p;
    while (*p && *p != ' ' && *p != '\t' && *p != ',' && *p != '\r' && *p != '\n')
        p++;
    *pos = p;
    size_t n = (size_t)(p - start);
    if (n >= outlen)
        return -1;
    memcpy(out, start, n);
    out[n] = 0;
    return 1;
}
