"""HTTP surface: thin Litestar controllers per client dialect."""
