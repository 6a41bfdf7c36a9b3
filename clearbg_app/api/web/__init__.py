"""The site's own HTTP routes (form posts, email links, downloads), authenticated by the session cookie."""
