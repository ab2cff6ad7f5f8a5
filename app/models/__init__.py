"""The salary model, its registry of saved versions, training and evaluation."""
