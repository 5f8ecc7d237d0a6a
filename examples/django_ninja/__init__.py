"""A minimal Django project whose Ninja API streams camstream's camera at ``GET /api/camera``.

    pip install 'camstream[django]'
    CAMSTREAM_SOURCE=pattern uvicorn examples.django_ninja.asgi:application          # ASGI
    CAMSTREAM_SOURCE=pattern waitress-serve examples.django_ninja.wsgi:application   # WSGI
"""
