"""Use cases of the command API: plain functions taking a command and the ports they need."""
