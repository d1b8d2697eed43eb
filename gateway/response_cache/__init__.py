"""The response cache: an alias's successful answers served again to the same request (opt-in per
alias, `models.<alias>.cache`), from this process's bounded LRU or from Redis."""
