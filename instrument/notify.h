/* Telling modlife run (or the pytest plugin) that this process has no log: one
 * datagram to the abstract unix socket named by the notify option.  Abstract names
 * need no file and no permission, so a child that dropped its privileges can still
 * be heard, and no descriptor is inherited by the program. */
#ifndef MODLIFE_NOTIFY_H
#define MODLIFE_NOTIFY_H

/* Sends "pid\tpath\treason" to the socket named name; nothing if name is empty or
 * nobody listens.  Waits at most a fraction of a second for a busy listener. */
void ml_notify_no_log(const char *name, const char *path, const char *reason);

#endif
