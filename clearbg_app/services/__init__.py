"""The domain, framework-free: plain functions taking a Session, raising domain errors."""
