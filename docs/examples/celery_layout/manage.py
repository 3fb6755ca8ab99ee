#!/usr/bin/env python
"""Django's command line for this example: `python manage.py runserver`, `python manage.py check`."""

import os
import sys

from django.core.management import execute_from_command_line

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renranapi.settings")
    execute_from_command_line(sys.argv)
