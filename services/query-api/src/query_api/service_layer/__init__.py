"""Use cases of the query API: plain functions over the ports in ``ports``."""
