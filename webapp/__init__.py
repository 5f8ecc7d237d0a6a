"""camstream's web side: the Flask app factory, its routes and the command line.

Use :func:`create_app` to embed camstream in a WSGI server
(``waitress-serve --call webapp:create_app``) and ``python -m webapp`` to
run it on its own.
"""

from .app import create_app

__all__ = ["create_app"]
