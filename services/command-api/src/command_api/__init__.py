"""command_api: the write side of the contacts platform (DESIGN.md §1)."""
