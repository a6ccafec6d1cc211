#!/bin/sh
# Build the example extension for Debian's python3, run it under modlife, show the log.
#   run-example.sh MODLIFE LOG_DIR [PYTHON]
set -eu
modlife=$1
log_dir=$2
python=${3:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
cc -shared -fPIC -g -O1 -Wall -Werror -I"$include" "$here/example.c" -o "$work/example$suffix"

rm -rf "$log_dir"
echo "+ modlife run --log-dir $log_dir -- $python use_example.py"
PYTHONPATH="$work" "$modlife" run --log-dir "$log_dir" -- "$python" "$here/use_example.py"
echo "+ modlife events $log_dir"
"$modlife" events "$log_dir"
