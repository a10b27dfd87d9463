"""Connect to a Ray cluster (or start a local one): the one place that imports Ray for featurebench."""

from __future__ import annotations

import logging
from typing import Any

from featurebench.errors import FeaturebenchError

#: Shown when the optional extra is missing.
INSTALL_HINT = "install the optional extra: pip install 'featurebench[ray]'"


def import_ray() -> Any:
    """Import Ray, or raise a :class:`FeaturebenchError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise FeaturebenchError(f"--ray needs Ray, which is not installed; {INSTALL_HINT}.") from None
    return ray


def connect(address: str | None = None) -> Any:
    """The ``ray`` module, connected: reuse a connection this process already has, else join
    ``address`` (``auto``: the cluster on this node; ``ray://HOST:PORT``: Ray Client; a GCS
    ``HOST:PORT``), else start a local cluster on this machine (``address`` None)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    # Ray warns on every local start that token authentication is on (a default, not a problem).
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 configure_logging=True, logging_level="WARNING")
    except ConnectionError as exc:
        raise FeaturebenchError(f"Could not connect to the Ray cluster at {address!r} ({exc}); start it with "
                                "`ray start --head` or pass another --address.") from None
    return ray
