"""The pure matching engine: spatial index, ETA model, fair ranking and batched assignment.

No Django here (nor any I/O): the dispatch services and the dispatch worker adapt these plain functions
and classes to the database, Redis and the websockets.

* ``geo``      spherical distances in metres, bounding boxes, the chord metric
* ``index``    ``DriverIndex``: exact k-nearest drivers within a radius, fast updates
* ``eta``      the ETA model shared by fare estimates and dispatch (``GreatCircleEstimator``)
* ``ranking``  the board's fairness rule and explainable ranking (``rank_candidates``)
* ``batching`` batched assignment by linear assignment, and the nearest-first baseline
* ``fairness_figures`` the public fairness figures' arithmetic (Gini of hourly earnings, offer deciles)

Import from the submodules; this package module stays empty so that using the index or the ETA model
does not pull in scipy (only ``batching`` needs it).
"""
