"""The MCP server: a user's assistant reads that user's yarnnn context (``python -m yarn_assets.mcp``).

See :mod:`.server` (tools and authentication), :mod:`.reads` (the user-scoped reads) and
:mod:`.app` (building it from settings and running a transport).
"""
