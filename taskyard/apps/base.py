"""What every taskyard command shares: profile, cluster id, logging, errors.

Every option is a traitlets trait, so it is also a config-file setting
(``<profile_dir>/<app>_config.py`` or ``.json``) and ``--help-all`` lists it.
A bad value exits non-zero at once with one ``Error: ...`` line; ``--debug``
shows tracebacks.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from traitlets import Bool, Unicode, default
from traitlets.config import Application

from taskyard.error import ConfigError, TaskyardError
from taskyard.protocol import connection
from taskyard.refusals import check_argv

LOG_FORMAT = "%(asctime)s.%(msecs)03d [%(name)s] %(levelname)s %(message)s"

base_aliases: dict[str, Any] = {
    "profile": "BaseTaskyardApp.profile",
    "profile-dir": "BaseTaskyardApp.profile_dir",
    "cluster-id": "BaseTaskyardApp.cluster_id",
    "log-level": "Application.log_level",
}
base_flags: dict[str, Any] = {
    "debug": (
        {"BaseTaskyardApp": {"debug": True}, "Application": {"log_level": "DEBUG"}},
        "log at DEBUG level and show tracebacks",
    ),
}


class BaseTaskyardApp(Application):
    """Shared options of ipcontroller, ipengine and ipcluster."""

    profile = Unicode("default", help="The profile name; its directory is $TASKYARD_DIR/profile_<name>.").tag(
        config=True
    )
    profile_dir = Unicode("", help="The profile directory (overrides --profile).").tag(config=True)
    cluster_id = Unicode("", help="Names a cluster, so several can share a profile.").tag(config=True)
    debug = Bool(False, help="Show tracebacks of errors.").tag(config=True)

    aliases = base_aliases
    flags = base_flags

    @default("log_format")
    def _log_format_default(self) -> str:
        return LOG_FORMAT

    @default("log_datefmt")
    def _log_datefmt_default(self) -> str:
        return "%H:%M:%S"

    @property
    def resolved_profile_dir(self) -> Path:
        return connection.profile_dir(self.profile, self.profile_dir or None)

    #: The name the refusals table knows this command by (see taskyard.refusals).
    refusal_name = ""

    @classmethod
    def known_options(cls) -> set[str]:
        return set(cls.aliases) | set(cls.flags)

    def refuse_options(self, argv: list[str]) -> None:
        """Exit non-zero on an option taskyard does not implement (never warn and go on)."""
        error = check_argv(self.refusal_name or self.name, argv, self.known_options())
        if error is not None:
            self.fail(error)

    def initialize(self, argv: list[str] | None = None) -> None:
        self.refuse_options(list(sys.argv[1:] if argv is None else argv))
        self.parse_command_line(argv)
        if self.extra_args and not getattr(self, "accepts_extra_args", False):
            self.fail(f"unexpected arguments: {' '.join(self.extra_args)} (see --help)")
        for name in (f"{self.name}_config",):
            self.load_config_file(name, path=[str(self.resolved_profile_dir)])
        # Command-line values win over config files.
        self.update_config(self.cli_config)
        level = self.log_level if isinstance(self.log_level, int) else logging.getLevelName(self.log_level)
        logging.basicConfig(level=level, format=LOG_FORMAT, datefmt="%H:%M:%S", stream=sys.stderr)
        logging.getLogger("taskyard").setLevel(level)

    def fail(self, message: str, code: int = 2) -> None:
        print(f"Error: {message}", file=sys.stderr)  # noqa: T201 - a CLI's one line
        self.exit(code)

    def wants_traceback(self) -> bool:
        return bool(self.debug)

    @classmethod
    def main(cls, argv: list[str] | None = None) -> None:
        """Entry point: run the app, turning configuration errors into one line."""
        app = cls()
        try:
            app.initialize(argv)
            app.start()
        except (ConfigError, TaskyardError, OSError) as exc:
            if app.wants_traceback():
                raise
            print(f"Error: {exc}", file=sys.stderr)  # noqa: T201
            sys.exit(1)
        except KeyboardInterrupt:
            sys.exit(130)
