"""``taskyard controller|engine|cluster ...`` (also ``python -m taskyard``).

The same commands and flags as ``ipcontroller``, ``ipengine`` and
``ipcluster``, under one name that cannot be confused with ipyparallel's.
"""

from __future__ import annotations

import sys

USAGE = """\
usage: taskyard COMMAND [options]

commands (the same flags as the ipyparallel-style commands):
  controller   start a controller             (same as ipcontroller)
  engine       start one engine               (same as ipengine)
  cluster      start/stop a local cluster     (same as ipcluster: cluster start -n 4, cluster stop)

`taskyard COMMAND --help` shows a command's options.
"""

COMMANDS = {"controller": "ipcontroller", "engine": "ipengine", "cluster": "ipcluster"}


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")  # noqa: T201 - the command's help
        sys.exit(0 if args else 2)
    command, rest = args[0], args[1:]
    if command == "controller":
        from taskyard.apps.controller import main as run
    elif command == "engine":
        from taskyard.apps.engine import main as run
    elif command == "cluster":
        from taskyard.apps.cluster import main as run
    else:
        import difflib

        close = difflib.get_close_matches(command, list(COMMANDS), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        print(f"Error: taskyard: unknown command {command!r}{hint} (see taskyard --help)", file=sys.stderr)  # noqa: T201
        sys.exit(2)
    # The commands read sys.argv (ipcluster --daemonize re-runs itself with it).
    sys.argv = [COMMANDS[command], *rest]
    run(rest)


if __name__ == "__main__":
    main()
