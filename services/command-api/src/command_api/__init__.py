"""command_api: the write side of the contacts platform (docs/architecture.md §1)."""
