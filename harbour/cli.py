"""The `harbour` command: one entry point for everything an operator does.

Each subcommand is a Django management command; `harbour sandbox ...` runs with the sandbox's
own settings and database.

A configuration Harbour cannot start with (ImproperlyConfigured: a missing or malformed
variable, an unsupported database URL, a var folder it cannot write) or a database it cannot
connect to is reported as one line on stderr, "harbour: <what is wrong>; <what to do>", without
a traceback: exit status 2 for configuration, 3 for a database that cannot be reached. Any
other exception is a bug and keeps its traceback.
"""
import os
import sys

COMMANDS = [
    ("demo", "Start everything for a demo: Harbour, its worker and the Ocean sandbox, wired together."),
    ("serve", "Run Harbour's web server (gunicorn). --port, --workers, --migrate."),
    ("worker", "Run the worker that processes inbound messages and delivers updates to Ocean."),
    ("sandbox", "The Ocean sandbox: 'harbour sandbox serve --port 8081', 'harbour sandbox migrate', ..."),
    ("create-clinic", "Create a clinic, its domain and its administrator."),
    ("inspect", "Show, as JSON, what Harbour reads from an Ocean bundle file, without storing it."),
    ("reprocess", "Process failed inbound messages again after a fix."),
    ("rotate-keys", "Re-encrypt stored secrets with the first of HARBOUR_ENCRYPTION_KEYS."),
    ("migrate", "Create or update the database tables."),
    ("manage", "Any other Django management command: 'harbour manage <command> ...'."),
]


def _command_list(usage: str, commands) -> str:
    return f"usage: {usage}\n\nCommands:\n" + "\n".join(f"  {name:<14} {text}" for name, text in commands)


HELP = _command_list("harbour <command> [options]", COMMANDS) + "\n\n'harbour <command> --help' describes a command's options.\n"

SANDBOX_COMMANDS = [
    ("serve", "Run the sandbox's web server (migrates first; port 8081 unless --port)."),
    ("worker", "Run the sandbox's worker: its webhook deliveries to Harbour."),
    ("migrate", "Create or update the sandbox's database tables (SANDBOX_DATABASE_URL)."),
    ("admin-token", "Print the sandbox's JSON admin API token (header X-Sandbox-Admin-Token)."),
    ("rotate-keys", "Re-encrypt the sandbox's stored secrets with the first of HARBOUR_ENCRYPTION_KEYS."),
]

SANDBOX_HELP = _command_list("harbour sandbox [<command>] [options]", SANDBOX_COMMANDS) + (
    "\n\nWithout a command (or with only options, e.g. 'harbour sandbox --port 8081') the sandbox is served.\n"
    "Any other Django management command runs with the sandbox's settings and database.\n"
    "'harbour sandbox <command> --help' describes a command's options.\n"
)

EXIT_CONFIGURATION = 2
EXIT_DATABASE_UNREACHABLE = 3


def _utility_class():
    from django.core.management import ManagementUtility

    class Utility(ManagementUtility):
        """Django's, with commands typed as the README writes them: 'create-clinic' runs the
        management command create_clinic, and its usage line says 'harbour create-clinic'."""

        def fetch_command(self, subcommand):
            return super().fetch_command(subcommand.replace("-", "_"))

    return Utility


def _is_connection_failure(exc: BaseException) -> bool:
    """Whether a database error was raised while connecting (Django's ensure_connection), not by
    a query: a failed query is a bug and keeps its traceback."""
    from django.db.utils import InterfaceError, OperationalError

    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name in {"ensure_connection", "get_new_connection"}:
            return True
        tb = tb.tb_next
    return False


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"harbour: {message}\n")
    sys.stderr.flush()
    return code


def _configuration_message(exc: BaseException) -> str:
    lines = [line.strip().rstrip(".") for line in str(exc).strip().splitlines() if line.strip()]
    message = "; ".join(lines) or type(exc).__name__
    if ";" not in message:
        # Django's own messages say what is wrong, not always what to do.
        message += "; fix the setting named above (README, Configuration) and start again"
    return message


def _run(argv: list[str]) -> None:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        sys.stdout.write(HELP)
        return
    command, rest = argv[0], argv[1:]
    prog = "harbour"
    if command == "sandbox":
        os.environ["DJANGO_SETTINGS_MODULE"] = "harbour.sandbox.settings"
        prog = "harbour sandbox"
        if rest and rest[0] in {"-h", "--help", "help"} and len(rest) == 1:
            sys.stdout.write(SANDBOX_HELP)
            return
        if not rest or rest[0].startswith("-"):
            rest = ["serve", *rest]  # 'harbour sandbox --port 8081' serves the sandbox
        command, rest = rest[0], rest[1:]
        if command == "serve" and not {"-h", "--help"} & set(rest):
            rest = ["--migrate", *rest] if "--migrate" not in rest else rest
            if not any(arg.startswith("--port") for arg in rest):
                rest = ["--port", "8081", *rest]
    else:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harbour.settings")
    if command == "manage":
        # Everything after 'manage' goes to Django as typed: 'harbour manage --help' is Django's
        # help, 'harbour manage shell -c ...' its shell.
        if not rest:
            rest = ["help"]
        command, rest = rest[0], rest[1:]
    _utility_class()([prog, command, *rest]).execute()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from django.core.exceptions import ImproperlyConfigured

    try:
        _run(argv)
    except ImproperlyConfigured as exc:
        return _fail(_configuration_message(exc), EXIT_CONFIGURATION)
    except Exception as exc:
        if not _is_connection_failure(exc):
            raise
        from harbour.core.env import safe_error_line

        variable = "SANDBOX_DATABASE_URL" if argv[:1] == ["sandbox"] else "DATABASE_URL"
        return _fail(
            f"cannot connect to the database ({safe_error_line(exc)}); check {variable} "
            "(host, port, name, user, password) and that the database server is running and reachable",
            EXIT_DATABASE_UNREACHABLE,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
