"""Real implementations of the query API's ports: PostgreSQL (SQLAlchemy Core) and Redis."""
