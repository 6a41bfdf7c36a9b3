"""HTTP routes mounted beside Reflex (`rx.App(api_transformer=build_api())`)."""

from clearbg_app.api.app import ClearBGApp, build_api

__all__ = ["ClearBGApp", "build_api"]
