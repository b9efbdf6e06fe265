"""`hubspot-ledger`: the operator CLI (DESIGN.md, "Operator CLI").

Each verb is a thin call into the same service functions the HTTP endpoints use. Every failure
exits non-zero with one line on stderr saying why; no tracebacks for expected failures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from hubspot_ledger.config import apply_airflow_env_defaults
from hubspot_ledger.display import display_safe
from hubspot_ledger.errors import UserFacingError
from hubspot_ledger.load.records import IntegrationError, IntegrationSettings, ProblemCause

if TYPE_CHECKING:
    from hubspot_ledger.books import BooksResult


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

    print(LedgerHook().integrations.create(args.organization, args.cutoff))


def cmd_sandbox(args: argparse.Namespace) -> None:
    # The sandbox is a development tool (tools/, never in the production image): the product
    # finds it through the entry point the tools' distribution registers, and never imports it.
    from importlib.metadata import entry_points

    found = list(entry_points(group="hubspot_ledger.tools", name="sandbox"))
    if not found:
        raise UserFacingError("the HubSpot sandbox is a development tool and is not installed "
                              "here: `pip install -e tools` (make setup does it)")
    sandbox = found[0].load()
    parser = _Parser(prog="hubspot-ledger sandbox", description="Serve the HubSpot sandbox.")
    sandbox.add_arguments(parser)
    sandbox.run(parser.parse_args(args.rest))


def cmd_auth_url(args: argparse.Namespace) -> None:
    from hubspot_ledger.connect import auth_url

    print(auth_url(args.integration))


def cmd_connect(args: argparse.Namespace) -> None:
    from hubspot_ledger.connect import complete_connection
    from hubspot_ledger.oauth_state import sign_state

    state = args.state
    if state is None:
        # An operator pasting a code from the consent redirect: the CLI vouches for the
        # integration itself, so it signs a fresh state for it.
        from hubspot_ledger.crypto import get_cipher

        state = sign_state(args.integration, get_cipher().signing_key)
    # A state of another integration is refused before the code is spent (nothing changes).
    integration = complete_connection(args.code, state,
                                      expected_integration_id=args.integration)
    print(f"integration {integration.id} connected to HubSpot portal {integration.remote_id}"
          f" (currency {integration.currency or 'unknown'})")


def _on_off(value: str) -> bool:
    if value.lower() in ("on", "true", "yes", "1"):
        return True
    if value.lower() in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, not {value!r}")


def _print_settings(settings: IntegrationSettings) -> None:
    for key, value in settings.to_dict().items():
        print(f"{key:<26} {_setting_shown(value)}")


def _setting_shown(value: object) -> str:
    """A setting as printed: on/off, "(not set)", or the value made safe to show (account codes
    and the company name are typed by people: display.py)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return display_safe(str(value)) if value not in (None, "") else "(not set)"


def cmd_settings_set(args: argparse.Namespace) -> None:
    from hubspot_ledger.integration_settings import ACCOUNTS, save_settings

    accounts = {a.field: getattr(args, a.field) for a in ACCOUNTS}
    _print_settings(save_settings(args.integration, accounts=accounts, company=args.company,
                                  sync_invoices=args.sync_invoices,
                                  invoice_parties=args.invoice_parties,
                                  won_stages=args.won_stages, recognition=args.recognition))


def cmd_settings_show(args: argparse.Namespace) -> None:
    from hubspot_ledger.integration_settings import get_settings

    _print_settings(get_settings(args.integration))


def cmd_errors(args: argparse.Namespace) -> None:
    from hubspot_ledger.hooks.ledger import LedgerHook
    from hubspot_ledger.integration_settings import get_settings

    get_settings(args.integration)  # says "does not exist" for an unknown integration
    if args.limit < 1:
        raise UserFacingError("--limit must be 1 or more")
    errors = LedgerHook().errors.list(args.integration, limit=args.limit,
                                      open_only=not args.all)
    if not errors:
        print(f"no {'errors logged' if args.all else 'open problems'} for integration "
              f"{args.integration}" + ("" if args.all else " (--all shows the history)"))
    for error in errors:
        print(error_line(error, history=args.all))


