"""Pure translators between wire formats and internal types: no I/O, no database."""
