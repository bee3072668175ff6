"""Named, typed configs for whole runs, and the code that runs them."""

from monde.recipes.registry import RECIPES, Recipe, get_recipe, run_recipe

__all__ = ["RECIPES", "Recipe", "get_recipe", "run_recipe"]
