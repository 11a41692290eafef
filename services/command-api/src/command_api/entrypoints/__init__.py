"""Entrypoints: the Flask app (composition root), its blueprints, schemas and headers."""
