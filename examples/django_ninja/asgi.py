"""The ASGI entry point: ``uvicorn examples.django_ninja.asgi:application``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_ninja.settings")
application = get_asgi_application()
