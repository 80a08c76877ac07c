"""Identity: departments, users, API keys, OIDC tokens and rate limits."""
