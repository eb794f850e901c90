"""One repository module per area, written once against `fogcore.store.db.Database`
and shared by both backends. A new area is a migration file plus one module here."""
