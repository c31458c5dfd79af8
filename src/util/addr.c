/* addr.c — see addr.h. */
#include "util/addr.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

int domain_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DOMAIN_MAX || s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
        return 0;
    size_t label = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!(isalnum(*p) || *p == '-' || *p >= 0x80))
            return 0;
        if (++label > 63)
            return 0;
    }
    return 1;
}

int addr_is_valid(const char *s)
{
    const char *at = strrchr(s, '@');
    if (!at || at == s || strlen(s) > ADDR_MAX || (size_t)(at - s) > 64)
        return 0;
    /* A quoted local part ("a@b"@example.com) may hold an @; a bare one may
     * not, or "a@b@c" would pass as a@b at c. */
    int quoted = s[0] == '"' && at - s >= 2 && at[-1] == '"';
    for (const unsigned char *p = (const unsigned char *)s; p < (const unsigned char *)at; p++) {
        if (*p <= ' ' || *p == '<' || *p == '>' || *p == '(' || *p == ')' || *p == ',' ||
            *p == ';' || *p == '\\' || *p == 0x7f)
            return 0;
        int inside = quoted && p > (const unsigned char *)s && p < (const unsigned char *)at - 1;
        if ((*p == '@' && !inside) || (*p == '"' && !quoted))
            return 0;
    }
    return domain_is_valid(at + 1);
}

int addr_canonical(const char *s, char *out, size_t outlen)
{
    size_t n = strlen(s);
    if (n + 1 > outlen)
        return -1;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    return 0;
}

const char *addr_domain(const char *s)
{
    const char *at = strrchr(s, '@');
    return at ? at + 1 : "";
}

int addr_in_domain(const char *addr, const char *domain)
{
    return strcasecmp(addr_domain(addr), domain) == 0;
}
