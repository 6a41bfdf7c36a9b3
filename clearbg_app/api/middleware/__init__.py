"""ASGI middleware around our routes and Reflex's: security headers, CORS, origins, body limits, the request log."""
