"""`rochdale <command> [options]`: the console entry, a thin dispatcher to Django's management commands
(`rochdale simulate --drivers 50`, `rochdale seed_demo`, `rochdale migrate`, ...)."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    from django.core.management import execute_from_command_line

    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] in {"-h", "--help"}:
        print(__doc__)
        arguments = ["help"]
    execute_from_command_line(["rochdale", *arguments])


if __name__ == "__main__":
    main()
