"""Adapters: the real implementations of the ports (SQS via Celery, Redis) and process services."""
