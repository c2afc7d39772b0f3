"""Live-API primitives every platform client uses: rate budgets, retrying calls, client config, errors, fetch results.

Registry-free on purpose: platforms import these, and the sync orchestration in ``ingest/sync`` (which
knows the platform registry) passes each platform's rates and error classifier in.
"""
