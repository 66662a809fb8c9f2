"""The analyze API (seed 002): one image, many tasks (detect, crop, embed, classify, describe).

    schemas.py      request / response models (seed 002's shapes)
    operations.py   the operation registry: validation, `available_operations`, dispatch
    handlers.py     what each operation type does
    regions.py      per-request person / face detection (at most once each) and crops
    engine.py       runs a request's tasks concurrently, one result per task
    backends.py     the model calls, through the runners' batchable APIs
    classifiers.py  logistic-regression heads on CLIP embeddings, evaluated in numpy
    api.py          the AnalyzeAPI mixin: /analyze and seed 002's routes
"""
