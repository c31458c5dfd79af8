/* queueid.c — see queueid.h. */
#include "util/queueid.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void queueid_new(char out[QUEUEID_SIZE])
{
    static atomic_uint counter;
    static unsigned salt;
    static atomic_int salted;
    if (!atomic_exchange(&salted, 1)) {
        if (getrandom(&salt, sizeof salt, 0) != sizeof salt)
            salt = (unsigned)time(NULL);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    unsigned tail = (atomic_fetch_add(&counter, 1) + salt) & 0xfff;
    snprintf(out, QUEUEID_SIZE, "%013llX%03X", (unsigned long long)(usec & 0xfffffffffffffull), tail);
}

int queueid_is_valid(const char *s)
{
    if (strlen(s) != QUEUEID_LEN)
        return 0;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s) || islower((unsigned char)*s))
            return 0;
    return 1;
}
