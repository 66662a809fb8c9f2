"""The analyze API: one image (or many), many tasks (detect, crop, embed, classify, describe).

    schemas.py      request / response models (the image-analysis service's shapes)
    operations.py   the operation registry: validation, `available_operations`, dispatch
    handlers.py     what each operation type does
    regions.py      per-request person / face detection (at most once each) and crops
    context.py      a validated task, and the context a request's tasks share
    engine.py       runs a request's tasks concurrently, one result per task
    backends.py     the model calls, over the typed runner client (gateway/runner_client.py)
    classifiers.py  logistic-regression heads on CLIP embeddings, evaluated in numpy
    api.py          AnalyzeRoutes: one image or many, and the upload route's tasks_json
"""
