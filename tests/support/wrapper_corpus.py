"""The query and texts the three wrappers' tests rank, so that each framework's test reads the same case."""

QUERY = "capital of france"
TEXTS = [
    "Berlin is the capital of Germany",
    "Paris is the capital of France",
    "The river in Paris",
    "Deep learning for search",
    "France borders Spain",
]
