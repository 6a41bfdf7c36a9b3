"""The task queue: Dramatiq, on Redis when `CLEARBG_QUEUE_URL` is set, in-process otherwise.

`broker` makes the broker (once, before any actor is declared); `actors` declares the tasks (batch
items, single images for `CLEARBG_INFERENCE=queue`, webhook deliveries, service mail)
and registers them as the senders of `services.background.announce`; `worker` runs them, in a
thread of the app (the embedded default) or in `python -m clearbg_app worker`.
"""
