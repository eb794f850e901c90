"""Versioned schema migrations: `NNNN_name.sql` files, applied in order by
`fogcore.store.migrate`. See that module for the dialect placeholders they may use."""
