/*
 * ctl_import.c — lifeboatctl user import FILE.csv --domain D [--json]
 * (SPEC.md "user import CSV"). The file ("-": standard input) is read whole,
 * up to the import's size limit, and handed to directory_user_import, the
 * same code the admin API's POST users/import runs; the report is printed as
 * text or as the API's JSON.
 *
 * Exit status: 0 when every line was imported, 1 when some line was refused
 * (the report says which; the others are imported) or nothing could be, 2 on
 * bad usage.
 */
#include "ctl/ctl.h"
#include "directory/directory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads fd whole into *buf (malloc'd), at most CSV_IMPORT_BYTES_MAX bytes.
 * CTL_OK or CTL_FAIL after saying why. */
static int read_all(int fd, const char *name, char **buf, size_t *len)
{
    size_t cap = 64 * 1024, n = 0;
    char *b = malloc(cap);
    if (!b)
        return ctl_fail("%s: out of memory", name);
    for (;;) {
        if (n == cap) {
            if (cap > CSV_IMPORT_BYTES_MAX) {
                free(b);
                return ctl_fail("%s is larger than %u MB: split it", name, CSV_IMPORT_BYTES_MAX >> 20);
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return ctl_fail("%s: out of memory", name);
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(b);
            return ctl_fail("cannot read %s: %s", name, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > CSV_IMPORT_BYTES_MAX) {
        explicit_bzero(b, n);
        free(b);
        return ctl_fail("%s is larger than %u MB: split it", name, CSV_IMPORT_BYTES_MAX >> 20);
    }
    *buf = b;
    *len = n;
    return CTL_OK;
}

static int read_file(const char *path, char **buf, size_t *len)
{
    if (!strcmp(path, "-"))
        return read_all(STDIN_FILENO, "standard input", buf, len);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ctl_fail("cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    int rc;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > (off_t)CSV_IMPORT_BYTES_MAX)
        rc = ctl_fail("%s is larger than %u MB: split it", path, CSV_IMPORT_BYTES_MAX >> 20);
    else
        rc = read_all(fd, path, buf, len);
    close(fd);
    return rc;
}

int ctl_user_import(struct ctl *c, int argc, char **argv)
{
    const char *pos[1], *domain = NULL;
    int json = c->json, n;
    const struct ctl_opt opts[] = {{"domain", &domain, NULL}, {"json", NULL, &json}, {0}};
    if (ctl_getopt(argc, argv, opts, pos, 1, 1, &n) != CTL_OK)
        return CTL_USAGE;
    if (!domain)
        return ctl_usage_error("user import: --domain D is required");
    char *buf = NULL;
    size_t len = 0;
    if (read_file(pos[0], &buf, &len) != CTL_OK)
        return CTL_FAIL;
    struct store *st = ctl_store(c);
    char err[512];
    struct directory_import *imp = NULL;
    /* lifeboatctl is the operator's tool: any role may be given. */
    int rc = st ? directory_user_import(st, domain, buf, len, ROLE_OPERATOR, &imp, err, sizeof err) : DIR_STORE;
    explicit_bzero(buf, len); /* it may hold passwords */
    free(buf);
    if (!st)
        return CTL_FAIL;
    if (rc != 0)
        return ctl_fail("user import: %s", err);
    const struct directory_import_report *r = directory_import_report(imp);
    size_t refused = r->nerrors;
    if (json) {
        json_t *j = directory_import_report_json(r);
        directory_import_free(imp);
        if (!j)
            return ctl_fail("user import: out of memory");
        if (ctl_json_print(j) != CTL_OK)
            return CTL_FAIL;
    } else {
        printf("imported %u, updated %u, refused %zu\n", r->imported, r->updated, r->nerrors);
        for (size_t i = 0; i < r->nerrors; i++) {
            printf("line %u: ", r->errors[i].line);
            ctl_put_safe(stdout, r->errors[i].error);
            printf("\n");
        }
        directory_import_free(imp);
    }
    if (refused)
        return ctl_fail("user import: %zu line(s) refused, the others imported", refused);
    return CTL_OK;
}
