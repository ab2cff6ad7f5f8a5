"""Celery tasks: thin wrappers that validate arguments, log, and call into app.data/app.models."""
