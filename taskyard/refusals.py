"""What taskyard refuses, loudly: ipyparallel options and keywords it does not implement.

A command given an ipyparallel 9.2 option that taskyard does not implement exits
non-zero with one line naming the option and what to do instead; an option
unknown to both exits non-zero with the closest known names. The same holds for
keywords of :class:`~taskyard.Client` and :class:`~taskyard.Cluster`, which raise
:class:`~taskyard.error.UnsupportedOption`. Nothing is ever accepted and ignored.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from taskyard.error import UnsupportedOption

_SSH = "ssh tunnels are not available; run the client on a host that reaches the controller, or forward ports yourself"
_DB = "taskyard's controller keeps results in memory only; there is no database option"
_LOGS = "logs go to <profile_dir>/log for ty.Cluster and ipcluster, and to stderr otherwise; use --log-level"
_IPYDIR = "set TASKYARD_DIR (profiles live in $TASKYARD_DIR/profile_<name>) or use --profile-dir"
_SECURITY = "every connection is signed with the key of the connection file; there is no insecure mode"
_CONFIG = "taskyard reads <profile_dir>/<command>_config.py or .json; pass other settings as options"
_LAUNCHERS = "launchers other than local are not available yet; start engines with `ipengine` on each host"
_LOCATION = "the controller binds --ip; to reach it from other hosts copy the connection file and edit its addresses"

_COMMON: dict[str, str] = {
    "ipython-dir": _IPYDIR,
    "work-dir": "processes run in the current directory; cd there first",
    "clean-logs": "taskyard does not delete old logs; remove <profile_dir>/log/* yourself",
    "log-to-file": _LOGS,
    "log-url": _LOGS,
    "config": _CONFIG,
    "init": "profile directories are created on first use; --init is not needed",
    "quiet": "use --log-level=WARN",
    "show-config": "not available; see `--help-all` for every option and its value",
    "show-config-json": "not available; see `--help-all` for every option and its value",
}

#: command -> option (without dashes) -> what to do instead.
CLI_REFUSALS: dict[str, dict[str, str]] = {
    "ipcontroller": {
        **_COMMON,
        "ssh": _SSH,
        "enginessh": _SSH,
        "location": _LOCATION,
        "reuse": "each start writes fresh connection files; clients and engines read the new ones",
        "restore": "the controller does not restore engines from an earlier run; start new engines",
        "nodb": _DB,
        "dictdb": _DB,
        "sqlitedb": _DB,
        "mongodb": _DB,
        "secure": _SECURITY,
        "no-secure": _SECURITY,
        "keyfile": "the key is in the connection file; a separate key file is not supported",
        "ident": "identities are set by taskyard; there is nothing to choose",
        "user": "the session user name is not configurable",
        "transport": "only tcp is available",
        "port": "ports are chosen at random and written to the connection file",
        "ports": "ports are chosen at random and written to the connection file",
        "usethreads": "the schedulers always run inside the controller process",
    },
    "ipengine": {
        **_COMMON,
        "ssh": _SSH,
        "sshkey": _SSH,
        "location": _LOCATION,
        "url": "give the connection file with --file; a bare url is not enough (it lacks the key)",
        "mpi": "MPI initialisation is not available; import mpi4py in your tasks instead",
        "c": "run startup code with `view.execute(code)` once the engines are up",
        "s": "run a startup script with `view.run(path)` once the engines are up",
        "secure": _SECURITY,
        "no-secure": _SECURITY,
        "keyfile": "the key is in the connection file; a separate key file is not supported",
        "ident": "identities are set by taskyard; there is nothing to choose",
        "user": "the session user name is not configurable",
    },
    "ipcluster start": {
        **_COMMON,
        "engines": _LAUNCHERS,
        "controller": "launchers other than local are not available yet; start `ipcontroller` on the host you want",
        "location": _LOCATION,
        "ip": "pass it to the controller: --IPClusterStart.controller_args='[\"--ip=...\"]'",
        "delay": "engines start together once the controller is ready; there is no delay to set",
    },
    "ipcluster stop": {
        **_COMMON,
        "all": "stop each cluster with `ipcluster stop --cluster-id=ID` (see `ipcluster list`)",
        "signal": "ipcluster stop always asks the processes to stop (SIGTERM, then SIGKILL)",
    },
}

#: ipcluster subcommands taskyard does not have.
SUBCOMMAND_REFUSALS: dict[str, str] = {
    "engines": "adding engines to a running cluster from the command line is not available; "
    "start more with `ipengine --profile=... --cluster-id=...`",
    "clean": "remove <profile_dir>/log and <profile_dir>/security yourself",
    "nbextension": "there is no notebook extension; use ty.Cluster from the notebook",
}

#: Keywords of ``Client`` that taskyard refuses -> what to do instead.
CLIENT_REFUSALS: dict[str, str] = {
    "sshserver": _SSH,
    "sshkey": _SSH,
    "password": _SSH,
    "paramiko": _SSH,
    "exec_key": "the key is read from the connection file",
    "ipython_dir": _IPYDIR,
    "username": "the session user name is not configurable",
    "packer": "serialisation is fixed (pickle / cloudpickle)",
    "unpacker": "serialisation is fixed (pickle / cloudpickle)",
    "session": "the client builds its session from the connection file",
    "config": "pass the keywords directly",
    "transport": "only tcp is available",
    "ip": "the addresses come from the connection file",
    "location": "the addresses come from the connection file",
}

#: Keywords of ``Cluster`` that taskyard refuses -> what to do instead.
CLUSTER_REFUSALS: dict[str, str] = {
    "engine_launcher_class": _LAUNCHERS,
    "controller_launcher_class": "launchers other than local are not available yet; "
    "start `ipcontroller` on the host you want and connect with ty.Client(url_file=...)",
    "engines": _LAUNCHERS,
    "controller": "launchers other than local are not available yet",
    "launcher_class": _LAUNCHERS,
    "controller_ip": "pass controller_args=['--ip=...']",
    "controller_location": _LOCATION,
    "delay": "engines start together once the controller is ready",
    "load_profile": "configuration comes from the keywords only",
    "config": "pass the keywords directly",
    "send_engines_connection_env": "engines read the connection file from the profile",
    "engine_timeout": "use start_cluster_sync(timeout=...)",
    "controller_args_extra": "use controller_args",
    "parent": "not applicable",
    "log": "logs go to <profile_dir>/log; set log_level",
}


def suggestion(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def check_argv(command: str, argv: Iterable[str], known: Iterable[str]) -> str | None:
    """The one-line error for the first refused or unknown option in ``argv``, or None.

    ``known`` are the option names (without dashes) the command implements;
    ``--Class.trait=value`` settings and ``--help``-style options are left to traitlets.
    """
    known = set(known) | {"help", "help-all", "version", "h"}
    refused = CLI_REFUSALS.get(command, {})
    for arg in argv:
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-" or _is_number(arg):
            continue
        name = arg.lstrip("-").split("=", 1)[0]
        if not name or "." in name or name in known:
            continue
        if name in refused:
            return f"{command}: option --{name} is not supported by taskyard: {refused[name]}"
        return f"{command}: unknown option {arg.split('=', 1)[0]}" + suggestion(name, known) + " (see --help)"
    return None


def _is_number(arg: str) -> bool:
    try:
        float(arg)
    except ValueError:
        return False
    return True


def check_keywords(owner: str, kwargs: Mapping[str, object], refused: Mapping[str, str], known: Iterable[str]) -> None:
    """Raise :class:`UnsupportedOption` for the first keyword of ``kwargs`` (all of them are unhandled)."""
    for name in kwargs:
        if name in refused:
            raise UnsupportedOption(f"{owner}({name}=...) is not supported by taskyard: {refused[name]}")
        raise UnsupportedOption(f"{owner}() got an unknown keyword {name!r}" + suggestion(name, known))
