import sys

from modlife import cli

sys.exit(cli.main(sys.argv[1:]))
