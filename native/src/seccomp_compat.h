/* Seccomp names newer than the system's headers (Debian 12 ships Linux 6.1's): the
   synchronous wake-up mode of a notification listener, Linux 6.6. Plain C: also included
   by bench/stop-roundtrip.c. */
#pragma once

#include <linux/seccomp.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
