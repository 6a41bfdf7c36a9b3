"""The public HTTP API, compatible with remove.bg's (`/api/v1.0/...`), authenticated by `X-Api-Key`."""
