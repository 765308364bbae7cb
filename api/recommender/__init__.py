"""The recommender: sessions picked for each learner, trained from the marketplace's own data.

- ``data``: the input format (``TrainingData``) every part shares.
- ``model``: the hybrid model as numpy arrays (content, collaborative factors, popularity).
- ``training``: offline evaluation, training, and the ``Trainer`` that stores each version.
- ``serving``: the ``Recommender`` holding the current model, ranking and explaining picks.
- ``metrics``: online events (impressions, clicks, bookings) and the admin metrics.
- ``schedule``: retraining on a clock (the loop itself is started by api/lifecycle.py).
- ``synthetic``: a marketplace with known tastes, for evaluation, demos and tests.
- ``tables``: the ORM tables (model versions, carousel events).
"""
