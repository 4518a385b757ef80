"""``ipengine``: start one engine and connect it to a controller."""

from __future__ import annotations

import logging
import os
import sys

from traitlets import Float, Unicode

from taskyard.apps.base import BaseTaskyardApp, base_aliases, base_flags
from taskyard.engine.engine import Engine
from taskyard.protocol import connection

log = logging.getLogger("taskyard.engine")


class IPEngine(BaseTaskyardApp):
    """Start a taskyard engine: a process that runs the Python work a controller
    sends it. It reads ``<profile_dir>/security/ipcontroller-engine.json`` (or
    ``--file``), registers with the controller and serves until the controller
    tells it to stop or goes away."""

    name = "ipengine"
    description = __doc__

    url_file = Unicode("", help="The engine connection file (default: the profile's).").tag(config=True)
    wait_for_url_file = Float(10.0, help="Seconds to wait for the connection file to appear.").tag(config=True)
    timeout = Float(30.0, help="Seconds to wait for the controller to answer the registration.").tag(config=True)
    controller_timeout = Float(10.0, help="Exit after this many seconds without a heartbeat from the controller.").tag(
        config=True
    )

    aliases = {
        **base_aliases,
        "file": "IPEngine.url_file",
        "url-file": "IPEngine.url_file",
        "timeout": "IPEngine.timeout",
    }
    flags = base_flags

    def start(self) -> None:
        import time

        path = self.url_file or str(
            connection.connection_file("engine", profile_dir_=self.resolved_profile_dir, cluster_id=self.cluster_id)
        )
        deadline = time.monotonic() + self.wait_for_url_file
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        info = connection.read_connection_file(path)
        engine = Engine(info, controller_timeout=self.controller_timeout)
        engine.install_signal_handlers()
        engine.connect()
        engine_id = engine.register(self.timeout)
        log.info("engine %d (pid %d) serving", engine_id, os.getpid())
        try:
            engine.run()
        finally:
            log.info("engine %d stopped", engine_id)
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


main = IPEngine.main

if __name__ == "__main__":
    main()
