"""The as-of query API (FastAPI): ``create_app(config)``; served by ``timetravel serve``."""

from timetravel.api.app import create_app

__all__ = ["create_app"]
