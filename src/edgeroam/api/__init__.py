"""The HTTP API of the controller (FastAPI), served by `edgeroam serve`."""

from edgeroam.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
