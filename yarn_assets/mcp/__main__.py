"""``python -m yarn_assets.mcp``: see :mod:`yarn_assets.mcp.app`."""

from yarn_assets.mcp.app import main

if __name__ == "__main__":
    main()
