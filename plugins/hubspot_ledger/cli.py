"""`hubspot-ledger`: the operator CLI (DESIGN.md, "Operator CLI").

Each verb is a thin call into the same service functions the HTTP endpoints use. Every failure
exits non-zero with one line on stderr saying why; no tracebacks for expected failures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from hubspot_ledger.config import apply_airflow_env_defaults


class CliError(Exception):
    """An expected failure: printed as one line, exit status 1."""


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def cmd_migrate(args: argparse.Namespace) -> None:
    from hubspot_ledger.hooks.ledger import LedgerHook

    applied = LedgerHook().migrate(create_database=True)
    print(f"applied {len(applied)} migration(s): {', '.join(applied)}" if applied
          else "ledger schema is up to date")


def cmd_integration_create(args: argparse.Namespace) -> None:
    from hubspot_ledger.hooks.ledger import LedgerHook

    print(LedgerHook().create_integration(args.organization, args.cutoff))


def cmd_sandbox(args: argparse.Namespace) -> None:
    # The sandbox owns its flags; importing it only for this verb keeps every other verb
    # independent of it (the sync code never imports the sandbox).
    from hubspot_ledger.sandbox.cli import add_arguments, run

    parser = _Parser(prog="hubspot-ledger sandbox", description="Serve the HubSpot sandbox.")
    add_arguments(parser)
    run(parser.parse_args(args.rest))


def _not_yet(verb: str, issue: int) -> Callable[[argparse.Namespace], None]:
    def handler(args: argparse.Namespace) -> None:
        raise CliError(f"'{verb}' is not available yet (issue #{issue})")

    return handler


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line too (argparse prints the whole usage by default)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hubspot-ledger", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB",
                                  parser_class=_Parser)

    verbs.add_parser("migrate", help="create or upgrade the ledger schema").set_defaults(
        func=cmd_migrate
    )

    integration = verbs.add_parser("integration", help="manage integrations")
    integration_verbs = integration.add_subparsers(dest="integration_verb", required=True,
                                                   parser_class=_Parser)
    create = integration_verbs.add_parser("create", help="create a HubSpot integration")
    create.add_argument("--organization", required=True, help="organization name")
    create.add_argument("--cutoff", required=True, type=_date, help="YYYY-MM-DD, inclusive")
    create.set_defaults(func=cmd_integration_create)

    sandbox = verbs.add_parser("sandbox", help="serve the HubSpot sandbox (see sandbox --help)",
                               add_help=False)
    sandbox.add_argument("rest", nargs=argparse.REMAINDER)
    sandbox.set_defaults(func=cmd_sandbox)

    for verb, issue in (("auth-url", 3), ("connect", 3), ("settings", 3), ("errors", 3),
                        ("sync", 4)):
        stub = verbs.add_parser(verb, help=f"(issue #{issue})")
        stub.add_argument("rest", nargs=argparse.REMAINDER)
        stub.set_defaults(func=_not_yet(verb, issue))
    return parser


def _log_to_stderr(verbose: bool) -> None:
    """Progress goes to stderr so that stdout carries only the verb's result (e.g. an id).

    Importing Airflow installs its own logging (to stdout); this replaces it for the CLI.
    """
    import airflow.configuration  # noqa: F401 - installs Airflow's logging; replaced below
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        for noisy in ("airflow", "alembic", "sqlalchemy"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    apply_airflow_env_defaults()
    args = build_parser().parse_args(argv)
    _log_to_stderr(args.verbose)
    try:
        args.func(args)
    except CliError as exc:
        print(f"hubspot-ledger: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI contract is one line, not a traceback
        logging.getLogger(__name__).debug("failure", exc_info=True)
        print(f"hubspot-ledger: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
