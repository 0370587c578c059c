"""What a run asks for (`settings`, `presets`), checked and resolved once into the plan that
every later stage reads (`plan`, with its memory level from `memory_plan`)."""
