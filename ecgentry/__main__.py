"""``python -m ecgentry digitize|run|demo``: everyday use of the entry outside the Challenge scripts.

    python -m ecgentry digitize IMAGE_OR_FOLDER... -o OUT [-m MODEL] [--format wfdb|csv|both] [--plot] [-q|-v]
    python -m ecgentry run -d DATA -m MODEL -o OUT [--workers N] [-f]
    python -m ecgentry demo [-o OUT]   (the embedded default job, ``ecgentry/demo.py``)

``python -m ecgentry digitize`` is the ``ecg-digitize`` command (``ecgentry/digitize_cli.py``).
"""

from __future__ import annotations

import argparse
import logging
import sys


def get_parser() -> argparse.ArgumentParser:
    from ecgentry import digitize_cli, run_cli

    parser = digitize_cli.OneLineParser(prog="python -m ecgentry", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    digitize_cli.add_arguments(sub.add_parser("digitize", help="image files/folders -> WFDB/CSV + reports"))
    run_cli.add_arguments(sub.add_parser("run", help="run_model.py with worker processes"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:  # its own flags (ecgentry/demo.py)
        from ecgentry import demo

        return demo.main(argv[1:])
    args = get_parser().parse_args(argv)
    if args.command == "digitize":
        from ecgentry import digitize_cli

        digitize_cli.configure_logging(args)
        return digitize_cli.run(args)
    from ecgentry import run_cli
    from ecgentry.logs import configure_logging

    configure_logging(args.verbose)

    try:
        return run_cli.run(args)
    except run_cli.RecordFailed as exc:
        logging.getLogger("ecgentry").error("%s (use -f to go on past failing records)", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
