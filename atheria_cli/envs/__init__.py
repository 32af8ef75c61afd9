"""Environment construction, seeding and the state needed to resume an environment."""

from atheria_cli.envs.building import register_building_envs

# Importing the package makes the built-in ids (atheria/BuildingCO2-v0, ...) available to
# gymnasium.make; the building module needs only gymnasium and numpy.
register_building_envs()
