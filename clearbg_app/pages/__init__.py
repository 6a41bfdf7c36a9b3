"""Pages: what a person sees."""
