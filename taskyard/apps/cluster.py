"""``ipcluster``: start and stop a controller with local engines.

``ipcluster start -n 4`` runs in the foreground until Ctrl-C (or ``ipcluster
stop``); with ``--daemonize`` it returns once the engines are registered and
keeps the cluster running in the background. ``ipcluster stop`` stops the
cluster of the profile (and cluster id) it is given.

The running ipcluster writes ``<profile_dir>/pid/ipcluster[-<id>].json`` with its
own pid and those of the processes it started; ``stop`` uses it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from traitlets import Bool, Float, Int, List, Unicode

from taskyard.apps.base import BaseTaskyardApp, base_aliases, base_flags
from taskyard.cluster.launcher import LocalCluster, cluster_file_path, write_cluster_file
from taskyard.error import ConfigError
from taskyard.refusals import SUBCOMMAND_REFUSALS, check_argv, suggestion

log = logging.getLogger("taskyard.cluster")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie child of ours is not alive.
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


class _ClusterApp(BaseTaskyardApp):
    @property
    def pid_file(self) -> Path:
        name = f"ipcluster-{self.cluster_id}.json" if self.cluster_id else "ipcluster.json"
        return self.resolved_profile_dir / "pid" / name


class IPClusterStart(_ClusterApp):
    """Start a controller and N engines on this machine."""

    name = "ipcluster"
    refusal_name = "ipcluster start"
    description = __doc__

    n = Int(2, help="The number of engines to start.").tag(config=True)
    daemonize = Bool(False, help="Return once the cluster is ready, leaving it running in the background.").tag(
        config=True
    )
    timeout = Float(60.0, help="Seconds to wait for the controller and engines to be ready.").tag(config=True)
    controller_args = List(Unicode(), help="Extra arguments for ipcontroller.").tag(config=True)
    engine_args = List(Unicode(), help="Extra arguments for each ipengine.").tag(config=True)
    scheme = Unicode("", help="The controller's task scheme (passed on as --scheme).").tag(config=True)

    aliases = {
        **base_aliases,
        "n": "IPClusterStart.n",
        "timeout": "IPClusterStart.timeout",
        "scheme": "IPClusterStart.scheme",
    }
    flags = {
        **base_flags,
        "daemonize": ({"IPClusterStart": {"daemonize": True}}, "run the cluster in the background"),
        "daemon": ({"IPClusterStart": {"daemonize": True}}, "same as --daemonize"),
    }

    def start(self) -> None:
        if self.n < 0:
            self.fail(f"-n must be at least 0, not {self.n}")
        existing = _read_pid_file(self.pid_file)
        if existing and _alive(int(existing["pid"])):
            raise ConfigError(
                f"a cluster is already running for this profile (pid {existing['pid']}); `ipcluster stop` it first"
            )
        if self.daemonize:
            self._start_daemon()
            return
        controller_args = list(self.controller_args)
        if self.scheme:
            controller_args.append(f"--scheme={self.scheme}")
        cluster = LocalCluster(
            self.n,
            profile_dir=self.resolved_profile_dir,
            cluster_id=self.cluster_id,
            controller_args=controller_args,
            engine_args=self.engine_args,
            log_level=_level_name(self.log_level),
        )
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        started_at = time.monotonic()
        cluster.start(self.timeout)
        _write_pid_file(self.pid_file, {"pid": os.getpid(), "pids": cluster.pids()})
        # The same file ty.Cluster writes, so ty.Cluster.from_file() attaches to this cluster too.
        cluster_file = cluster_file_path(cluster.profile_dir, self.cluster_id)
        write_cluster_file(
            cluster_file,
            cluster.describe(**{"class": "ipcluster", "scheme": self.scheme or None, "ipcluster_pid": os.getpid()}),
        )
        print(  # noqa: T201 - the CLI's report
            f"cluster ready: controller and {self.n} engines in {time.monotonic() - started_at:.2f} s "
            f"(profile dir {self.resolved_profile_dir}); stop with Ctrl-C or `ipcluster stop"
            f"{' --profile-dir=' + str(self.resolved_profile_dir) if self.profile_dir else ''}`",
            flush=True,
        )
        try:
            while not stopping:
                if cluster.controller is None or cluster.controller.poll() is not None:
                    log.warning("the controller exited; stopping the engines")
                    break
                time.sleep(0.2)
        finally:
            cluster.stop()
            cluster_file.unlink(missing_ok=True)
            self.pid_file.unlink(missing_ok=True)
            print("cluster stopped", flush=True)  # noqa: T201

    def _start_daemon(self) -> None:
        argv = [a for a in sys.argv[1:] if a not in ("--daemonize", "--daemon")]
        log_dir = self.resolved_profile_dir / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "ipcluster.log", "ab") as logfile:
            child = subprocess.Popen(
                [sys.executable, "-m", "taskyard.apps.cluster", *argv],
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.timeout + 5
        while time.monotonic() < deadline:
            info = _read_pid_file(self.pid_file)
            if info and info.get("pid") == child.pid:
                print(f"cluster ready in the background (pid {child.pid}); stop it with `ipcluster stop`")  # noqa: T201
                return
            if child.poll() is not None:
                raise ConfigError(
                    f"the cluster failed to start (exit code {child.returncode}); see {log_dir / 'ipcluster.log'}"
                )
            time.sleep(0.05)
        child.kill()
        raise ConfigError(f"the cluster was not ready within {self.timeout} s; see {log_dir}")


class IPClusterStop(_ClusterApp):
    """Stop the cluster that `ipcluster start` started for this profile."""

    name = "ipcluster"
    refusal_name = "ipcluster stop"
    description = __doc__
    timeout = Float(15.0, help="Seconds to wait for the cluster to stop before killing it.").tag(config=True)
    aliases = {**base_aliases, "timeout": "IPClusterStop.timeout"}

    def start(self) -> None:
        info = _read_pid_file(self.pid_file)
        if not info:
            raise ConfigError(f"no cluster is running for profile dir {self.resolved_profile_dir} (no {self.pid_file})")
        pid = int(info["pid"])
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        for other in [pid, *info.get("pids", [])]:
            if _alive(int(other)):
                os.kill(int(other), signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        print("cluster stopped")  # noqa: T201


def running_clusters(root: Path) -> list[dict[str, Any]]:
    """The running clusters under ``root`` ($TASKYARD_DIR): ty.Cluster's
    ``security/cluster-<id>.json`` files and ``ipcluster start``'s pid files,
    skipping stale ones whose controller is gone."""
    found: list[dict[str, Any]] = []
    for path in sorted(root.glob("profile_*/security/cluster-*.json")):
        try:
            info = json.loads(path.read_text()).get("cluster", {})
        except (OSError, ValueError, AttributeError):
            continue
        pid = info.get("controller_pid")
        if isinstance(pid, int) and _alive(pid):
            engines = [p for p in info.get("engine_pids", []) if isinstance(p, int) and _alive(p)]
            found.append(
                {
                    "profile": path.parent.parent.name[len("profile_") :],
                    "cluster_id": info.get("cluster_id", ""),
                    "engines": len(engines),
                    "controller_pid": pid,
                }
            )
    listed = {c["controller_pid"] for c in found}
    for path in sorted(root.glob("profile_*/pid/ipcluster*.json")):
        pid_info = _read_pid_file(path)
        if pid_info is None or not _alive(int(pid_info["pid"])):
            continue
        pids = [p for p in pid_info.get("pids", []) if isinstance(p, int) and _alive(p)]
        if pids and pids[0] in listed:
            continue  # its cluster file listed it already
        found.append(
            {
                "profile": path.parent.parent.name[len("profile_") :],
                "cluster_id": path.stem[len("ipcluster-") :],
                "engines": max(len(pids) - 1, 0),
                "controller_pid": pids[0] if pids else None,
            }
        )
    return found


class IPClusterList(_ClusterApp):
    """List the running taskyard clusters: profile, cluster id, engines, controller pid."""

    name = "ipcluster"
    refusal_name = "ipcluster list"
    description = __doc__

    def start(self) -> None:
        from taskyard.protocol import connection

        clusters = running_clusters(connection.taskyard_dir())
        print(f"{'PROFILE':<16} {'CLUSTER-ID':<24} {'ENGINES':>7} {'CONTROLLER-PID':>14}")  # noqa: T201
        for c in clusters:
            print(f"{c['profile']:<16} {c['cluster_id']:<24} {c['engines']:>7} {c['controller_pid'] or '-':>14}")  # noqa: T201


class IPCluster(BaseTaskyardApp):
    """Start and stop taskyard clusters: `ipcluster start -n 4`, `ipcluster stop`."""

    name = "ipcluster"
    description = __doc__
    subcommands = {
        "start": (IPClusterStart, "Start a controller and engines."),
        "stop": (IPClusterStop, "Stop a running cluster."),
        "list": (IPClusterList, "List the running clusters."),
    }

    def start(self) -> None:
        if self.subapp is None:
            self.fail("give a subcommand: `ipcluster start -n N` or `ipcluster stop` (see --help)")
        self.subapp.start()

    def initialize(self, argv: list[str] | None = None) -> None:
        args = list(sys.argv[1:] if argv is None else argv)
        if args and not args[0].startswith("-"):
            sub = args[0]
            if sub in SUBCOMMAND_REFUSALS:
                self.fail(f"ipcluster {sub} is not supported by taskyard: {SUBCOMMAND_REFUSALS[sub]}")
            if sub not in self.subcommands:
                self.fail(
                    f"ipcluster: unknown subcommand {sub!r}" + suggestion(sub, self.subcommands) + " (see --help)"
                )
            app_cls = self.subcommands[sub][0]
            error = check_argv(f"ipcluster {sub}", args[1:], app_cls.known_options())  # type: ignore[union-attr]
            if error is not None:
                self.fail(error)
        else:
            self.refuse_options(args)
        self.parse_command_line(argv)
        if self.subapp is not None:
            BaseTaskyardApp.initialize(self.subapp, self.subapp.extra_args)  # type: ignore[arg-type]

    def wants_traceback(self) -> bool:
        return bool(getattr(self.subapp, "debug", False))


def _level_name(level: int | str) -> str:
    names = {10: "DEBUG", 20: "INFO", 30: "WARN", 40: "ERROR", 50: "CRITICAL"}
    return names.get(level, "INFO") if isinstance(level, int) else str(level)


def _read_pid_file(path: Path) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "pid" in info else None


def _write_pid_file(path: Path, info: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


main = IPCluster.main

if __name__ == "__main__":
    main()
