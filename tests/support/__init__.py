"""Test support shared by every package's tests: real servers, isolated per test run."""
