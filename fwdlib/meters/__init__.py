"""Meters: energy by backend with provenance (`energy`), and training-step memory (`memory`)."""
