"""Pricing, the ledger, and admission against token balances."""
