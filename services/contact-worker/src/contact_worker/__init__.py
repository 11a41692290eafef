"""contact-worker: applies contact events from SQS to PostgreSQL (the read model) and Redis."""
