"""``ipcontroller``: start the hub, the devices and the task scheduler."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

from traitlets import Float, Int, Unicode, validate

from taskyard.apps.base import BaseTaskyardApp, base_aliases, base_flags
from taskyard.controller.hub import Controller, ControllerConfig
from taskyard.controller.tasks import attach, fork_scheduler
from taskyard.error import ConfigError
from taskyard.protocol.session import SIGNATURE_SCHEMES, new_key
from taskyard.schemes import ALL_SCHEMES

log = logging.getLogger("taskyard.controller")


class IPController(BaseTaskyardApp):
    """Start a taskyard controller: the hub that registers engines and watches
    their heartbeats, the direct and control queues, and the task scheduler.

    Writes ``<profile_dir>/security/ipcontroller-client.json`` and
    ``ipcontroller-engine.json`` (mode 0600) and removes them on a clean exit
    (Ctrl-C, SIGTERM or a client's ``shutdown(hub=True)``).
    """

    name = "ipcontroller"
    description = __doc__

    ip = Unicode("127.0.0.1", help="The address to listen on. Use '*' or 0.0.0.0 for all interfaces.").tag(config=True)
    scheme = Unicode("leastload", help=f"The task scheduler's scheme, one of: {', '.join(ALL_SCHEMES)}.").tag(
        config=True
    )
    hwm = Int(1, help="Most outstanding load-balanced tasks per engine (0 = unlimited).").tag(config=True)
    ping = Int(400, help="Heartbeat period in milliseconds.").tag(config=True)
    max_misses = Int(3, help="An engine is dead after missing this many heartbeats in a row.").tag(config=True)
    signature_scheme = Unicode("hmac-sha256", help="The message signature scheme.").tag(config=True)
    max_records = Int(100_000, help="Most task records the hub keeps.").tag(config=True)
    max_record_mb = Float(1024.0, help="Most megabytes of results the hub keeps for get_result.").tag(config=True)
    max_result_mb = Float(
        64.0,
        help="A result with more megabytes of buffers than this is recorded without them "
        "(get_result from another client cannot return it; the client that asked gets it as usual).",
    ).tag(config=True)
    key = Unicode("", help="The signing key (default: a new random key each start).").tag(config=True)
    watch_pid = Int(
        0, help="Stop when the process with this pid exits (ipcluster and ty.Cluster set it); 0 = never."
    ).tag(config=True)

    aliases = {
        **base_aliases,
        "ip": "IPController.ip",
        "scheme": "IPController.scheme",
        "hwm": "IPController.hwm",
        "ping": "IPController.ping",
        "max-misses": "IPController.max_misses",
    }
    flags = base_flags

    @validate("scheme")
    def _check_scheme(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if value not in ALL_SCHEMES:
            raise ConfigError(f"unknown scheme {value!r}; choose one of: {', '.join(ALL_SCHEMES)}")
        return value

    @validate("signature_scheme")
    def _check_signature_scheme(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if value not in SIGNATURE_SCHEMES:
            raise ConfigError(f"unknown signature scheme {value!r}; choose one of: {', '.join(SIGNATURE_SCHEMES)}")
        return value

    @validate("ping", "hwm", "max_misses")
    def _check_non_negative(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if value < 0 or (proposal["trait"].name != "hwm" and value == 0):
            raise ConfigError(f"--{proposal['trait'].name.replace('_', '-')} must be positive, not {value}")
        return value

    def start(self) -> None:
        config = ControllerConfig(
            ip=self.ip,
            key=self.key or new_key(),
            signature_scheme=self.signature_scheme,
            profile_dir=self.resolved_profile_dir,
            cluster_id=self.cluster_id,
            ping_period=self.ping / 1000.0,
            max_misses=self.max_misses,
            scheme=self.scheme,
            hwm=self.hwm,
            max_records=self.max_records,
            max_record_bytes=int(self.max_record_mb * 1024 * 1024),
            max_result_bytes=int(self.max_result_mb * 1024 * 1024),
        )
        # Fork the scheduler first: no ZeroMQ context may exist across a fork.
        scheduler = fork_scheduler(config) if config.scheme != "pure" else None
        controller = Controller(config)
        controller.install_signal_handlers()
        controller.bind()
        if scheduler is not None:
            attach(controller, scheduler)
        controller.write_connection_files()
        if self.watch_pid:
            _watch_parent(self.watch_pid, controller)
        log.info(
            "controller ready on %s (pid %d, scheme %s); engines connect with: ipengine%s",
            self.ip,
            os.getpid(),
            self.scheme,
            f" --profile-dir={self.resolved_profile_dir}" if self.profile_dir else "",
        )
        try:
            controller.run()
        finally:
            controller.close()
            log.info("controller stopped")
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            # Device threads block in C and have no clean stop; leave without joining them.
            os._exit(0)


def _watch_parent(pid: int, controller: Controller) -> None:
    """Stop the controller once ``pid`` is gone (its owner died without stopping it)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                log.warning("process %d that owns this controller is gone; stopping", pid)
                controller.stop()
                return
            except PermissionError:
                pass

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


main = IPController.main

if __name__ == "__main__":
    main()
