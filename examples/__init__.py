"""Apps in other frameworks that stream camstream's cameras: see examples/fastapi_app.py and examples/django_ninja/."""
