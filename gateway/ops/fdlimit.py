"""The file-descriptor limit the gateway needs, checked at start.

Every TCP connection (members, peers, the metrics port), every database connection
and every open file holds one descriptor. The gateway raises its soft limit towards
the hard limit (up to ``RECOMMENDED_OPEN_FILES``) and refuses to start below
``min_open_files``: a gateway that can open only a few hundred files is exhausted by
a few hundred idle connections. docs/OPERATIONS.md ("Threads, streams and
connections") says how to size and raise it.
"""

from __future__ import annotations

import logging
import resource

from gateway.errors import ConfigError

logger = logging.getLogger(__name__)

RECOMMENDED_OPEN_FILES = 65_536

__all__ = ["RECOMMENDED_OPEN_FILES", "ensure_open_files"]


def ensure_open_files(minimum: int) -> int:
    """Raise the soft RLIMIT_NOFILE as far as allowed; ConfigError below ``minimum``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = RECOMMENDED_OPEN_FILES if hard == resource.RLIM_INFINITY else hard
    want = min(RECOMMENDED_OPEN_FILES, ceiling)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError) as e:
            logger.warning("cannot raise the open-file limit from %s to %s: %s", soft, want, e)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < minimum:
        raise ConfigError(
            f"min_open_files: this process may open {soft} files (RLIMIT_NOFILE), "
            f"the gateway needs at least {minimum}",
            advice=f"raise the limit to {RECOMMENDED_OPEN_FILES} (systemd LimitNOFILE=, "
            "docker --ulimit nofile=, or ulimit -n); see docs/OPERATIONS.md",
        )
    if soft < RECOMMENDED_OPEN_FILES:
        logger.info("open-file limit %s (%s recommended)", soft, RECOMMENDED_OPEN_FILES)
    return soft
