"""The `harbour` command: one entry point for everything an operator does.

Each subcommand is a Django management command; `harbour sandbox ...` runs with the sandbox's
own settings and database.
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

HELP = "usage: harbour <command> [options]\n\nCommands:\n" + "\n".join(
    f"  {name:<14} {text}" for name, text in COMMANDS
) + "\n\n'harbour <command> --help' describes a command's options.\n"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        sys.stdout.write(HELP)
        return
    command, rest = argv[0], argv[1:]
    if command == "sandbox":
        os.environ["DJANGO_SETTINGS_MODULE"] = "harbour.sandbox.settings"
        if not rest or rest[0].startswith("-"):
            rest = ["serve", *rest]  # 'harbour sandbox --port 8081' serves the sandbox
        command, rest = rest[0], rest[1:]
        if command == "serve":
            rest = ["--migrate", *rest] if "--migrate" not in rest else rest
            if not any(arg.startswith("--port") for arg in rest):
                rest = ["--port", "8081", *rest]
    else:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harbour.settings")
    if command == "manage":
        if not rest:
            rest = ["help"]
        command, rest = rest[0], rest[1:]
    from django.core.management import execute_from_command_line

    # 'harbour create-clinic' runs the management command create_clinic.
    execute_from_command_line(["harbour", command.replace("-", "_"), *rest])


if __name__ == "__main__":
    main()
