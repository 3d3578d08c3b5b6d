"""Tasks: the LightningModules (a shared base, Classifier, Regressor), which task a run does, predicting."""
