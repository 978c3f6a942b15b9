"""Small query functions; the rest of the code never builds SQL."""
