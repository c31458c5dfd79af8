/*
 * dkim.c — directory_dkim_sign (directory.h): the domain's DKIM selector and
 * key file from the store, the key read from disk, the signing itself by
 * mail/dkim.h.
 *
 * The key file is read for every message, so a new key (lifeboatctl domain
 * set, or a new file at the same path) takes effect at once without a
 * reload. The copy in memory is wiped before it is freed; neither the key
 * nor anything derived from it is logged or put into err.
 */
#include "directory/directory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/dkim.h"
#include "util/addr.h"
#include "util/errbuf.h"

/* Reads the whole key file into buf (at most MAIL_DKIM_KEY_MAX bytes).
 * The length, or -1 with the reason in err. */
static ssize_t key_read(const char *path, unsigned char *buf, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errbuf_fail(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return errbuf_fail(err, errlen, "key file %s is not a regular file", path);
    }
    if (sb.st_size > MAIL_DKIM_KEY_MAX) {
        close(fd);
        return errbuf_fail(err, errlen, "key file %s is larger than %d bytes", path, MAIL_DKIM_KEY_MAX);
    }
    size_t n = 0;
    for (;;) {
        /* One byte more than allowed, to notice a file that grew. */
        ssize_t r = read(fd, buf + n, MAIL_DKIM_KEY_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return errbuf_fail(err, errlen, "cannot read key file %s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > MAIL_DKIM_KEY_MAX) {
            close(fd);
            return errbuf_fail(err, errlen, "key file %s is larger than %d bytes", path, MAIL_DKIM_KEY_MAX);
        }
    }
    close(fd);
    return (ssize_t)n;
}

int directory_dkim_key_file_check(const char *path, char *err, size_t errlen)
{
    unsigned char *key = malloc(MAIL_DKIM_KEY_MAX + 1);
    if (!key)
        return errbuf_fail(err, errlen, "out of memory");
    ssize_t keylen = key_read(path, key, err, errlen);
    char why[256];
    int rc = keylen < 0 ? -1 : mail_dkim_key_check(key, (size_t)keylen, why, sizeof why);
    if (keylen >= 0 && rc != 0)
        errbuf_fail(err, errlen, "key file %s: %s", path, why);
    explicit_bzero(key, MAIL_DKIM_KEY_MAX + 1);
    free(key);
    return rc;
}

int directory_dkim_sign(struct store *st, const char *from_domain, const unsigned char *msg, size_t len,
                        char **header, char *err, size_t errlen)
{
    *header = NULL;
    char name[DOMAIN_MAX + 1];
    if (!from_domain || addr_canonical(from_domain, name, sizeof name) != 0)
        return 0; /* no such domain can be ours, so it has no key */
    struct store_domain d;
    int rc = store_domain_get(st, name, &d);
    if (rc == STORE_NOTFOUND)
        return 0;
    if (rc != STORE_OK)
        return errbuf_fail(err, errlen, "store error reading domain %s", name);
    if (!d.dkim_selector[0] || !d.dkim_key_file[0])
        return 0;

    unsigned char *key = malloc(MAIL_DKIM_KEY_MAX + 1);
    if (!key)
        return errbuf_fail(err, errlen, "out of memory");
    ssize_t keylen = key_read(d.dkim_key_file, key, err, errlen);
    rc = -1;
    if (keylen >= 0) {
        struct mail_dkim_signer s = {
            .domain = d.name, .selector = d.dkim_selector, .key = key, .keylen = (size_t)keylen};
        char why[256];
        rc = mail_dkim_sign(&s, msg, len, header, why, sizeof why);
        if (rc != 0)
            errbuf_fail(err, errlen, "selector %s, key file %s: %s", d.dkim_selector, d.dkim_key_file, why);
    }
    explicit_bzero(key, MAIL_DKIM_KEY_MAX + 1);
    free(key);
    return rc;
}

int directory_dkim_key_save(const char *data_dir, const char *domain, const char *selector, const char *pem,
                            char *path, size_t pathlen, char *err, size_t errlen)
{
    char name[DOMAIN_MAX + 1];
    if (!domain || addr_canonical(domain, name, sizeof name) != 0)
        return errbuf_fail(err, errlen, "\"%.200s\" is not a valid domain name", domain ? domain : "");
    size_t len = pem ? strlen(pem) : 0;
    char why[256];
    if (len == 0 || len > MAIL_DKIM_KEY_MAX)
        return errbuf_fail(err, errlen, "domain %s: the DKIM key must be a PEM private key of at most %d bytes", name,
                           MAIL_DKIM_KEY_MAX);
    /* Checked before it is written: a file that cannot sign is never left behind. */
    if (mail_dkim_key_check((const unsigned char *)pem, len, why, sizeof why) != 0)
        return errbuf_fail(err, errlen, "domain %s: DKIM %s", name, why);
    for (const char *p = selector; p && *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '.' || *p == '_'))
            return errbuf_fail(err, errlen, "domain %s: bad DKIM selector \"%.100s\"", name, selector);
    if (!selector || !*selector)
        return errbuf_fail(err, errlen, "domain %s: a DKIM key needs its selector", name);
    char dir[1024], tmp[1100];
    if ((size_t)snprintf(dir, sizeof dir, "%s/dkim", data_dir) >= sizeof dir ||
        (size_t)snprintf(path, pathlen, "%s/%s.%s.pem", dir, name, selector) >= pathlen ||
        (size_t)snprintf(tmp, sizeof tmp, "%s.new", path) >= sizeof tmp)
        return errbuf_fail(err, errlen, "domain %s: the key's path is too long", name);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return errbuf_failc(DIR_STORE, err, errlen, "cannot create %s: %s", dir, strerror(errno));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errbuf_failc(DIR_STORE, err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    int ok = write(fd, pem, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return errbuf_failc(DIR_STORE, err, errlen, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}
