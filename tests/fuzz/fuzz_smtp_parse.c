/*
 * fuzz_smtp_parse.c — libFuzzer target for the SMTP command parser
 * (src/smtpd/smtp_parse.c). Each input is split on LF into command lines, as
 * the session does, and each line is parsed with and without SMTPUTF8. Checks
 * the parser's promises: a reply on every error, NUL-terminated fields of
 * bounded length, and no read past the line (the line is copied into a buffer
 * of exactly its size so ASan sees any overread). See tests/fuzz/README.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/smtp_parse.h"

static void check(const struct smtp_cmd *cmd, int rc)
{
    if (rc != SMTP_PARSE_OK) {
        if (!cmd->reply || strlen(cmd->reply) < 4 || cmd->reply[0] < '4' || cmd->reply[0] > '5')
            abort();
        return;
    }
    if (cmd->verb == SMTP_VERB_NONE || strlen(cmd->domain) > SMTP_DOMAIN_MAX ||
        strlen(cmd->path) > ADDR_MAX || strlen(cmd->auth_mech) > SMTP_AUTH_MECH_MAX)
        abort();
    /* What reaches logs and headers never carries a line break. */
    if (strpbrk(cmd->domain, "\r\n") || strpbrk(cmd->path, "\r\n"))
        abort();
    if ((cmd->verb == SMTP_HELO || cmd->verb == SMTP_EHLO) && !cmd->domain[0])
        abort();
    if (cmd->verb == SMTP_RCPT && !strchr(cmd->path, '@'))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t start = 0;
    while (start <= size) {
        const uint8_t *lf = memchr(data + start, '\n', size - start);
        size_t end = lf ? (size_t)(lf - data) : size;
        size_t len = end - start;
        if (len > 0 && data[start + len - 1] == '\r')
            len--;
        char *line = malloc(len ? len : 1);
        if (!line)
            return 0;
        memcpy(line, data + start, len);
        for (unsigned flags = 0; flags <= SMTP_PARSE_UTF8; flags += SMTP_PARSE_UTF8) {
            struct smtp_cmd cmd;
            check(&cmd, smtp_parse_command(line, len, flags, &cmd));
        }
        free(line);
        if (!lf)
            break;
        start = end + 1;
    }
    return 0;
}
