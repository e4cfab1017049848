"""Logging set-up of the entry points: one format, INFO when verbose, WARNING otherwise."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure_logging(verbose: bool) -> None:
    """Give the root logger a handler (unless it has one) and set its level: INFO when ``verbose``, else WARNING."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format=LOG_FORMAT)
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
