#!/usr/bin/env python
"""Django's manage.py; the `harbour` command is the friendlier entry point."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harbour.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
