"""Environment construction, seeding and the state needed to resume an environment."""
