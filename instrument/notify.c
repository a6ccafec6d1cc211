/* No-log notice to the wrapper (see notify.h). */
#include "notify.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

void ml_notify_no_log(const char *name, const char *path, const char *reason)
{
    if (!name[0])
        return;
    struct sockaddr_un to = {.sun_family = AF_UNIX};
    size_t len = strnlen(name, sizeof to.sun_path - 1);
    memcpy(to.sun_path + 1, name, len); /* sun_path[0] stays 0: the abstract namespace */
    char text[2048];
    int n = snprintf(text, sizeof text, "%d\t%s\t%s", (int)getpid(), path, reason);
    if (n < 0)
        return;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    /* A listener's queue holds few datagrams (net.unix.max_dgram_qlen): wait a little
     * for it to read rather than lose the notice, never long. */
    struct timeval wait = {.tv_sec = 0, .tv_usec = 250000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof wait);
    size_t size = (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
    ssize_t sent = sendto(fd, text, size, MSG_NOSIGNAL, (struct sockaddr *)&to,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len));
    (void)sent;
    close(fd);
}
