"""query_api: the read side of the contacts platform (docs/architecture.md §1, §6).

Cache-first contact reads, keyset-paginated lists and searches, and operation status, served by
Flask under gunicorn. Read only: its database role has SELECT only. Nothing connects at import;
``entrypoints.app.create_app`` is the composition root.
"""
