/*
 * queueid.h — queue IDs: 16 upper-case hex digits, the microsecond clock
 * followed by a per-process counter mixed with random bits, so IDs sort by
 * arrival and do not collide between lifeboatd and lifeboatctl.
 */
#ifndef LB_UTIL_QUEUEID_H
#define LB_UTIL_QUEUEID_H

#define QUEUEID_LEN 16
#define QUEUEID_SIZE (QUEUEID_LEN + 1)

void queueid_new(char out[QUEUEID_SIZE]);
int queueid_is_valid(const char *s);

#endif
