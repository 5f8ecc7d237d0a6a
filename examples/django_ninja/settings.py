"""Just enough Django for an API: no database, no admin, no sessions."""

from __future__ import annotations

import os
import secrets

# Nothing here signs anything that must outlive the process; set it to keep one across restarts.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = [host for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if host]
ROOT_URLCONF = "examples.django_ninja.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES: dict = {}
USE_TZ = True
