"""Loopback fakes of external services for tests (real HTTP on 127.0.0.1, official SDKs pointed at them)."""
