/*
 * fuzz_csv_import.c — libFuzzer target for the user import reader
 * (csv_import_parse, src/directory/csv_import.c): what an administrator's
 * file, or an admin API client's body, can make of it. The input is copied
 * into a buffer of exactly its size (the reader takes a length, not a NUL),
 * so ASan sees any read past it.
 *
 * Checks directory.h's promises: a refused file has a one-line reason and no
 * rows; an accepted one has an email column, at most CSV_IMPORT_ROWS_MAX
 * rows numbered from line 2 upwards within the text's lines; a row with an
 * error has no fields, a row without one has exactly the header's columns,
 * each a valid UTF-8 string in the reader's own text. Then the good rows are
 * written back as CSV (every field quoted) and read again: the same values
 * come back, in the same order. The aliases splitter ends and gives words
 * without separators.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory/directory.h"

static void check_utf8(const unsigned char *s)
{
    while (*s) {
        unsigned char c = *s;
        size_t k = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 9;
        if (k == 9)
            abort();
        for (size_t j = 1; j <= k; j++)
            if ((s[j] & 0xc0) != 0x80)
                abort();
        s += k + 1;
    }
}

static size_t count_lines(const char *d, size_t n)
{
    size_t lines = 1;
    for (size_t i = 0; i < n; i++)
        if (d[i] == '\n' || (d[i] == '\r' && !(i + 1 < n && d[i + 1] == '\n')))
            lines++;
    return lines;
}

static void check_words(const char *field)
{
    const char *pos = field;
    char w[64];
    int r, guard = 0;
    while ((r = csv_import_next_word(&pos, w, sizeof w)) != 0) {
        if (++guard > 100000)
            abort();
        if (r == 1 && (!w[0] || strpbrk(w, " \t,\r\n")))
            abort();
    }
}

/* Appends s to out as one quoted CSV field. */
static size_t put_field(char *out, size_t n, const char *s)
{
    out[n++] = '"';
    for (; *s; s++) {
        if (*s == '"')
            out[n++] = '"';
        out[n++] = *s;
    }
    out[n++] = '"';
    return n;
}

static void round_trip(const struct csv_import_file *f, size_t textlen)
{
    int cols[CSV_NCOLUMNS], ncols = 0;
    for (int c = 0; c < CSV_NCOLUMNS; c++)
        if (f->columns & (1u << c))
            cols[ncols++] = c;
    /* Each byte at most doubled, plus quotes, commas and line ends. */
    size_t cap = 256 + 2 * textlen + f->nrows * (CSV_NCOLUMNS * 3 + 2);
    char *out = malloc(cap);
    if (!out)
        return;
    size_t n = 0, good = 0;
    for (int i = 0; i < ncols; i++)
        n += (size_t)sprintf(out + n, "%s%s", i ? "," : "", csv_import_column_name(cols[i]));
    out[n++] = '\n';
    for (size_t r = 0; r < f->nrows; r++) {
        if (f->rows[r].error)
            continue;
        good++;
        for (int i = 0; i < ncols; i++) {
            if (i)
                out[n++] = ',';
            n = put_field(out, n, f->rows[r].field[cols[i]]);
        }
        out[n++] = '\r';
        out[n++] = '\n';
    }
    struct csv_import_file g;
    char err[256];
    if (csv_import_parse(out, n, &g, err, sizeof err) != 0) {
        /* Only the size limit can refuse a file we wrote (quotes double). */
        if (n <= CSV_IMPORT_BYTES_MAX)
            abort();
        free(out);
        return;
    }
    if (g.nrows != good || g.columns != f->columns)
        abort();
    size_t k = 0;
    for (size_t r = 0; r < f->nrows; r++) {
        if (f->rows[r].error)
            continue;
        if (g.rows[k].error)
            abort();
        for (int i = 0; i < ncols; i++)
            if (strcmp(g.rows[k].field[cols[i]], f->rows[r].field[cols[i]]) != 0)
                abort();
        k++;
    }
    csv_import_file_free(&g);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct csv_import_file f;
    char err[256];
    err[0] = 0;
    if (csv_import_parse(buf, size, &f, err, sizeof err) != 0) {
        if (!err[0] || f.rows || f.text || f.nrows)
            abort();
        for (const unsigned char *p = (const unsigned char *)err; *p; p++)
            if (*p < 0x20)
                abort();
        free(buf);
        return 0;
    }
    if (!(f.columns & (1u << CSV_EMAIL)) || f.nrows > CSV_IMPORT_ROWS_MAX || (f.columns >> CSV_NCOLUMNS))
        abort();
    size_t lines = count_lines(buf, size);
    unsigned last = 1;
    for (size_t r = 0; r < f.nrows; r++) {
        const struct csv_import_row *row = &f.rows[r];
        if (row->line <= last || row->line > lines)
            abort();
        last = row->line;
        for (int c = 0; c < CSV_NCOLUMNS; c++) {
            const char *v = row->field[c];
            if (row->error || !(f.columns & (1u << c))) {
                if (v)
                    abort();
                continue;
            }
            if (!v || v < f.text || v >= f.text + f.textsize || strlen(v) > size)
                abort();
            check_utf8((const unsigned char *)v);
        }
        if (!row->error && row->field[CSV_ALIASES])
            check_words(row->field[CSV_ALIASES]);
    }
    round_trip(&f, f.textsize);
    csv_import_file_free(&f);
    free(buf);
    return 0;
}
