"""Token balances, pricing, the ledger and rate limits."""
