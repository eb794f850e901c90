"""The benchmark harness behind `fogcore bench SUITE` (installed as `fogcore.bench`)."""
