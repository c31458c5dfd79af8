/*
 * fuzz_smtp_sasl.c — libFuzzer target for the SASL PLAIN/LOGIN exchange of
 * the submission port (src/smtpd/sasl.c). The input is split on LF: the first
 * line is "MECH [initial-response]" as AUTH carries it, each further line a
 * continuation the client sends, for as long as the exchange continues. Each
 * line is copied into a buffer of exactly its size so ASan sees any overread.
 *
 * Checks: a CONTINUE is a 334 challenge; a failure is a 5xx reply and leaves
 * nothing of the credentials in memory; a DONE has a non-empty, bounded login
 * without control characters (it reaches logs) and a non-empty, bounded
 * password without NUL.
 *
 * Built and run by scripts/run-fuzz.sh (tests/fuzz/README.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "smtpd/sasl.h"

static int all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return 0;
    return 1;
}

static void check(const struct sasl *x, enum sasl_status st, const char *reply)
{
    switch (st) {
    case SASL_CONTINUE:
        if (!reply || strncmp(reply, "334 ", 4) != 0)
            abort();
        break;
    case SASL_FAILED:
        if (!reply || reply[0] != '5' || !all_zero(x, sizeof *x))
            abort();
        break;
    case SASL_DONE: {
        size_t c = strnlen(x->authcid, sizeof x->authcid), p = strnlen(x->password, sizeof x->password);
        if (c == 0 || c > SASL_AUTHCID_MAX || p == 0 || p > SASL_PASSWORD_MAX)
            abort();
        for (size_t i = 0; i < c; i++)
            if ((unsigned char)x->authcid[i] < 32 || x->authcid[i] == 127)
                abort();
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (sodium_init() < 0)
            abort();
        ready = 1;
    }
    struct sasl x;
    enum sasl_status st = SASL_FAILED;
    int first = 1;
    size_t start = 0;
    while (start < size) {
        const uint8_t *lf = memchr(data + start, '\n', size - start);
        size_t len = (lf ? (size_t)(lf - data) : size) - start;
        char *line = malloc(len + 1);
        if (!line)
            return 0;
        memcpy(line, data + start, len);
        line[len] = '\0';
        const char *reply = NULL;
        if (first) {
            /* "MECH [initial]": the mechanism is what AUTH's parser allows. */
            char *sp = memchr(line, ' ', len);
            char mech[32];
            size_t mlen = sp ? (size_t)(sp - line) : len;
            if (mlen >= sizeof mech)
                mlen = sizeof mech - 1;
            memcpy(mech, line, mlen);
            mech[mlen] = '\0';
            const char *initial = sp ? sp + 1 : NULL;
            st = sasl_start(&x, mech, initial, initial ? len - (size_t)(initial - line) : 0, &reply);
            first = 0;
        } else {
            st = sasl_step(&x, line, len, &reply);
        }
        check(&x, st, reply);
        free(line);
        if (st != SASL_CONTINUE)
            break;
        start += len + 1;
    }
    if (!first)
        sasl_clear(&x);
    return 0;
}
