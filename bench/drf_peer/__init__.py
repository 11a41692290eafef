"""The Django REST Framework peer of ``make bench`` (bench-only, not part of the product).

What a team would write instead of the query API (issue 13 item 6): one ``ModelViewSet`` over
an unmanaged model of the ``contacts`` table, serving ``GET /v1/contacts/{id}`` and
``GET /v1/contacts`` (cursor pages of 20 by creation time) straight from PostgreSQL, no cache.
``make bench`` serves it with gunicorn and the query API's own config module (same worker
class, workers, threads, timeouts and JSON access log) and reports ``drf_get_rps`` and
``drf_list_rps``; the query API's hit and miss rates are shown as multiples of its GET rate.

Run by hand (from the repository root, the ``make up`` settings sourced)::

    DJANGO_SETTINGS_MODULE=drf_peer.settings PYTHONPATH=bench QUERY_API_BIND=127.0.0.1:8010 \\
        .venv/bin/gunicorn -c python:query_api.entrypoints.gunicorn_conf drf_peer.wsgi:application
"""
