"""Upstream model providers behind one streaming interface (see `base.Provider`)."""
