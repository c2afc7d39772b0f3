"""``python -m yarn_assets.api``: serve the API with uvicorn on ``api_host:api_port`` (same as ``yarnnn serve api``)."""

from __future__ import annotations


def serve(host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    from resources.settings import load_settings
    from yarn_assets.api.app import create_app

    settings = load_settings()
    uvicorn.run(create_app(settings), host=host or settings.api_host, port=port or settings.api_port,
                log_level="info", proxy_headers=False)


if __name__ == "__main__":
    serve()
