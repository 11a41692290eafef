"""HTTP entrypoint: the Flask app factory and its routes."""
