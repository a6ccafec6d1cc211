"""`python -m modlife`, and the `modlife` command a wheel installs (its console script
calls main)."""
import sys

from modlife import cli, version


def main():
    return cli.main(sys.argv[1:], version=version.VERSION)


if __name__ == "__main__":
    sys.exit(main())
