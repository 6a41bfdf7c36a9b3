"""HTTP details that both the routes (`api/`) and the Reflex states need: the cookies and their
hashed references, one-time flash messages, safe redirect targets. Below `api/` and `state/`."""
