"""HTTP details that both the routes (`api/`) and the Reflex states need: the cookies and their
hashed references, one-time flash messages, safe redirect targets, and remove.bg's request
parameters (the batch page reads them as the API does). Below `api/` and `state/`."""
