"""Reflex states: thin, they call services and hold ids, never bytes."""
