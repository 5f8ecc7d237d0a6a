"""The WSGI entry point: ``waitress-serve examples.django_ninja.wsgi:application``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_ninja.settings")
application = get_wsgi_application()
