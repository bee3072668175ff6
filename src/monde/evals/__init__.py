"""monde.evals."""
