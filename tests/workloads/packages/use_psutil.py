"""python3-psutil: the C extensions psutil._psutil_linux and _psutil_posix,
printing only facts that do not change between runs."""
import os

import psutil

me = psutil.Process(os.getpid())
print(me.pid == os.getpid(), me.name().startswith("python"), me.status() in (psutil.STATUS_RUNNING,
      psutil.STATUS_SLEEPING))
print(me.memory_info().rss > 0, len(me.cpu_times()) >= 2, me.num_threads() >= 1)
print(psutil.cpu_count() >= 1, psutil.virtual_memory().total > 0, len(psutil.disk_partitions(all=True)) >= 0)
print(isinstance(psutil.boot_time(), float), psutil.pid_exists(os.getpid()), len(me.open_files()) >= 0)
print(sorted(psutil.net_if_addrs()) == sorted(psutil.net_if_addrs()), psutil.users() is not None)
try:
    psutil.Process(2 ** 22 + 1)
except psutil.NoSuchProcess as e:
    print("error", type(e).__name__)
