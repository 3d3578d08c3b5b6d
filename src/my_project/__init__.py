"""Your project: nets and data modules of your own, picked from conf/ like the template's (``model=my_net``).

Everything under ``src/my_project/`` is yours to edit, rename or delete; ``src/recipe/`` is the engine.
"""
