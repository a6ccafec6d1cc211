"""`modlife timeline LOG... -o FILE.html`: a self-contained HTML page (no network)
with a timeline per interpreter."""


def main(args, out):
    raise NotImplementedError