def error_line(error: IntegrationError, *, history: bool = False) -> str:
    """One errors-log entry as printed: its messages quote HubSpot values, which display.py
    makes safe to show (one line each; no formula, bidi override or terminal control).
    Open problems show when they were last seen; the history says what became of each."""
    what = f"{error.remote_type} {error.remote_id}" if error.remote_id else \
        (error.remote_type or "-")
    when = error.last_seen_at or error.created_at
    state = ""
    if history:
        state = ("open      " if error.is_open else
                 "warning   " if error.severity == "warning" else "resolved  ")
    retried = ""
    if error.is_open and error.severity == "error":
        retried = f"[{retry_label(error.cause)}] "
    return (f"{when:%Y-%m-%d %H:%M:%S}Z  {state}{display_safe(what):<24} "
            f"{retried}{display_safe(error.message)}")


def retry_label(cause: str | None) -> str:
    """When an open problem's record is read again (issue 12): when HubSpot changes it (the
    fix lies in the record or its lines), or every run (the ledger, settings, a product)."""
    return "on change" if cause == ProblemCause.HUBSPOT else "every run"


def cmd_sync(args: argparse.Namespace) -> None:
    from hubspot_ledger.run_dag import SyncStopped, run_supervised

    try:
        # In a child process: SIGTERM or Ctrl-C stop it at once and mark the run failed.
        result = run_supervised(args.integration, full_refresh=args.full_refresh,
                                verbose=args.verbose)
    except SyncStopped as exc:
        print(f"hubspot-ledger: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    for task_id, state in result.task_states.items():
        print(f"{task_id:<26} {state}")
    print(f"{result.dag_id} run {result.run_id}: {result.state}")
    if not result.succeeded:
        failed = [t for t, s in result.task_states.items() if s == "failed"]
        raise CliError(f"the sync failed at {', '.join(failed) or 'an unknown step'}; "
                       f"see `hubspot-ledger errors --integration {args.integration}` "
                       "and the task log above")


def cmd_rotate_key(args: argparse.Namespace) -> None:
    """Re-encrypt every stored token under the first key of HUBSPOT_LEDGER_FERNET_KEYS."""
    from hubspot_ledger.crypto import get_cipher
    from hubspot_ledger.hooks.ledger import LedgerHook

    count = LedgerHook().tokens.rewrap(get_cipher().rotate)
    print(f"re-encrypted the tokens of {count} integration(s) under the newest key")


def cmd_member_add(args: argparse.Namespace) -> None:
    from hubspot_ledger.members import add_member

    membership, created = add_member(args.organization, args.user, args.role)
    print(f"{display_safe(membership.username)} is {'now ' if not created else ''}"
          f"{membership.role} of organization {display_safe(membership.organization)}")


def cmd_member_list(args: argparse.Namespace) -> None:
    from hubspot_ledger.members import list_members

    members = list_members(args.organization)
    if not members:
        print("no members" + (f" in organization {display_safe(args.organization)}"
                              if args.organization else "")
              + " (only Airflow admins see its integrations)")
    for member in members:
        print(f"{display_safe(member.organization):<30} {display_safe(member.username):<30} "
              f"{member.role}")


def cmd_member_remove(args: argparse.Namespace) -> None:
    from hubspot_ledger.members import remove_member

    remove_member(args.organization, args.user)
    print(f"{display_safe(args.user.strip())} is no longer a member of organization "
          f"{display_safe(args.organization.strip())}")


def _integration_verb(verbs: argparse._SubParsersAction[_Parser], name: str,
                      func: Callable[[argparse.Namespace], None], help: str) -> _Parser:
    """A verb that acts on one integration: `--integration ID` is required."""
    verb = verbs.add_parser(name, help=help)
    verb.add_argument("--integration", type=int, required=True)
    verb.set_defaults(func=func)
    return verb


def _add_member_verbs(verbs: argparse._SubParsersAction[_Parser]) -> None:
    """`member add|list|remove`: who may act on which organization (hubspot_ledger.members)."""
    from hubspot_ledger.members import MemberRole

    member = verbs.add_parser("member", help="who may act on an organization's integrations "
                              "through the endpoints (Airflow users; admins see all)")
    member_verbs = member.add_subparsers(dest="member_verb", required=True,
                                         parser_class=_Parser)
    add = member_verbs.add_parser("add", help="make an Airflow user a member of an "
                                  "organization, or change their role")
    add.add_argument("--organization", required=True, help="organization name")
    add.add_argument("--user", required=True, help="the auth manager's user name")
    add.add_argument("--role", required=True, choices=[r.value for r in MemberRole],
                     help="viewer: read; editor: also settings and connecting; operator: "
                          "also syncs")
    add.set_defaults(func=cmd_member_add)
    listing = member_verbs.add_parser("list", help="print the members (of one organization)")
    listing.add_argument("--organization", help="organization name (default: all)")
    listing.set_defaults(func=cmd_member_list)
    remove = member_verbs.add_parser("remove", help="end a membership")
    remove.add_argument("--organization", required=True, help="organization name")
    remove.add_argument("--user", required=True, help="the auth manager's user name")
    remove.set_defaults(func=cmd_member_remove)


def cmd_integration_set(args: argparse.Namespace) -> None:
    """Save an integration's schedule (checked first; nothing saved if Airflow cannot run it)."""
    from hubspot_ledger.schedule import save_schedule

    schedule = save_schedule(args.integration, args.schedule)
    print(f"integration {args.integration} schedule: {schedule} (UTC; the DAG follows it at "
          "the DAG processor's next parse)")


def cmd_backfill(args: argparse.Namespace) -> None:
    """Ask Airflow for a backfill in calendar-month windows, then follow it to the end."""
    from hubspot_ledger import backfill

    created = backfill.start(args.integration, from_date=args.from_date, to_date=args.to_date,
                             unpause=args.unpause, max_active_runs=args.max_active_runs)
    windows = created.windows
    first, last = windows[0], windows[-1]
    print(f"backfill {created.backfill_id} of {created.dag_id}: {len(windows)} run(s), "
          f"{first.start:%Y-%m-%d} to {last.end:%Y-%m-%d} (the last one reads up to now "
          "when it is the latest month)")
    if args.no_wait:
        print("queued; follow it in the Airflow UI (Browse → Backfills)")
        return
    done = backfill.follow(created)
    if done.failed:
        raise CliError(f"{len(done.failed)} of {len(done.windows)} window(s) failed: "
                       + ", ".join(f"{w.start:%Y-%m-%d}" for w in done.failed)
                       + f"; see `hubspot-ledger errors --integration {args.integration}` and "
                       "the failed runs' task logs, then run the backfill again (it re-runs "
                       "only the failed windows)")
    print(f"backfill {created.backfill_id} done: {len(done.windows)} window(s) succeeded")


def _add_schedule_and_backfill_verbs(verbs: argparse._SubParsersAction[_Parser],
                                     integration_verbs: argparse._SubParsersAction[_Parser]
                                     ) -> None:
    """`integration set --schedule` and `backfill` (issue 15)."""
    set_verb = _integration_verb(integration_verbs, "set", cmd_integration_set,
                                 help="change an integration's schedule")
    set_verb.add_argument("--schedule", required=True, metavar="CRON",
                          help="a cron expression in UTC ('0 * * * *') or @hourly, @daily…")

    run = _integration_verb(verbs, "backfill", cmd_backfill,
                            help="load an integration's history (from its cutoff date to "
                                 "now) through Airflow, one calendar month per run")
    run.add_argument("--from", dest="from_date", type=_date, metavar="YYYY-MM-DD",
                     help="default: the integration's cutoff date")
    run.add_argument("--to", dest="to_date", type=_date, metavar="YYYY-MM-DD",
                     help="default: now")
    run.add_argument("--unpause", action="store_true",
                     help="unpause the integration's DAG if it is paused (otherwise refused)")
    run.add_argument("--max-active-runs", type=int, default=1,
                     help="windows run side by side; default 1: a window writes under the "
                          "integration's write lock, which a second one finds busy (its task "
                          "then gives its worker back and is rescheduled)")
    run.add_argument("--no-wait", action="store_true",
                     help="return once the runs are queued instead of following them")


def cmd_books_create(args: argparse.Namespace) -> None:
    from hubspot_ledger.books import create_books, read_chart, template_chart
    from hubspot_ledger.hooks.ledger import LedgerHook

    if args.from_csv is not None:
        try:
            text = args.from_csv.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {args.from_csv}: {type(exc).__name__}") from None
        chart = read_chart(text, source=str(args.from_csv))
    else:
        chart = template_chart(args.template)
    with LedgerHook().new_connection() as conn:
        result = create_books(conn, args.organization, args.company, args.currency, chart)
    for line in books_lines(result):
        print(line)


def books_lines(result: BooksResult) -> list[str]:
    """What `books create` did, in words: created, already there, or kept although different."""
    org, company = display_safe(result.organization), display_safe(result.company)
    codes = ", ".join(display_safe(a.code) for a in result.created)
    lines = [f"organization {org}: company {company} "
             + (f"({result.currency}) created" if result.company_created else
                "already exists, kept as it is")]
    if result.created:
        lines.append(f"{len(result.created)} account(s) created: {codes}")
    if result.existing:
        lines.append(f"{len(result.existing)} account(s) already exist, kept as they are")
    for wanted, kept in result.differing:
        lines.append(f"  account {display_safe(kept.code)} is {display_safe(kept.name)!r} "
                     f"({kept.account_type}), not {display_safe(wanted.name)!r} "
                     f"({wanted.account_type}) as in the chart: left unchanged")
    if result.company_currency:
        lines.append(f"  company {company} keeps its currency {result.company_currency} "
                     f"(not {result.currency})")
    if not result.changed:
        lines.append("nothing changed: these books were already set up")
    return lines


def cmd_books_show(args: argparse.Namespace) -> None:
    from hubspot_ledger.books import list_books
    from hubspot_ledger.hooks.ledger import LedgerHook

    with LedgerHook().new_connection() as conn:
        companies, accounts = list_books(conn, args.organization)
    for name, currency in companies:
        print(f"company  {display_safe(name)} ({currency or 'no currency'})")
    for account in accounts:
        print(f"account  {display_safe(account.code):<10} {account.account_type:<10} "
              f"{display_safe(account.name)}")
    if not companies and not accounts:
        print(f"no books yet in organization {display_safe(args.organization.strip())}: "
              "`hubspot-ledger books create` sets them up")


def _add_books_verbs(verbs: argparse._SubParsersAction[_Parser]) -> None:
    """`books create|show`: an accounting company and a chart of accounts (hubspot_ledger.books)."""
    from pathlib import Path

    from hubspot_ledger.books import template_names

    books = verbs.add_parser("books", help="set up an organization's accounting company and "
                             "chart of accounts (for a ledger without its accounting product)")
    books_verbs = books.add_subparsers(dest="books_verb", required=True, parser_class=_Parser)
    create = books_verbs.add_parser(
        "create", help="create the organization's accounting company and a starter chart of "
        "accounts from a template or a CSV (code,name,type); what exists is kept")
    create.add_argument("--organization", required=True, help="organization name")
    create.add_argument("--company", required=True, metavar="NAME",
                        help="the accounting company (entity) to create")
    create.add_argument("--currency", required=True, metavar="CODE",
                        help="the company's currency, ISO 4217 (USD, EUR, …)")
    source = create.add_mutually_exclusive_group()
    source.add_argument("--template", default="default", choices=template_names(),
                        help="a chart shipped with the package (default: default)")
    source.add_argument("--from-csv", type=Path, metavar="FILE",
                        help="a chart of your own: header code,name,type; types asset, "
                             "liability, equity, income, expense")
    create.set_defaults(func=cmd_books_create)
    show = books_verbs.add_parser("show", help="print an organization's companies and accounts")
    show.add_argument("--organization", required=True, help="organization name")
    show.set_defaults(func=cmd_books_show)


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
    _add_schedule_and_backfill_verbs(verbs, integration_verbs)

    sandbox = verbs.add_parser("sandbox", help="serve the HubSpot sandbox (see sandbox --help)",
                               add_help=False)
    sandbox.set_defaults(func=cmd_sandbox, rest=[])

    _integration_verb(verbs, "auth-url", cmd_auth_url,
                      help="print the HubSpot consent URL of an integration")

    connect = _integration_verb(verbs, "connect", cmd_connect,
                                help="exchange an OAuth code and store the tokens")
    connect.add_argument("--code", required=True, help="the code HubSpot redirected back with")
    connect.add_argument("--state", help="the state HubSpot redirected back with, if any")

    settings = verbs.add_parser("settings", help="read or save an integration's settings")
    settings_verbs = settings.add_subparsers(dest="settings_verb", required=True,
                                             parser_class=_Parser)
    _integration_verb(settings_verbs, "show", cmd_settings_show, help="print the settings")
    save = _integration_verb(settings_verbs, "set", cmd_settings_set,
                             help="save settings (accounts by code)")
    for option in ("ar-account", "deferred-revenue-account", "expense-account",
                   "income-account", "clearing-account"):
        save.add_argument(f"--{option}", metavar="CODE", dest=option.replace("-", "_"))
    save.add_argument("--company", metavar="NAME", help="the accounting company (entity)")
    save.add_argument("--sync-invoices", type=_on_off, metavar="on/off")
    # Issue 14 (README "Beyond the reference connector"): each off by default.
    save.add_argument("--invoice-parties", metavar="unknown|hubspot",
                      help="whom imported invoices are made out to")
    save.add_argument("--won-stages", metavar="closedwon|all-pipelines|STAGE_ID,...",
                      help="which deal stages count as won")
    save.add_argument("--recognition", metavar="immediate|hubspot-terms",
                      help="how deal lines with a recurring term are recognized")

    errors = _integration_verb(verbs, "errors", cmd_errors,
                               help="print an integration's open problems (the records "
                                    "that still fail; --all: the whole errors log)")
    errors.add_argument("--limit", type=int, default=200)
    errors.add_argument("--all", action="store_true",
                        help="the whole history: resolved entries and warnings too")

    sync = _integration_verb(verbs, "sync", cmd_sync,
                             help="run an integration's DAG to completion, no scheduler "
                                  "needed (SIGTERM or Ctrl-C stop it and mark the run failed)")
    sync.add_argument("--full-refresh", action="store_true",
                      help="re-read everything since the cutoff date")

    verbs.add_parser("rotate-key", help="re-encrypt every stored token under the newest key "
                     "(the first of HUBSPOT_LEDGER_FERNET_KEYS)").set_defaults(func=cmd_rotate_key)
    _add_member_verbs(verbs)
    _add_books_verbs(verbs)
    return parser


class _Stderr:
    """Whatever `sys.stderr` is when a line is written (it may be swapped after set-up, e.g.
    by a test harness capturing output)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _log_to_stderr(verbose: bool) -> None:
    """Progress goes to stderr so that stdout carries only the verb's result (e.g. an id).

    Importing Airflow installs its own logging (to stdout); this replaces it for the CLI.
    """
    import airflow.configuration  # noqa: F401 - installs Airflow's logging; replaced below
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(_Stderr()))  # type: ignore[arg-type]
    handler = logging.StreamHandler(_Stderr())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        for noisy in ("airflow", "alembic", "sqlalchemy"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


# Verbs that encrypt or decrypt HubSpot tokens, or sign OAuth states: they need the key.
KEY_VERBS = frozenset({"auth-url", "connect", "sync", "rotate-key"})


def _prepare_airflow_home(verb: str) -> None:
    """The CLI stands on its own (issue 15): in a checkout, its first use prepares the
    project's Airflow home as `make demo` does (metadata DB, a Fernet key generated once and
    kept in airflow.cfg, said once on stderr). A deployment's Airflow home (AIRFLOW_HOME outside
    the checkout, an installed package) is the deployment's: the CLI never writes a key there,
    and a verb that needs one fails with the command that supplies it.

    Runs before Airflow is imported: Airflow reads airflow.cfg once, at import."""
    from hubspot_ledger.config import (
        GENERATE_KEY_COMMAND,
        airflow_home,
        is_checkout_home,
        key_is_supplied,
        prepare_airflow_home,
    )

    if verb == "sandbox":
        return
    if is_checkout_home():
        prepare_airflow_home()
    elif verb in KEY_VERBS and not key_is_supplied():
        raise CliError(f"No encryption key for the HubSpot tokens: the Airflow deployment at "
                       f"{airflow_home()} (AIRFLOW_HOME) must supply one, the same to every "
                       f"Airflow component and this CLI: {GENERATE_KEY_COMMAND}")


def main(argv: Sequence[str] | None = None) -> int:
    apply_airflow_env_defaults()
    parser = build_parser()
    # The sandbox verb owns its flags (argparse.REMAINDER does not take leading options).
    args, extra = parser.parse_known_args(argv)
    if extra and args.verb != "sandbox":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.rest = extra if args.verb == "sandbox" else getattr(args, "rest", [])
    try:
        # Airflow logs to stdout until _log_to_stderr (the pool created on first use, say):
        # stdout carries only the verb's result.
        with contextlib.redirect_stdout(sys.stderr):
            _prepare_airflow_home(args.verb)
    except CliError as exc:
        print(f"hubspot-ledger: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # `airflow db migrate` failed: its last line says why
        print(f"hubspot-ledger: preparing the Airflow home failed: {exc}", file=sys.stderr)
        return 1
    _log_to_stderr(args.verbose)
    try:
        args.func(args)
    except (CliError, UserFacingError) as exc:
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
